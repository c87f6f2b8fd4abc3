// Tenant requests: <base>/<tenant>/request in, replies out (see DESIGN.md, MQTT contract).
// Every request gets exactly one final reply (ok or a coded error); streaming adds chunks before it.
import type { BusMessage } from "../mqtt/client.js";
import { RequestError, type ErrorCode, type Job, type JobHandle, type JobResult } from "../scheduler/types.js";
import type { DaemonContext, Extension, SchedulerPort } from "./context.js";
import { Dedupe } from "./dedupe.js";
import { errorReply, json, type OkReply, type StreamChunk, type TenantReply } from "./payloads.js";
import { promptTokens } from "./prompt.js";
import { replyRoute, type ReplyRoute } from "./reply-route.js";
import { BadRequest, parseRequest, type RequestBody } from "./request-schema.js";
import { ChunkCoalescer } from "./stream-chunks.js";
import type { StepEngine } from "../engine/types.js";
import { AUTO, resolveAuto, tierOfSlots, type RouterView } from "./auto-adapter.js";

const DEFAULT_SAMPLING = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 };

export class RequestHandler implements Extension {
  readonly name = "requests";
  private readonly inFlight = new Map<string, { handle: JobHandle; done: Promise<void> }>();
  private readonly closing: string[] = []; // answered in this tick, closed once their replies are written
  private readonly routing = new Set<Promise<void>>(); // "auto" requests being routed, not yet queued
  private readonly dedupe: Dedupe<{ route: ReplyRoute; reply: TenantReply }>;
  private readonly engine: StepEngine;
  private readonly scheduler: SchedulerPort;
  private accepting = false;
  private shared = false;

  /** Only for a daemon with an engine and a scheduler (else Unavailable answers the requests). */
  constructor(private readonly ctx: DaemonContext) {
    if (!ctx.engine || !ctx.scheduler) throw new Error("the request handler needs the engine and the scheduler");
    this.engine = ctx.engine;
    this.scheduler = ctx.scheduler;
    this.dedupe = new Dedupe(ctx.clock);
  }

  async start(): Promise<void> {
    const { bus, topics, config } = this.ctx;
    // Shared subscription: several boards on one external MQTT 5 broker split the requests.
    this.shared = bus.mqtt5 && config.mqtt.shared_subscription;
    const filter = this.shared ? `$share/edgelora/${topics.allRequests}` : topics.allRequests;
    this.accepting = true;
    await bus.subscribe(filter, (msg) => this.onMessage(msg));
  }

  /** A request that did not come through the request subscription: one left pending by a previous
   *  run (journal), forwarded by a peer, or taken over from a board that died. `forwarded`: never
   *  handed on again. `replayed`: from the journal, so a copy answered since the start is dropped. */
  inject(msg: BusMessage, forwarded = true, replayed = false): void {
    void this.onMessage(msg, forwarded, replayed);
  }

  /** Cancels tenant/transaction when it runs here. */
  cancel(tenant: string, transaction: string): boolean {
    const running = this.inFlight.get(`${tenant}/${transaction}`);
    running?.handle.cancel();
    return running !== undefined;
  }

  /** Accepting new requests (started, not stopping). */
  get serving(): boolean {
    return this.accepting;
  }

  /** New requests get SHUTTING_DOWN from now on; running ones continue until drained. */
  stopAccepting(): void {
    // In a fleet, the broker hands new requests to the other boards from now on.
    if (this.accepting && this.shared)
      this.ctx.bus.unsubscribe(`$share/edgelora/${this.ctx.topics.allRequests}`).catch((err: unknown) => this.ctx.logger.warn({ err }, "request subscription not dropped"));
    this.accepting = false;
  }

  /** Resolves when every running request has published its final reply. */
  async drained(): Promise<void> {
    await Promise.all([...this.routing]);
    await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }

  async stop(): Promise<void> {
    this.stopAccepting();
    await this.drained();
  }

