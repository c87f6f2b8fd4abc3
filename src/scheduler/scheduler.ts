// Continuous batching across tenants. One loop owns the engine: each step carries one decode token of every
// running sequence plus prefill chunks of newly admitted ones, so requests join and leave the batch between
// steps and a long prompt never stalls the others. Admission is round-robin across tenants (FairQueue); an
// adapter slot is pinned before a job starts and released when it ends, whatever the way it ends.
// The loop is pipelined: as soon as a step's tokens are taken in, the next step goes to the engine, and only then
// are the previous step's results handed to the sinks (text, MQTT replies), so that JavaScript work overlaps the
// engine's compute instead of leaving it idle. The engine is still touched only between steps.
import type { Logger } from "pino";
import type { StepEngine, StepResult, StepToken } from "../engine/types.js";
import { realClock, type Clock } from "../runtime/clock.js";
import { TypedEvents, type Signal } from "../runtime/events.js";
import { CacheAwareAdmission } from "./admission.js";
import { FairQueue } from "./queue.js";
import { Sequence, unstartedResult, type AdapterLease, type Ticket } from "./sequence.js";
import { Throughput } from "./stats.js";
import {
  RequestError,
  type AdapterSlots,
  type ErrorCode,
  type Job,
  type JobHandle,
  type JobResult,
  type JobSink,
  type SchedulerLimits,
  type SchedulerStats,
  type StepLogEntry,
} from "./types.js";

export interface SchedulerOptions {
  engine: StepEngine;
  adapters: AdapterSlots;
  limits: SchedulerLimits;
  logger?: Logger;
  clock?: Pick<Clock, "now" | "setTimeout" | "clearTimeout">; // default: the real one
}

export interface SchedulerEvents {
  busy: Signal;
  idle: Signal;
  step: StepLogEntry;
}

// When every slot is pinned by someone other than our own sequences, no release will wake a waiting job.
const SLOT_RETRY_MS = 50;

interface Acquisition {
  ticket: Ticket;
  seq: number;
  epoch: number; // slot epoch when the acquire started
  outcome: { lease: AdapterLease | null } | { err: unknown };
}

type State = "created" | "started" | "stopping" | "stopped";

interface InFlightStep {
  batch: StepToken[];
  members: Sequence[];
  prefillTokens: number;
  startedAt: number; // performance.now()
  gapMs: number;
  result: Promise<StepResult>;
}

export class Scheduler {
  private readonly engine: StepEngine;
  private readonly adapters: AdapterSlots;
  private readonly limits: SchedulerLimits;
  private readonly logger?: Logger;
  private readonly clock: Pick<Clock, "now" | "setTimeout" | "clearTimeout">;
  private readonly events: TypedEvents<SchedulerEvents>;
  private readonly contextLength: number;

  private readonly queue: FairQueue<Ticket>;
  private readonly admission: CacheAwareAdmission<Ticket>;
  private readonly freeSeqs: number[];
  private readonly running = new Map<number, Sequence>(); // by engine seq id, in admission order
  private readonly acquiring = new Set<Ticket>(); // admitted, waiting for an adapter slot
  private readonly acquisitions: Acquisition[] = []; // acquire outcomes for the loop to settle
  private readonly pins = new Map<string, number>(); // adapter -> our sequences holding it
  private slotEpoch = 0; // bumped whenever a slot may have become free

  private state: State = "created";
  private stopDeadline = Infinity;
  private loop: Promise<void> | null = null;
  private wakeup: (() => void) | null = null;
  private isBusy = false;

  private steps = 0;
  private completed = 0;
  private maxDistinctAdapters = 0;
  private readonly throughput = new Throughput();
  private readonly totals = { engineMs: 0, waitMs: 0, gapMs: 0, sequences: 0, decodeTokens: 0, prefillTokens: 0 };
  private lastResultAt: number | null = null; // performance.now() when the last step's result was taken in

  // Sink calls made while the loop prepares the next step wait here until that step is running.
  private deferring = false;
  private readonly deferred: (() => void)[] = [];

