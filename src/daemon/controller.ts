// Composition root: builds the broker, MQTT connection, engine, adapter slots and scheduler, hands
// them to each feature in one context object, starts features in order and stops them in reverse.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { AdapterRegistry } from "../adapters/registry.js";
import { FeatureExtractor } from "../adapters/router/features.js";
import { LikelihoodProfiler } from "../adapters/router/profile.js";
import { Router } from "../adapters/router/router.js";
import { buildAdapterStore } from "../adapters/store/index.js";
import type { Config } from "../config/schema.js";
import type { StepEngine } from "../engine/types.js";
import { AggregateWill } from "../fleet/aggregate-will.js";
import { Fleet } from "../fleet/fleet.js";
import { NoLed, type Led } from "../leds/index.js";
import { EmbeddedBroker } from "../mqtt/broker.js";
import { Bus, type BusOptions } from "../mqtt/client.js";
import { topics } from "../mqtt/topics.js";
import { userDirectory } from "../mqtt/users.js";
import { realClock, type Clock } from "../runtime/clock.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { Admin } from "./admin.js";
import { BridgeInfo } from "./bridge-info.js";
import { BridgeState, boardState } from "./bridge-state.js";
import type { DaemonContext, Extension } from "./context.js";
import { EventBus } from "./events.js";
import { Health } from "./health.js";
import { HomeAssistant } from "./homeassistant.js";
import { RequestJournal } from "./journal.js";
import { Metrics } from "./metrics.js";
import { Prewarm } from "./prewarm.js";
import { RequestHandler } from "./request-handler.js";
import { StatusLed } from "./status-led.js";
import { Systemd, type Notifier } from "./systemd.js";
import { Unavailable } from "./unavailable.js";

export interface ControllerOptions {
  config: Config;
  logger: Logger;
  modelPath: string;
  openEngine(path: string): Promise<StepEngine>;
  led?: Led;
  env?: NodeJS.ProcessEnv; // for systemd's NOTIFY_SOCKET / WATCHDOG_USEC
  notifier?: Notifier;
  clock?: Clock; // default: the real one
}

/** Adapters scored side by side in one profiling batch. */
const PROFILE_SLOTS = 4;

/** daemon.board_id, else the hostname made fit for a topic level. */
export function boardIdOf(config: Config): string {
  return config.daemon.board_id ?? (hostname().replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64) || "board");
}

export const VERSION: string = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