  private onMessage(msg: BusMessage, forwarded = false, replayed = false): Promise<void> | void {
    const tenant = this.ctx.topics.tenantOfRequest(msg.topic);
    if (tenant === null) return;
    const tenantConfig = Object.hasOwn(this.ctx.config.tenants, tenant) ? this.ctx.config.tenants[tenant] : undefined;
    let parsed;
    try {
      parsed = parseRequest(msg.payload, this.ctx.config.mqtt.max_payload_bytes);
    } catch (e) {
      const err = e as BadRequest;
      return this.answer(tenant, { topic: this.ctx.topics.response(tenant) }, errorReply(err.transaction, "BAD_REQUEST", err.message));
    }
    const { transaction } = parsed;
    const key = `${tenant}/${transaction}`;
    if (parsed.kind === "cancel") {
      const running = this.inFlight.get(key);
      if (running) return running.handle.cancel();
      if (this.ctx.fleet?.cancelElsewhere(tenant, transaction)) return;
      return this.answer(tenant, { topic: this.ctx.topics.response(tenant) }, errorReply(transaction, "BAD_REQUEST", "no running request with this transaction"));
    }
    const body = parsed.body;
    const route = replyRoute(this.ctx.topics, tenant, msg, body.reply_to);
    if (typeof route === "string") return this.answer(tenant, { topic: this.ctx.topics.response(tenant) }, errorReply(transaction, "BAD_REQUEST", route));
    const stream = body.stream === true;
    const fail = (code: ErrorCode, message: string) => this.answer(tenant, route, errorReply(transaction, code, message, stream));

    if (!tenantConfig) return fail("BAD_REQUEST", `unknown tenant ${tenant}`);
    if (!this.accepting) return fail("SHUTTING_DOWN", "server is shutting down");
    if (parsed.clientTransaction) {
      if (!forwarded && this.ctx.fleet?.runningElsewhere(tenant, transaction))
        return this.ctx.logger.info({ tenant, transaction }, "duplicate of a request running on another board dropped");
      const earlier = forwarded ? null : (this.ctx.fleet?.answeredReply(tenant, transaction) ?? null);
      if (earlier) {
        this.ctx.logger.info({ tenant, transaction }, "duplicate of a request the fleet answered: its reply sent again");
        return this.answer(tenant, route, earlier);
      }
      const seen = this.dedupe.check(key);
      if (seen === "running") return this.ctx.logger.info({ tenant, transaction }, "duplicate of a running request dropped");
      // Replayed from the journal: the broker's redelivered copy was answered first, in this run.
      if (seen !== "new" && replayed) return this.ctx.logger.info({ tenant, transaction }, "journal replay of a request answered since the restart dropped");
      if (seen !== "new") return this.answer(tenant, seen.reply.route, seen.reply.reply);
    }
    let job: Job;
    try {
      job = this.buildJob(tenant, tenantConfig, transaction, body);
    } catch (e) {
      this.dedupe.forget(key);
      if (e instanceof RequestError) return fail(e.code, e.message);
      this.ctx.logger.error({ err: e, tenant }, "request preparation failed");
      return fail("INTERNAL", "internal error");
    }
    // Recorded before this handler returns, so before the broker gets the acknowledgement.
    for (const o of this.ctx.intake) o.accepted({ key, tenant, transaction, msg, stream });
    const closeIntake = () => {
      for (const o of this.ctx.intake) o.answered(key);
    };
    // Runs here, or on a fleet peer that holds the adapter.
    const place = (job: Job, routed?: RouterView): Promise<void> | void => {
      const fleet = this.ctx.fleet;
      const runHere = () => this.run(tenant, key, job, route, body, stream, parsed.clientTransaction, routed);
      if (forwarded || !fleet) return runHere();
      return fleet.offer(msg, job.adapter).then(
        (taken) => {
          if (!taken) return runHere();
          this.dedupe.forget(key); // the peer runs it; the fleet ledger dedupes from now on
          closeIntake();
        },
        () => runHere(),
      );
    };
    if (job.adapter !== AUTO) return place(job);
    // "auto": the router picks the adapter before the job is queued (or offered to a peer).
    const routing = resolveAuto(this.ctx.router, tenantConfig, this.ctx.registry, job.promptTokens, tierOfSlots(this.ctx.slots))
      .then(({ adapter, view }) => {
        this.ctx.logger.debug({ tenant, transaction, adapter, ms: view.ms, because: view.chosen_because }, "adapter routed");
        if (!this.accepting) {
          this.dedupe.forget(key);
          closeIntake();
          return fail("SHUTTING_DOWN", "server is shutting down");
        }
        return place({ ...job, adapter }, view);
      })
      .catch((e: unknown) => {
        this.dedupe.forget(key);
        closeIntake();
        this.ctx.logger.error({ err: e, tenant }, "adapter routing failed");
        return fail("INTERNAL", "adapter routing failed");
      })
      .finally(() => this.routing.delete(routing));
    this.routing.add(routing);
    return routing;
  }