  constructor(options: SchedulerOptions) {
    const { limits, engine } = options;
    if (limits.maxSequences < 1 || limits.prefillChunk < 1 || limits.maxBatchTokens < limits.maxSequences) {
      throw new RangeError("scheduler limits: need maxSequences >= 1, prefillChunk >= 1, maxBatchTokens >= maxSequences");
    }
    if (limits.maxSequences > engine.limits.nSeqMax || limits.maxBatchTokens > engine.limits.nBatchMax) {
      throw new RangeError(
        `scheduler limits exceed the engine context (nSeqMax ${engine.limits.nSeqMax}, nBatchMax ${engine.limits.nBatchMax})`,
      );
    }
    this.engine = options.engine;
    this.adapters = options.adapters;
    this.limits = limits;
    this.logger = options.logger;
    this.clock = options.clock ?? realClock;
    this.events = new TypedEvents<SchedulerEvents>(options.logger);
    this.contextLength = engine.limits.nCtx;
    this.queue = new FairQueue<Ticket>(limits, (t) => t.job.tenant);
    this.admission = new CacheAwareAdmission<Ticket>(options.adapters.tier?.bind(options.adapters), limits.maxPassOver);
    // Popped from the end: sequence 0 is handed out first.
    this.freeSeqs = Array.from({ length: limits.maxSequences }, (_, i) => limits.maxSequences - 1 - i);
  }

  private now(): number {
    return this.clock.now();
  }

  get busy(): boolean {
    return this.isBusy;
  }

  /** Queues a job. Never throws: a refusal reaches the sink asynchronously. */
  submit(job: Job, sink: JobSink): JobHandle {
    const now = this.now();
    const ticket: Ticket = { job, sink, submittedAt: now, deadline: now + job.timeoutMs, cancelled: false, slotWaitEpoch: null };
    const refusal = this.refusal(job);
    if (refusal) {
      queueMicrotask(() => this.fail(ticket, refusal.code, refusal.message));
    } else if (!this.queue.push(ticket)) {
      queueMicrotask(() => this.fail(ticket, "OVERLOADED", `queue full for tenant ${job.tenant}`));
    } else {
      // The adapter starts moving up now, so its load overlaps the running sequences' steps.
      if (job.adapter !== null) this.adapters.prefetch?.(job.adapter);
      this.updateBusy();
      this.wake();
    }
    return { cancel: () => this.cancel(ticket) };
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "started";
    this.loop = this.run().catch((err: unknown) => this.logger?.error({ err }, "scheduler loop crashed"));
  }

  /** Stops admitting, lets running jobs finish for up to `graceMs`, then cancels what is left. */
  async stop(graceMs: number): Promise<void> {
    if (this.state === "stopped") return;
    const wasStarted = this.state !== "created";
    if (this.state !== "stopping") {
      this.state = "stopping";
      this.stopDeadline = this.now() + graceMs;
      for (const ticket of this.queue.removeWhere(() => true)) this.fail(ticket, "SHUTTING_DOWN", "server is shutting down");
    }
    this.wake();
    if (wasStarted) await this.loop;
    this.state = "stopped";
    this.updateBusy();
  }

  stats(): SchedulerStats {
    return {
      queueDepth: this.queue.size,
      active: this.running.size + this.acquiring.size,
      tokensPerSecond: this.throughput.perSecond(this.now()),
      steps: this.steps,
      completed: this.completed,
      maxDistinctAdaptersInStep: this.maxDistinctAdapters,
      totals: { ...this.totals },
    };
  }

