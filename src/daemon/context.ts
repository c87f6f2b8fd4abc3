// What every daemon extension gets: one context object, built by the controller.
import type { Logger } from "pino";
import type { AdapterRegistry } from "../adapters/registry.js";
import type { Router } from "../adapters/router/router.js";
import type { TieredAdapterStore } from "../adapters/store/index.js";
import type { Config } from "../config/schema.js";
import type { StepEngine } from "../engine/types.js";
import type { Bus } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";
import type { Job, JobHandle, JobSink, SchedulerStats, StepLogEntry } from "../scheduler/types.js";
import type { EventBus } from "./events.js";
import type { Health } from "./health.js";

/** The part of the Scheduler the daemon uses (the real one or a test double). */
export interface SchedulerPort {
  readonly busy: boolean;
  submit(job: Job, sink: JobSink): JobHandle;
  start(): void;
  stop(graceMs: number): Promise<void>;
  stats(): SchedulerStats;
  onStep(listener: (entry: StepLogEntry) => void): () => void;
  on(event: "busy" | "idle", listener: () => void): unknown;
  off(event: "busy" | "idle", listener: () => void): unknown;
}

export interface DaemonContext {
  config: Config;
  topics: Topics;
  bus: Bus;
  events: EventBus;
  health: Health;
  logger: Logger;
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
}

/** One feature of the daemon. The constructor only stores the context; work starts in start(). */
export interface Extension {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