  private buildJob(tenant: string, tc: DaemonContext["config"]["tenants"][string], transaction: string, body: RequestBody): Job {
    const cfg = this.ctx.config;
    const adapter = body.adapter === undefined ? tc.default_adapter : body.adapter;
    if (adapter !== null && adapter !== AUTO) {
      if (!tc.adapters.includes("*") && !tc.adapters.includes(adapter))
        throw new RequestError("ADAPTER_FORBIDDEN", `tenant ${tenant} may not use adapter ${JSON.stringify(adapter)}`);
      if (!this.ctx.registry.has(adapter)) throw new RequestError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(adapter)}`);
    }
    const maxTokens = body.max_tokens ?? Math.min(cfg.scheduler.default_max_tokens, cfg.scheduler.max_tokens_limit);
    if (maxTokens > cfg.scheduler.max_tokens_limit) throw new RequestError("BAD_REQUEST", `max_tokens: must be <= ${cfg.scheduler.max_tokens_limit}`);
    const tokens = promptTokens(this.engine, body, cfg.model.chat_template);
    // One position must stay free for the first generated token.
    const contextLength = this.engine.limits.nCtx;
    if (tokens.length >= contextLength)
      throw new RequestError("PROMPT_TOO_LONG", `prompt is ${tokens.length} tokens; the context holds ${contextLength}`);
    return {
      id: `${tenant}/${transaction}`,
      tenant,
      promptTokens: tokens,
      adapter,
      maxTokens,
      sampling: {
        temperature: body.temperature ?? DEFAULT_SAMPLING.temperature,
        topK: body.top_k ?? DEFAULT_SAMPLING.top_k,
        topP: body.top_p ?? DEFAULT_SAMPLING.top_p,
        minP: body.min_p ?? DEFAULT_SAMPLING.min_p,
        seed: body.seed ?? Math.floor(Math.random() * 0xffffffff),
      },
      stop: body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
      timeoutMs: cfg.scheduler.request_timeout_ms,
    };
  }

  private run(tenant: string, key: string, job: Job, route: ReplyRoute, body: RequestBody, stream: boolean, dedupe: boolean, routed?: RouterView): void {
    const transaction = key.slice(tenant.length + 1);
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const { stream_chunk_ms: intervalMs, stream_chunk_tokens: maxPieces, stream_chunk_qos: chunkQos } = this.ctx.config.mqtt;
    const chunks = stream
      ? new ChunkCoalescer({ intervalMs, maxPieces }, (delta, seq) => void this.publish(route, { transaction, type: "chunk", seq, delta }, chunkQos), this.ctx.clock)
      : null;
    const final = (reply: TenantReply, code: ErrorCode | null) => {
      chunks?.flush();
      this.inFlight.delete(key);
      // Refusals for load or shutdown may be retried with the same transaction.
      const remembered = dedupe && code !== "OVERLOADED" && code !== "SHUTTING_DOWN";
      const closeIntake = () => {
        for (const o of this.ctx.intake) o.answered(key);
      };
      if (dedupe) {
        if (remembered) this.dedupe.finish(key, { route, reply });
        else this.dedupe.forget(key);
      }
      for (const o of this.ctx.intake) o.replying?.(key, route, reply, remembered);
      if (this.ctx.bus.exactlyOnce) {
        // QoS 2 with the outgoing store on disk: closed as soon as mqtt.js holds the reply (before the
        // socket write); from then on mqtt.js, not the journal, sends it again after a kill, with the
        // same packet id, and the broker delivers it once.
        void this.answer(tenant, route, reply, { qos: 2, onStored: closeIntake }).finally(finish);
        return;
      }
      // Otherwise, connected, the request is closed once its reply is in the kernel's socket buffer
      // (the kernel still sends it if we are killed after that). A kill between the two writes would
      // answer it again after a restart (with the same reply, kept by the journal), so the gap is kept
      // to two adjacent system calls: the replies of one step are written to the socket together, then
      // all of them closed in one journal write (closeAfterWritten). Waiting for the broker's ack
      // instead would widen the gap. Offline, the reply waits in memory: closed at the ack.
      const connected = this.ctx.bus.connected;
      void this.answer(tenant, route, reply).finally(() => {
        if (!connected) closeIntake();
        finish();
      });
      if (connected) this.closeAfterWritten(key);
    };
    const handle = this.scheduler.submit(job, {
      onDelta: chunks ? (delta) => chunks.push(delta) : undefined,
      onDone: (r) => final(okReply(transaction, job.adapter, r, stream, routed), null),
      onError: (code, message) => final(errorReply(transaction, code, message, stream), code),
    });
    this.inFlight.set(key, { handle, done });
    this.ctx.logger.debug({ tenant, transaction, adapter: job.adapter, prompt_tokens: job.promptTokens.length, stream: body.stream }, "request queued");
  }

  /** Closes `key` at the intake observers once the replies published in this tick are written. */
  private closeAfterWritten(key: string): void {
    this.closing.push(key);
    if (this.closing.length > 1) return;
    // Runs after every final reply of this tick (one engine step) has been handed to the client.
    process.nextTick(() => {
      const keys = this.closing.splice(0);
      this.ctx.bus.afterWritten(() => {
        for (const o of this.ctx.intake) {
          if (o.answeredAll) o.answeredAll(keys);
          else for (const k of keys) o.answered(k);
        }
      });
    });
  }

  private answer(tenant: string, route: ReplyRoute, reply: TenantReply, opts: { qos?: 0 | 1 | 2; onStored?: () => void } = {}): Promise<void> {
    this.ctx.events.emit("answered", { tenant, code: reply.status === "error" ? reply.error.code : null });
    return this.publish(route, reply, opts.qos, opts.onStored);
  }

  private publish(route: ReplyRoute, reply: TenantReply | StreamChunk, qos?: 0 | 1 | 2, onStored?: () => void): Promise<void> {
    return this.ctx.bus
      .publish(route.topic, json("response", reply), { correlationData: route.correlationData, qos, onStored })
      .catch((err: unknown) => this.ctx.logger.warn({ err, topic: route.topic }, "reply not published"));
  }
}

function okReply(transaction: string, adapter: string | null, r: JobResult, stream: boolean, routed?: RouterView): OkReply {
  return {
    transaction,
    ...(stream ? { type: "final" as const } : {}),
    status: "ok",
    text: r.text,
    adapter,
    ...(routed ? { router: routed } : {}),
    finish_reason: r.finishReason,
    usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens },
    timings: r.timings,
  };
}