  /** Subscribes to busy/idle (and the step log); returns the unsubscribe function. */
  on<K extends keyof SchedulerEvents>(event: K, listener: (payload: SchedulerEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Subscribes to the step log; returns the unsubscribe function. */
  onStep(listener: (entry: StepLogEntry) => void): () => void {
    return this.events.on("step", listener);
  }

  // ---- the loop ----

  private async run(): Promise<void> {
    for (;;) {
      this.deferring = true;
      this.settleAcquisitions();
      this.sweep();
      const done = this.state === "stopping" && this.running.size === 0 && this.acquiring.size === 0;
      if (!done) this.admit();
      this.updateBusy();
      const batch = done ? [] : this.buildBatch();
      const inFlight = batch.length > 0 ? this.launch(batch) : null;
      // The previous step's results go out while this step computes.
      this.deferring = false;
      const delivered = this.flushDeliveries();
      if (done) return;
      if (inFlight) await this.complete(inFlight);
      else if (delivered === 0) {
        this.lastResultAt = null;
        await this.sleep();
      }
      // else: a sink may have submitted or cancelled something: look again before sleeping.
    }
  }

  /** Ends running sequences that were cancelled, timed out or outlived the shutdown grace; expires queued jobs. */
  private sweep(): void {
    const now = this.now();
    for (const seq of [...this.running.values()]) {
      if (seq.ticket.cancelled || now >= this.stopDeadline) this.finish(seq, "cancelled");
      else if (now >= seq.ticket.deadline) this.finish(seq, "timeout");
    }
    for (const ticket of this.queue.removeWhere((t) => now >= t.deadline)) {
      this.deliver(ticket, () => ticket.sink.onDone(unstartedResult(ticket, "timeout", now)));
    }
  }

  /** Starts as many queued jobs as there are free sequences, tenants in turn. */
  private admit(): void {
    while (this.state === "started" && this.freeSeqs.length > 0) {
      // While a job waits for a slot, jobs that would need a new slot stay behind it, or they could take the
      // slot it is waiting for; jobs of the base model or of an adapter we already hold go ahead.
      const slotWaiting = this.queue.some((t) => t.slotWaitEpoch !== null);
      const ticket = this.admission.take(this.queue, (t) => {
        const adapter = t.job.adapter;
        if (adapter === null || this.pins.has(adapter)) return true;
        if (t.slotWaitEpoch !== null) return t.slotWaitEpoch !== this.slotEpoch;
        return !slotWaiting;
      });
      if (!ticket) return;
      this.begin(ticket, this.freeSeqs.pop()!);
    }
  }

  private begin(ticket: Ticket, seq: number): void {
    const adapter = ticket.job.adapter;
    if (adapter === null) {
      this.startSequence(ticket, seq, { slot: -1, scale: 0 });
      return;
    }
    // The acquisition (maybe a load from a slower tier) overlaps the steps of the running sequences; its outcome
    // is settled by the loop between steps, so the engine is never touched while a step is in flight.
    this.acquiring.add(ticket);
    const epoch = this.slotEpoch;
    const settle = (outcome: Acquisition["outcome"]) => {
      this.acquisitions.push({ ticket, seq, epoch, outcome });
      this.wake();
    };
    this.adapters.acquire(adapter).then(
      (lease) => settle({ lease }),
      (err: unknown) => settle({ err }),
    );
  }

  private settleAcquisitions(): void {
    for (const { ticket, seq, epoch, outcome } of this.acquisitions.splice(0)) {
      this.acquiring.delete(ticket);
      if ("err" in outcome) {
        this.freeSeq(ticket, seq);
        const { err } = outcome;
        const code: ErrorCode = err instanceof RequestError ? err.code : "INTERNAL";
        if (code === "INTERNAL") this.logger?.error({ err, adapter: ticket.job.adapter }, "adapter acquire failed");
        this.fail(ticket, code, err instanceof Error ? err.message : String(err));
      } else if (this.state !== "started") {
        this.freeSeq(ticket, seq);
        if (outcome.lease) this.releaseAdapter(ticket.job.adapter!);
        this.fail(ticket, "SHUTTING_DOWN", "server is shutting down");
      } else if (outcome.lease === null) {
        // Every slot is pinned: wait at the head of the tenant's queue until a slot may have been freed.
        this.freeSeqs.push(seq);
        ticket.slotWaitEpoch = epoch;
        this.queue.putBack(ticket);
      } else {
        this.pin(ticket.job.adapter!);
        this.startSequence(ticket, seq, outcome.lease);
      }
    }
  }

  private startSequence(ticket: Ticket, seq: number, lease: AdapterLease): void {
    const sequence = new Sequence(ticket, seq, lease, this.now());
    this.running.set(seq, sequence);
    try {
      this.engine.setSampler(seq, ticket.job.sampling);
    } catch (err) {
      this.abort(sequence, "BAD_REQUEST", `sampling parameters: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** One decode token per decoding sequence, then prefill chunks in admission order while the budget lasts. */
  private buildBatch(): StepToken[] {
    const batch: StepToken[] = [];
    for (const seq of this.running.values()) if (seq.decoding) batch.push(seq.decodeToken());
    for (const seq of this.running.values()) {
      const budget = this.limits.maxBatchTokens - batch.length;
      if (budget <= 0) break;
      if (seq.promptLeft > 0) batch.push(...seq.prefillTokens(Math.min(seq.promptLeft, this.limits.prefillChunk, budget)));
    }
    return batch;
  }

  /** Hands the batch to the engine; its result is taken in by complete(). */
  private launch(batch: StepToken[]): InFlightStep {
    const members = [...new Set(batch.map((t) => t.seq))].map((id) => this.running.get(id)!);
    const prefillTokens = batch.filter((t) => t.pos < this.running.get(t.seq)!.job.promptTokens.length).length;
    const startedAt = performance.now();
    const gapMs = this.lastResultAt === null ? 0 : startedAt - this.lastResultAt;
    // A synchronous throw becomes a rejected promise: complete() handles both alike.
    const result = (async () => this.engine.step(batch))();
    return { batch, members, prefillTokens, startedAt, gapMs, result };
  }

  private async complete(step: InFlightStep): Promise<void> {
    const { batch, members, prefillTokens } = step;
    let result: StepResult;
    try {
      result = await step.result;
    } catch (err) {
      this.deferring = true;
      this.lastResultAt = performance.now();
      // The failed step leaves its sequences' KV state unknown: end them, keep serving everyone else.
      this.logger?.error({ err, sequences: members.length }, "engine step failed");
      const message = `engine step failed: ${err instanceof Error ? err.message : String(err)}`;
      for (const seq of members) if (this.running.get(seq.seq) === seq) this.abort(seq, "INTERNAL", message);
      return;
    }
    this.deferring = true;
    this.lastResultAt = performance.now();
    const now = this.now();
    for (const sampled of result.sampled) {
      const seq = this.running.get(sampled.seq);
      if (seq) this.onToken(seq, sampled.token, now);
    }
    this.log(batch.length, prefillTokens, members, result, now, this.lastResultAt - step.startedAt, step.gapMs);
  }

  private onToken(seq: Sequence, token: number, now: number): void {
    if (seq.firstTokenAt < 0) seq.firstTokenAt = now;
    if (this.engine.isEog(token)) {
      this.finish(seq, "stop");
      return;
    }
    seq.accept(token);
    // The text is decoded now (stop strings end the job now); only the sink call may wait.
    const piece = seq.text.push(this.engine.tokenBytes(token));
    this.deliver(seq.ticket, () => seq.emit(piece));
    const length = seq.job.promptTokens.length + seq.tokens.length;
    if (seq.text.stopped) this.finish(seq, "stop");
    // The last sampled token is fed at position length - 1; past the context it has nowhere to go.
    else if (seq.tokens.length >= seq.job.maxTokens || length > this.contextLength) this.finish(seq, "length");
  }

  private log(tokens: number, prefillTokens: number, members: Sequence[], result: StepResult, now: number, waitMs: number, gapMs: number): void {
    const adapters = [...new Set(members.map((s) => s.job.adapter))];
    this.steps++;
    this.maxDistinctAdapters = Math.max(this.maxDistinctAdapters, adapters.length);
    this.throughput.add(now, result.sampled.length);
    const t = this.totals;
    t.engineMs += result.ms;
    t.waitMs += waitMs;
    t.gapMs += gapMs;
    t.sequences += members.length;
    t.decodeTokens += tokens - prefillTokens;
    t.prefillTokens += prefillTokens;
    const entry: StepLogEntry = {
      step: this.steps,
      tokens,
      decodeTokens: tokens - prefillTokens,
      prefillTokens,
      sequences: members.length,
      adapters,
      ms: result.ms,
      waitMs,
      gapMs,
    };
    try {
      this.events.emit("step", entry);
    } catch (err) {
      this.logger?.warn({ err }, "step listener threw");
    }
  }

  // ---- endings ----

  private finish(seq: Sequence, reason: JobResult["finishReason"]): void {
    const tail = seq.text.flush();
    this.deliver(seq.ticket, () => seq.emit(tail));
    this.release(seq);
    this.completed++;
    const result = seq.result(reason, this.now());
    this.deliver(seq.ticket, () => seq.ticket.sink.onDone(result));
  }

  private abort(seq: Sequence, code: ErrorCode, message: string): void {
    this.release(seq);
    this.fail(seq.ticket, code, message);
  }

  /** Gives back everything a sequence holds: engine state, seq id, adapter pin, tenant flight. */
  private release(seq: Sequence): void {
    this.running.delete(seq.seq);
    try {
      this.engine.clearSeq(seq.seq);
    } catch (err) {
      this.logger?.error({ err, seq: seq.seq }, "clearSeq failed");
    }
    if (seq.job.adapter !== null) this.unpin(seq.job.adapter);
    this.freeSeq(seq.ticket, seq.seq);
  }

  private freeSeq(ticket: Ticket, seq: number): void {
    this.freeSeqs.push(seq);
    this.queue.done(ticket.job.tenant);
  }

  private pin(adapter: string): void {
    this.pins.set(adapter, (this.pins.get(adapter) ?? 0) + 1);
  }

  private unpin(adapter: string): void {
    const n = this.pins.get(adapter)! - 1;
    if (n > 0) this.pins.set(adapter, n);
    else this.pins.delete(adapter);
    this.releaseAdapter(adapter);
  }

  private releaseAdapter(adapter: string): void {
    this.slotEpoch++;
    try {
      this.adapters.release(adapter);
    } catch (err) {
      this.logger?.error({ err, adapter }, "adapter release failed");
    }
  }

  private cancel(ticket: Ticket): void {
    if (ticket.cancelled) return;
    ticket.cancelled = true;
    // Queued: end now. Acquiring or running: the loop ends it between steps (the engine may be using its seq).
    if (this.queue.removeWhere((t) => t === ticket).length > 0) {
      const now = this.now();
      this.deliver(ticket, () => ticket.sink.onDone(unstartedResult(ticket, "cancelled", now)));
      this.updateBusy();
    }
    this.wake();
  }

  private refusal(job: Job): RequestError | null {
    if (this.state === "stopping" || this.state === "stopped") return new RequestError("SHUTTING_DOWN", "server is shutting down");
    if (job.promptTokens.length === 0) return new RequestError("BAD_REQUEST", "empty prompt");
    if (!(job.maxTokens >= 1)) return new RequestError("BAD_REQUEST", "max_tokens must be at least 1");
    if (job.promptTokens.length > this.contextLength) {
      return new RequestError("PROMPT_TOO_LONG", `prompt has ${job.promptTokens.length} tokens, context holds ${this.contextLength}`);
    }
    return null;
  }

  private fail(ticket: Ticket, code: ErrorCode, message: string): void {
    this.deliver(ticket, () => ticket.sink.onError(code, message));
  }

  /** Calls into a sink, or, while the loop prepares the next step, once that step is running; a throwing sink
   *  must not take the loop (and everyone else's jobs) down. */
  private deliver(ticket: Ticket, call: () => void): void {
    const guarded = () => {
      try {
        call();
      } catch (err) {
        this.logger?.warn({ err, job: ticket.job.id }, "job sink threw");
      }
    };
    if (this.deferring) this.deferred.push(guarded);
    else guarded();
  }

  /** Makes the sink calls that waited for the next step to start; returns how many. */
  private flushDeliveries(): number {
    const calls = this.deferred.splice(0);
    for (const call of calls) call();
    return calls.length;
  }

  // ---- waiting and LEDs ----

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      const stuck = this.running.size === 0 && this.acquiring.size === 0 && this.queue.some((t) => t.slotWaitEpoch !== null);
      const timer = stuck
        ? this.clock.setTimeout(() => {
            this.slotEpoch++;
            this.wake();
          }, SLOT_RETRY_MS)
        : null;
      this.wakeup = () => {
        if (timer) this.clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const wakeup = this.wakeup;
    this.wakeup = null;
    wakeup?.();
  }

  private updateBusy(): void {
    const busy = this.queue.size + this.running.size + this.acquiring.size > 0;
    if (busy === this.isBusy) return;
    this.isBusy = busy;
    this.events.emit(busy ? "busy" : "idle", {});
  }
}
