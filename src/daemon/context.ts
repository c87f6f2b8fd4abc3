// What every daemon extension gets: one context object, built by the controller.
import type { Logger } from "pino";
import type { AdapterRegistry } from "../adapters/registry.js";
import type { Router } from "../adapters/router/router.js";
import type { TieredAdapterStore } from "../adapters/store/index.js";
import type { Config } from "../config/schema.js";
import type { StepEngine } from "../engine/types.js";
import type { Bus, BusMessage } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";
import type { Clock } from "../runtime/clock.js";
import type { Job, JobHandle, JobSink, SchedulerStats, StepLogEntry } from "../scheduler/types.js";
import type { EventBus } from "./events.js";
import type { TenantReply } from "./payloads.js";
import type { Health } from "./health.js";

/** The part of the Scheduler the daemon uses (the real one or a test double). */
export interface SchedulerPort {
  readonly busy: boolean;
  submit(job: Job, sink: JobSink): JobHandle;
  start(): void;
  stop(graceMs: number): Promise<void>;
  stats(): SchedulerStats;
  onStep(listener: (entry: StepLogEntry) => void): () => void;
  /** Returns the function that removes the listener. */
  on(event: "busy" | "idle", listener: () => void): () => void;
}

/** Told about every request the handler accepts to run and when its final reply is out: the request
 *  journal (restart after a crash) and the fleet's job ledger (failover to another board). */
export interface IntakeObserver {
  accepted(req: { key: string; tenant: string; transaction: string; msg: BusMessage; stream: boolean }): void;
  /** Just before the final reply is published (the journal keeps it, to publish it again after a
   *  crash). `remember`: a copy of the transaction is to get this reply again (dedupe). */
  replying?(key: string, route: { topic: string; correlationData?: Buffer }, reply: TenantReply, remember: boolean): void;
  answered(key: string): void;
  /** Several answered at once (one write for all, where the observer writes). */
  answeredAll?(keys: string[]): void;
}

/** What the request handler asks of the fleet (src/fleet/); absent on a single board. */
export interface FleetPort {
  /** True when another board is running tenant/transaction: a copy arriving here is a duplicate. */
  runningElsewhere(tenant: string, transaction: string): boolean;
  /** The final reply a board of the fleet gave tenant/transaction recently, else null. */
  answeredReply(tenant: string, transaction: string): TenantReply | null;
  /** Sends a cancel to the board running tenant/transaction; false when no board is. */
  cancelElsewhere(tenant: string, transaction: string): boolean;
  /** May hand an accepted request to a peer holding its adapter; resolves true when a peer accepted it
   *  (the peer answers it), false to run it here. */
  offer(msg: BusMessage, adapter: string | null): Promise<boolean>;
  /** A request this board's journal left pending: true while its ledger entry is still this board's
   *  (no other board took it over when this one went offline). */
  holds(key: string): boolean;
}

export interface DaemonContext {
  config: Config;
  topics: Topics;
  bus: Bus;
  events: EventBus;
  health: Health;
  logger: Logger;
  /** The daemon's timers run on this (realClock; a fake in tests). */
  clock: Clock;
  version: string;
  /** Null when the model failed to load: only the bridge, admin and LED features run. */
  engine: StepEngine | null;
  scheduler: SchedulerPort | null;
  registry: AdapterRegistry;
  slots: TieredAdapterStore | null;
  /** Adaptive adapter selection ("adapter": "auto"); null when there is no engine. */
  router: Router | null;
  modelPath: string;
  modelError: string | null;
  /** This board's name (daemon.board_id, default the hostname) in bridge/<board>/... */
  boardId: string;
  intake: IntakeObserver[];
  fleet: FleetPort | null;
}

/** One feature of the daemon. The constructor only stores the context; work starts in start(). */
export interface Extension {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