export class Controller {
  private broker: EmbeddedBroker | null = null;
  private ctx: DaemonContext | null = null;
  private extensions: Extension[] = [];
  private requests: RequestHandler | null = null;
  private journal: RequestJournal | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: ControllerOptions) {}

  /** Port of the embedded broker (null when using an external one). */
  get brokerPort(): number | null {
    return this.broker?.port ?? null;
  }

  get context(): DaemonContext {
    if (!this.ctx) throw new Error("controller not started");
    return this.ctx;
  }

  async start(): Promise<void> {
    const { config, logger } = this.opts;
    const clock = this.opts.clock ?? realClock;
    const events = new EventBus(logger);
    const health = new Health(events);
    const t = topics(config.mqtt.base_topic);
    const boardId = boardIdOf(config);
    const registry = new AdapterRegistry({
      entries: config.adapters.entries,
      directory: config.adapters.directory,
      stateFile: join(config.daemon.data_dir, "adapters.json"),
      indexFile: join(config.daemon.data_dir, "adapter-index.json"),
    });
    await registry.load(logger);
    const invalid = registry.list().filter((e) => e.problem !== null);
    for (const e of invalid.slice(0, 20)) logger.warn({ adapter: e.name, path: e.path, problem: e.problem }, "adapter refused: requests get ADAPTER_INVALID");
    if (invalid.length > 20) logger.warn({ more: invalid.length - 20 }, "more adapters refused");
    logger.info({ adapters: registry.size }, "adapters registered");

    const bus = new Bus(await this.busOptions(t.board(boardId).state, boardState(boardId, "offline"), boardId));
    bus.events.on("up", () => health.set({ brokerDown: false }));
    bus.events.on("down", () => health.set({ brokerDown: true }));

    let engine: StepEngine | null = null;
    let modelError: string | null = null;
    try {
      // Loading copies every weight out of the file (seconds per GB from an SD card).
      logger.info({ model: this.opts.modelPath }, "loading model");
      const t0 = performance.now();
      engine = await this.opts.openEngine(this.opts.modelPath);
      logger.info({ model: this.opts.modelPath, ms: Math.round(performance.now() - t0) }, "model loaded");
    } catch (e) {
      modelError = (e as Error).message;
      logger.error({ err: e, model: this.opts.modelPath }, "model failed to load: requests will get INTERNAL");
      health.set({ modelFailed: true });
    }
    const slots = engine ? await buildAdapterStore(config, engine, registry, logger) : null;
    const s = config.scheduler;
    const scheduler =
      engine && slots
        ? new Scheduler({
            engine,
            adapters: slots,
            logger,
            clock,
            limits: {
              maxBatchTokens: s.max_batch_tokens,
              maxSequences: s.max_sequences,
              prefillChunk: s.prefill_chunk,
              maxQueue: s.max_queue,
              perTenantInFlight: s.per_tenant_in_flight,
              perTenantQueue: s.per_tenant_queue,
              maxPassOver: s.max_pass_over,
            },
          })
        : null;
    const router = engine ? await this.openRouter(engine, registry) : null;
    const ctx: DaemonContext = {
      config, topics: t, bus, events, health, logger, clock, version: VERSION,
      engine, scheduler, registry, slots, router, modelPath: this.opts.modelPath, modelError,
      boardId, intake: [], fleet: null,
    };
    if (config.daemon.journal && scheduler) {
      this.journal = new RequestJournal(join(config.daemon.data_dir, "requests.journal"), logger);
      ctx.intake.push(this.journal);
    }
    this.ctx = ctx;
    if (scheduler) {
      scheduler.on("busy", () => health.set({ busy: true }));
      // Idle again: the queue has drained, so an earlier overload is over.
      scheduler.on("idle", () => health.set({ busy: false, overloaded: false }));
      events.on("answered", ({ code }) => code === "OVERLOADED" && health.set({ overloaded: true }));
    }

    // The LED first, so it shows "broker down" while the connection comes up.
    const led = new StatusLed(ctx, this.opts.led ?? new NoLed());
    await led.start();
    this.extensions.push(led);
    // Open before connecting: a persistent session's queued requests arrive at once, before the
    // request handler subscribes, and are journaled as they are held (mqtt.js acknowledges them).
    const pending = this.journal?.open() ?? [];
    const journal = this.journal;
    if (journal) {
      bus.observeHeld({
        held: (msg) => msg.qos > 0 && t.tenantOfRequest(msg.topic) !== null && journal.hold(msg),
        released: (msg) => journal.release(msg),
      });
    }
    bus.start();
    await bus.waitConnected();

    if (engine && scheduler) this.requests = new RequestHandler(ctx);
    const external = !config.mqtt.embedded;
    // A fleet: several boards share the requests of one external MQTT 5 broker.
    const fleet = external && bus.mqtt5 && config.mqtt.shared_subscription && this.requests ? new Fleet(ctx, this.requests) : null;
    ctx.fleet = fleet;
    const features: Extension[] = [
      ...(external ? [new AggregateWill(ctx)] : []),
      new BridgeState(ctx),
      new BridgeInfo(ctx),
      new Metrics(ctx),
      new Admin(ctx),
      new Prewarm(ctx),
      ...(config.homeassistant.enabled ? [new HomeAssistant(ctx)] : []),
      ...(fleet ? [fleet] : []),
      this.requests ?? new Unavailable(ctx),
      // Last: READY=1 only once everything above serves.
      new Systemd(ctx, this.opts.env, this.opts.notifier),
    ];
    scheduler?.start();
    for (const f of features) {
      await f.start();
      this.extensions.push(f);
      logger.debug({ feature: f.name }, "started");
    }
    // Requests a previous run accepted and did not answer: run again, or, when it had written the
    // reply, that reply published again. A copy the broker redelivered meanwhile is already running
    // (the handler's dedupe drops the other). In a fleet, only those no other board took over when
    // this one went offline. A reply already in the outgoing store (killed between handing it to
    // mqtt.js and closing it) is sent again by mqtt.js with its packet id: not published again.
    for (const p of pending) {
      if (fleet && !fleet.holds(p.key)) continue;
      if (!p.reply) this.requests?.inject(p.msg, true, true);
      else if (bus.handedOverBefore(p.reply.topic, p.reply.payload)) continue;
      else if (!bus.exactlyOnce) void bus.publish(p.reply.topic, p.reply.payload, { correlationData: p.reply.correlationData }).catch(() => undefined);
      else {
        // Kept open (accepted again) until the reply is in the outgoing store.
        this.journal?.record(p.key, p.msg);
        const stored = () => this.journal?.done(p.key);
        void bus.publish(p.reply.topic, p.reply.payload, { correlationData: p.reply.correlationData, qos: 2, onStored: stored }).catch(() => undefined);
      }
    }
    this.journal?.replayDone();
    // Only now may tenants connect: their requests are served from the first one.
    this.broker?.openToClients();
  }

  /** Graceful stop: new requests get SHUTTING_DOWN, running ones finish within the grace period
   *  (then are cancelled), the final replies and the offline state are published. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const ctx = this.ctx;
    const { logger, config } = this.opts;
    this.requests?.stopAccepting();
    await ctx?.scheduler?.stop(config.daemon.shutdown_grace_ms);
    await this.requests?.drained();
    for (const f of [...this.extensions].reverse()) {
      await f.stop().catch((err: unknown) => logger.error({ err, feature: f.name }, "stop failed"));
    }
    this.extensions = [];
    await ctx?.router?.stop().catch((err: unknown) => logger.error({ err }, "router stop failed"));
    if (ctx) {
      if (!ctx.bus.connected) logger.warn("broker unreachable at shutdown: the last will reports offline");
      await ctx.bus.stop();
      ctx.engine?.dispose();
    }
    await ctx?.registry.flush().catch((err: unknown) => logger.warn({ err }, "adapter index not written"));
    this.journal?.close();
    await this.broker?.close();
    logger.info("stopped");
  }

  /** The router on a small context of its own (1 thread), trained from the stored state and the
   *  adapters' example files. Without a side context (or if it fails) "auto" falls back. */
  private async openRouter(engine: StepEngine, registry: AdapterRegistry): Promise<Router> {
    const { config, logger } = this.opts;
    const r = config.router;
    const common = { registry, policy: { k: r.k, margin: r.margin }, logger, stateFile: join(config.daemon.data_dir, "router.json") };
    if (!engine.openSideContext) return new Router({ ...common, features: null });
    let features: FeatureExtractor | null = null;
    try {
      const side = await engine.openSideContext({
        threads: 1, // the scheduler's context keeps the cores; a feature pass is a few layers of one prompt
        nCtx: r.max_prompt_tokens,
        nSeqMax: 4,
        nBatchMax: Math.max(64, r.max_prompt_tokens),
        kvType: "f32",
      });
      const i = engine.info;
      const spec = `${i.name}|${i.arch}|${i.nEmbd}x${i.nLayer}|${i.weightBytes}|layers=${r.feature_layers}|tokens=${r.max_prompt_tokens}`;
      features = new FeatureExtractor(side, (text) => engine.tokenize(text, true), { layers: r.feature_layers, maxTokens: r.max_prompt_tokens }, spec);
      const m = config.model;
      const profileTokens = 128;
      const profiler = new LikelihoodProfiler({
        // Opened per profiling call (its slot pool costs RAM), with the slot pool's settings.
        open: () =>
          engine.openSideContext!({
            threads: 1, nCtx: profileTokens, nSeqMax: 8, nBatchMax: 256, kvType: "f32",
            loraSlots: PROFILE_SLOTS, loraMaxRank: m.lora_max_rank, loraPoolType: m.lora_pool_type,
          }),
        slots: PROFILE_SLOTS,
        resolve: (name) => registry.resolve(name),
      });
      const router = new Router({ ...common, features, profiler, profileTokens });
      await router.start();
      return router;
    } catch (err) {
      logger.error({ err }, "adapter router failed to start: \"auto\" falls back to default adapters");
      await features?.dispose().catch(() => undefined);
      return new Router({ ...common, features: null });
    }
  }

  private async busOptions(willTopic: string, willPayload: string, boardId: string): Promise<BusOptions> {
    const { config, logger } = this.opts;
    const m = config.mqtt;
    const common = {
      clientId: m.client_id ?? `edgelora-${boardId}`,
      qos: m.qos,
      keepaliveS: m.keepalive_s,
      reconnectMs: m.reconnect_ms,
      will: { topic: willTopic, payload: willPayload },
      logger,
    };
    if (!m.embedded) {
      if (!m.url) throw new Error("mqtt.url is required when mqtt.embedded is false");
      const tls = { ca: m.tls.ca, cert: m.tls.cert, key: m.tls.key, rejectUnauthorized: m.tls.reject_unauthorized };
      // A persistent session: requests published while the board restarts wait in the broker. In a
      // fleet, a peer adopts a dead board's session (src/fleet/adopt.ts) for what it held.
      const sessionExpiryS = m.shared_subscription ? config.fleet.session_expiry_s : 3600;
      // One board: its packets in flight kept on disk, so final replies (QoS 2) reach the broker once
      // across a kill. A fleet keeps QoS 1 (a peer adopts a dead board's session, not its store).
      const d = config.daemon;
      const outgoingStoreFile = d.exactly_once && d.journal && !m.shared_subscription ? join(d.data_dir, "outgoing.store") : undefined;
      return { ...common, url: m.url, protocolVersion: 5, username: m.username, password: m.password, tls, clean: false, sessionExpiryS, outgoingStoreFile };
    }
    const observer = { ...config.observer, discoveryPrefix: config.homeassistant.discovery_prefix };
    const { users, daemon } = userDirectory({ tenants: config.tenants, admin: config.admin, observer });
    this.broker = new EmbeddedBroker({ host: m.host, port: m.port, base: m.base_topic, users, logger });
    const port = await this.broker.listen();
    logger.info({ host: m.host, port }, "embedded MQTT broker listening");
    return { ...common, url: `mqtt://${m.host}:${port}`, protocolVersion: 4, username: daemon.username, password: daemon.password };
  }
}
