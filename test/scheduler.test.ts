import test from "ava";
import { Scheduler } from "../src/scheduler/scheduler.js";
import { realClock } from "../src/runtime/clock.js";
import type { ErrorCode, Job, JobResult, SchedulerLimits, StepLogEntry } from "../src/scheduler/types.js";
import { EOS, FakeEngine, FakeSlots, scriptedModel, type FakeModel } from "./helpers/fake-engine.js";

const LIMITS: SchedulerLimits = {
  maxBatchTokens: 32, maxSequences: 4, prefillChunk: 8, maxQueue: 64, perTenantInFlight: 4, perTenantQueue: 32,
};
const SCALES = { A: 1, B: 0.5, C: 2 };

interface Outcome {
  deltas: string[];
  result?: JobResult;
  error?: { code: ErrorCode; message: string };
  settled: Promise<void>;
}

/** A scheduler on a FakeEngine whose adapter loads take a 1 ms timer. `stepsAfterLoadOf`: no step
 *  runs before that adapter's load is done. A step is a turn of the event loop, so without it how many
 *  steps run during a load depends on the machine (and on the file's other tests running meanwhile). */
function harness(
  options: { limits?: Partial<SchedulerLimits>; slots?: number; model?: (e: FakeEngine) => FakeModel; nCtx?: number; stepsAfterLoadOf?: string } = {},
) {
  const engine = new FakeEngine({ nCtx: options.nCtx, loadDelayMs: 1 });
  if (options.model) engine.model = options.model(engine);
  const slots = new FakeSlots(engine, options.slots ?? 4, SCALES);
  let clock = 0;
  engine.beforeStep = () => {
    clock += 10; // every step takes 10 ms of scheduler time
  };
  const after = options.stepsAfterLoadOf;
  if (after) {
    let done!: () => void;
    const loaded = new Promise<void>((resolve) => (done = resolve));
    const load = engine.loadAdapter.bind(engine);
    engine.loadAdapter = async (slot, path) => {
      const info = await load(slot, path);
      if (path === after) done();
      return info;
    };
    engine.beforeStep = async () => {
      clock += 10;
      await loaded;
    };
  }
  const scheduler = new Scheduler({ engine, adapters: slots, limits: { ...LIMITS, ...options.limits }, clock: { ...realClock, now: () => clock } });
  const log: StepLogEntry[] = [];
  scheduler.onStep((e) => log.push(e));
  const submit = (job: Job) => {
    let settle!: () => void;
    const outcome: Outcome = { deltas: [], settled: new Promise((r) => (settle = r)) };
    const handle = scheduler.submit(job, {
      onDelta: (text, seq) => {
        if (seq !== outcome.deltas.length) throw new Error("delta out of order");
        outcome.deltas.push(text);
      },
      onDone: (result) => {
        outcome.result = result;
        settle();
      },
      onError: (code, message) => {
        outcome.error = { code, message };
        settle();
      },
    });
    return { outcome, handle };
  };
  return { engine, slots, scheduler, submit, log, advance: (ms: number) => (clock += ms) };
}

let nextId = 0;
function job(engine: FakeEngine, prompt: string, over: Partial<Job> = {}): Job {
  const id = `t/${nextId++}`;
  return {
    id, tenant: "t", promptTokens: engine.tokenize(prompt, true), adapter: null, maxTokens: 12,
    sampling: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: nextId }, stop: [], timeoutMs: 60_000, ...over,
  };
}

/** What the job produces on an otherwise empty scheduler. */
async function alone(j: Job, model?: (e: FakeEngine) => FakeModel): Promise<JobResult> {
  const h = harness({ model });
  const { outcome } = h.submit(j);
  h.scheduler.start();
  await outcome.settled;
  await h.scheduler.stop(0);
  if (!outcome.result) throw new Error(`alone run failed: ${outcome.error?.message}`);
  return outcome.result;
}

function tokensOf(engine: FakeEngine, seqOf: (seq: number) => boolean) {
  return engine.steps.map((s) => s.filter((t) => seqOf(t.seq)));
}

test("batching changes nothing: each job's output equals its output alone", async (t) => {
  const h = harness({ limits: { maxSequences: 4, maxBatchTokens: 16, prefillChunk: 5 } });
  const long = "Hello world, this is a much longer prompt that needs several prefill chunks";
  const jobs = [
    job(h.engine, "hello", { tenant: "x", adapter: "A" }),
    job(h.engine, long, { tenant: "y", adapter: "B", maxTokens: 20 }),
    job(h.engine, "abc", { tenant: "z" }),
    job(h.engine, "the quick brown fox", { tenant: "x", adapter: "C" }),
    job(h.engine, "hello", { tenant: "y", adapter: "A", sampling: { ...job(h.engine, "").sampling, seed: 99 } }),
    job(h.engine, long, { tenant: "z", adapter: "A", maxTokens: 16 }),
  ];
  const outcomes = jobs.map((j) => h.submit(j).outcome);
  h.scheduler.start();
  await Promise.all(outcomes.map((o) => o.settled));
  for (const [i, j] of jobs.entries()) {
    const expected = await alone(j);
    t.deepEqual(outcomes[i].result?.tokens, expected.tokens, `job ${i} tokens`);
    t.is(outcomes[i].result?.text, expected.text, `job ${i} text`);
    t.is(outcomes[i].result?.finishReason, expected.finishReason);
    t.is(outcomes[i].deltas.join(""), expected.text, "the stream adds up to the text");
  }
  t.true(h.log.some((e) => e.adapters.filter((a) => a !== null).length >= 2), "a step mixes adapters");
  t.true(h.scheduler.stats().maxDistinctAdaptersInStep >= 3);
  t.is(h.scheduler.stats().completed, jobs.length);
  t.true(h.log.every((e) => e.tokens <= 16 && e.sequences <= 4));
  t.is(h.slots.pinned, 0, "every adapter released");
  t.is(h.engine.histories.size, 0, "every sequence cleared");
  await h.scheduler.stop(0);
});

test("chunked prefill: a long prompt is fed in chunks while another sequence keeps decoding", async (t) => {
  const h = harness({
    limits: { prefillChunk: 4, maxBatchTokens: 8 },
    model: (e) => scriptedModel(e, { hi: "a long answer that keeps decoding for many steps" }),
  });
  const short = h.submit(job(h.engine, "hi", { tenant: "a", maxTokens: 100 }));
  h.scheduler.start();
  await new Promise<void>((resolve) => {
    const off = h.scheduler.onStep((e) => {
      if (e.decodeTokens > 0) {
        off();
        resolve();
      }
    });
  });
  const longJob = job(h.engine, "Hello world and many more words to prefill", { tenant: "b", maxTokens: 3 });
  const long = h.submit(longJob);
  await Promise.all([short.outcome.settled, long.outcome.settled]);
  t.is(short.outcome.result?.text, "a long answer that keeps decoding for many steps");
  const n = longJob.promptTokens.length;
  const longSeq = 1; // the short job took seq 0
  const prefill = h.engine.steps.map((s) => s.filter((tk) => tk.seq === longSeq && tk.pos < n)).filter((s) => s.length > 0);
  t.is(prefill.length, Math.ceil(n / 4), "the prompt is spread over steps");
  t.true(prefill.every((s) => s.length <= 4), "at most prefillChunk prompt tokens per step");
  t.deepEqual(prefill.flat().filter((tk) => tk.sample).map((tk) => tk.pos), [n - 1], "only the last prompt token samples");
  const during = h.engine.steps.filter((s) => s.some((tk) => tk.seq === longSeq && tk.pos < n));
  t.true(during.every((s) => s.some((tk) => tk.seq === 0 && tk.sample)), "the short job decodes in every prefill step");
  t.true(h.log.some((e) => e.prefillTokens > 0 && e.decodeTokens > 0));
  t.true(h.engine.steps.every((s) => s.length <= 8));
  await h.scheduler.stop(0);
});

test("fairness: a busy tenant's backlog does not starve another tenant", async (t) => {
  const h = harness({ limits: { maxSequences: 2, maxBatchTokens: 8, perTenantInFlight: 2 } });
  const busy = Array.from({ length: 10 }, () => h.submit(job(h.engine, "abc", { tenant: "busy", maxTokens: 4 })));
  const quiet = h.submit(job(h.engine, "xyz", { tenant: "quiet", maxTokens: 4 }));
  const order: string[] = [];
  for (const [name, o] of [...busy.map((b, i) => [`busy${i}`, b.outcome] as const), ["quiet", quiet.outcome] as const]) {
    void o.settled.then(() => order.push(name));
  }
  h.scheduler.start();
  await Promise.all([...busy.map((b) => b.outcome.settled), quiet.outcome.settled]);
  // Two busy jobs were admitted before quiet arrived in the queue's turn; quiet takes the next free sequence.
  t.true(order.indexOf("quiet") <= 3, `quiet finished at position ${order.indexOf("quiet")}`);
  t.true(quiet.outcome.result!.timings.queue_ms <= 5 * 10, "quiet waited for at most one busy job");
});

test("per-tenant in-flight limit holds even with free sequences", async (t) => {
  const h = harness({ limits: { maxSequences: 4, perTenantInFlight: 1 } });
  const seeds = new Map<number, string>(); // sampler seed -> tenant
  let worst = 0;
  h.engine.beforeStep = (tokens) => {
    const tenants = [...new Set(tokens.map((tk) => tk.seq))].map((s) => seeds.get(h.engine.samplers.get(s)!.seed));
    for (const tenant of new Set(tenants)) worst = Math.max(worst, tenants.filter((x) => x === tenant).length);
  };
  const outs = ["p", "p", "p", "q", "q"].map((tenant) => {
    const j = job(h.engine, "abc", { tenant, maxTokens: 5 });
    seeds.set(j.sampling.seed, tenant);
    return h.submit(j).outcome;
  });
  h.scheduler.start();
  await Promise.all(outs.map((o) => o.settled));
  t.is(worst, 1);
  t.true(outs.every((o) => o.result !== undefined));
});

test("OVERLOADED when the tenant's queue or the global queue is full, reported asynchronously", async (t) => {
  const h = harness({ limits: { maxQueue: 2, perTenantQueue: 1 } });
  const a1 = h.submit(job(h.engine, "a", { tenant: "a" }));
  const a2 = h.submit(job(h.engine, "a", { tenant: "a" }));
  const b1 = h.submit(job(h.engine, "b", { tenant: "b" }));
  const c1 = h.submit(job(h.engine, "c", { tenant: "c" }));
  t.is(a2.outcome.error, undefined, "not synchronous");
  await Promise.all([a2.outcome.settled, c1.outcome.settled]);
  t.is(a2.outcome.error?.code, "OVERLOADED");
  t.is(c1.outcome.error?.code, "OVERLOADED");
  t.is(h.scheduler.stats().queueDepth, 2);
  h.scheduler.start();
  await Promise.all([a1.outcome.settled, b1.outcome.settled]);
  t.truthy(a1.outcome.result);
  t.truthy(b1.outcome.result);
  await h.scheduler.stop(0);
});

test("bad requests: empty prompt, prompt longer than the context, unknown adapter", async (t) => {
  const h = harness({ nCtx: 16 });
  const empty = h.submit({ ...job(h.engine, ""), promptTokens: [] });
  const long = h.submit(job(h.engine, "a".repeat(20)));
  const unknown = h.submit(job(h.engine, "abc", { adapter: "nope" }));
  h.scheduler.start();
  await Promise.all([empty.outcome.settled, long.outcome.settled, unknown.outcome.settled]);
  t.is(empty.outcome.error?.code, "BAD_REQUEST");
  t.is(long.outcome.error?.code, "PROMPT_TOO_LONG");
  t.is(unknown.outcome.error?.code, "ADAPTER_NOT_FOUND");
  t.is(h.engine.steps.length, 0);
  await h.scheduler.stop(0);
});

test("generation stops with 'length' at the end of the context", async (t) => {
  const h = harness({ nCtx: 10, model: (e) => scriptedModel(e, { ab: "cdefghijklmnop" }) });
  const o = h.submit(job(h.engine, "ab", { maxTokens: 50 }));
  h.scheduler.start();
  await o.outcome.settled;
  t.is(o.outcome.result?.finishReason, "length");
  // BOS + 2 prompt tokens at 0..2, completion tokens fed at 3..9; the 8th is sampled from position 9.
  t.is(o.outcome.result?.text, "cdefghij");
  t.true(h.engine.steps.flat().every((tk) => tk.pos < 10));
  await h.scheduler.stop(0);
});

test("cancel: a queued job ends at once, a running one ends with its text so far and frees everything", async (t) => {
  const h = harness({
    limits: { maxSequences: 1 },
    model: (e) => scriptedModel(e, { run: "abcdefghijklmnopqrstuvwxyz" }),
  });
  const running = h.submit(job(h.engine, "run", { adapter: "A", maxTokens: 26 }));
  const queued = h.submit(job(h.engine, "wait"));
  running.outcome.deltas.push = function (this: string[], ...items: string[]) {
    if (this.length + items.length === 3) running.handle.cancel();
    return Array.prototype.push.apply(this, items);
  };
  queued.handle.cancel();
  await queued.outcome.settled;
  t.is(queued.outcome.result?.finishReason, "cancelled");
  t.is(queued.outcome.result?.text, "");
  h.scheduler.start();
  await running.outcome.settled;
  t.is(running.outcome.result?.finishReason, "cancelled");
  // The loop is pipelined: the third piece is handed to the sink while the step that samples the fourth runs, so
  // a cancel made from inside that sink call lands after that step.
  t.is(running.outcome.result?.text, "abcd");
  t.is(running.outcome.deltas.join(""), "abcd");
  t.is(h.slots.pinned, 0);
  t.is(h.engine.histories.size, 0);
  t.true(h.engine.steps.flat().every((tk) => tk.seq === 0));
  t.is(h.engine.steps.length, 4, "prefill and 3 decodes, then the cancel lands between steps");
  await h.scheduler.stop(0);
});

test("timeout: a running job returns its text so far; a queued one times out unstarted", async (t) => {
  const reply = "abcdefghijklmnopqrstuvwxyz";
  const h = harness({ limits: { perTenantInFlight: 1 }, model: (e) => scriptedModel(e, { go: reply }) });
  const first = h.submit(job(h.engine, "go", { maxTokens: 26, timeoutMs: 45 }));
  const second = h.submit(job(h.engine, "go", { maxTokens: 26, timeoutMs: 30 }));
  h.scheduler.start();
  await Promise.all([first.outcome.settled, second.outcome.settled]);
  const r = first.outcome.result!;
  t.is(r.finishReason, "timeout");
  t.true(r.text.length > 0 && reply.startsWith(r.text), r.text);
  t.is(first.outcome.deltas.join(""), r.text);
  t.is(second.outcome.result?.finishReason, "timeout");
  t.is(second.outcome.result?.completionTokens, 0);
  await h.scheduler.stop(0);
});

test("stop strings end the text before the stop, also inside and across tokens, and hold back streaming", async (t) => {
  const h = harness({
    model: (e) => scriptedModel(e, { one: "a Sx STOP more", two: "Hello world", three: "xSTOPy", four: "x" }),
  });
  const one = h.submit(job(h.engine, "one", { stop: ["STOP"], maxTokens: 30 }));
  // " wor" is one token: the stop ends inside it. "TO" straddles the tokens "ST" and "OP".
  const two = h.submit(job(h.engine, "two", { stop: ["wo"], maxTokens: 30 }));
  const three = h.submit(job(h.engine, "three", { stop: ["TO", "Sy"], maxTokens: 30 }));
  // A held-back prefix that never completes is released when the sequence ends.
  const four = h.submit(job(h.engine, "four", { stop: ["xyz"], maxTokens: 30 }));
  h.scheduler.start();
  await Promise.all([one, two, three, four].map((x) => x.outcome.settled));
  t.is(one.outcome.result?.text, "a Sx ");
  t.is(one.outcome.result?.finishReason, "stop");
  t.deepEqual(one.outcome.deltas, ["a", " ", "Sx", " "], "'S' waits until 'x' shows it is no stop");
  t.is(two.outcome.result?.text, "Hello ");
  t.deepEqual(two.outcome.deltas.join(""), "Hello ");
  t.is(three.outcome.result?.text, "xS");
  t.deepEqual(three.outcome.deltas.join(""), "xS");
  t.is(four.outcome.result?.text, "x");
  t.deepEqual(four.outcome.deltas, ["x"]);
  t.is(four.outcome.result?.finishReason, "stop", "EOS");
  await h.scheduler.stop(0);
});

test("streamed text is whole UTF-8 characters even when a character spans several tokens", async (t) => {
  const h = harness({ model: (e) => scriptedModel(e, { u: "café 5€ ok", v: "a€b" }) });
  const u = h.submit(job(h.engine, "u", { maxTokens: 30 }));
  const v = h.submit(job(h.engine, "v", { maxTokens: 30, stop: ["€"] }));
  const cut = h.submit(job(h.engine, "u", { maxTokens: 8 })); // c a f (é: 2 bytes) " " 5, then 1 of the 3 bytes of "€"
  h.scheduler.start();
  await Promise.all([u, v, cut].map((x) => x.outcome.settled));
  t.is(u.outcome.result?.text, "café 5€ ok");
  t.true(u.outcome.result!.completionTokens > [..."café 5€ ok"].length, "multi-byte characters came as byte tokens");
  t.true(u.outcome.deltas.every((d) => !d.includes("\uFFFD")));
  t.deepEqual(u.outcome.deltas.join(""), "café 5€ ok");
  t.is(v.outcome.result?.text, "a");
  t.is(cut.outcome.result?.finishReason, "length");
  t.is(cut.outcome.result?.text, "café 5\uFFFD", "a broken tail is flushed as U+FFFD, like detokenize");
  t.is(cut.outcome.result?.text, h.engine.detokenize(cut.outcome.result!.tokens));
  await h.scheduler.stop(0);
});

test("slot exhaustion: a job whose adapter finds every slot pinned waits, others keep running, then it runs", async (t) => {
  // The base-model job's 8 steps could otherwise all run before A's load, never alongside A.
  const h = harness({ slots: 1, limits: { maxSequences: 3 }, stepsAfterLoadOf: "A" });
  const a = job(h.engine, "first", { tenant: "t1", adapter: "A", maxTokens: 8 });
  const b = job(h.engine, "second", { tenant: "t2", adapter: "B", maxTokens: 8 });
  const base = job(h.engine, "third", { tenant: "t3", maxTokens: 8 });
  const c = job(h.engine, "fourth", { tenant: "t4", adapter: "C", maxTokens: 8 });
  h.engine.model = () => 10; // never EOS: every job runs to maxTokens
  const acquires: string[] = [];
  const acquire = h.slots.acquire.bind(h.slots);
  h.slots.acquire = (name) => (acquires.push(name), acquire(name));
  const outs = [a, b, base].map((j) => h.submit(j).outcome);
  h.scheduler.start();
  // C arrives once B waits for the slot: it must not take the slot when A frees it.
  await new Promise<void>((resolve) => {
    const off = h.scheduler.onStep(() => {
      off();
      resolve();
    });
  });
  outs.push(h.submit(c).outcome);
  await Promise.all(outs.map((o) => o.settled));
  t.true(outs.every((o) => o.result?.completionTokens === 8));
  const adapterOf = (tk: { adapterSlot: number; adapterScale: number }) =>
    tk.adapterSlot < 0 ? "base" : Object.entries(SCALES).find(([, scale]) => scale === tk.adapterScale)![0];
  const stepsWith = (name: string) => h.engine.steps.flatMap((s, i) => (s.some((tk) => adapterOf(tk) === name) ? [i] : []));
  const [aSteps, bSteps, cSteps, baseSteps] = ["A", "B", "C", "base"].map(stepsWith);
  t.true(Math.max(...aSteps) < Math.min(...bSteps), "B starts after A released the only slot");
  t.true(Math.max(...bSteps) < Math.min(...cSteps), "C, which came later, waits behind B");
  t.true(acquires.indexOf("C") > acquires.lastIndexOf("B"), `C does not compete for the slot B waits for: ${acquires}`);
  t.true(baseSteps.some((i) => aSteps.includes(i)), "the base-model job ran alongside A");
  t.deepEqual(h.engine.loads.map((l) => l.path), ["A", "B", "C"]);
  t.is(h.slots.pinned, 0);
  await h.scheduler.stop(0);
});

test("an engine step failure fails only that step's jobs; the scheduler keeps serving", async (t) => {
  // The doomed job must still be running at step 1 (its second): a model that never ends a
  // sequence, so that does not hang on the seed its job happens to get.
  const neverEos = (e: FakeEngine): FakeModel => {
    const model = e.model;
    return (...args) => (model(...args) === EOS ? 10 : model(...args));
  };
  const h = harness({ limits: { maxSequences: 1 }, model: neverEos });
  const doomed = job(h.engine, "one", { tenant: "a", adapter: "A" });
  const later = job(h.engine, "two", { tenant: "b", adapter: "B", maxTokens: 10 });
  h.engine.failWhen = (_tokens, index) => index === 1;
  const outs = [doomed, later].map((j) => h.submit(j).outcome);
  h.scheduler.start();
  await Promise.all(outs.map((o) => o.settled));
  t.is(outs[0].error?.code, "INTERNAL");
  t.regex(outs[0].error!.message, /injected step failure/);
  const expected = await alone(later, neverEos);
  t.deepEqual([outs[1].result?.text, outs[1].result?.tokens], [expected.text, expected.tokens], "the next job is unaffected");
  t.is(h.slots.pinned, 0);
  t.is(h.engine.histories.size, 0);
  await h.scheduler.stop(0);
});

test("stop(grace): queued jobs and new submits get SHUTTING_DOWN, short jobs finish, long ones are cancelled", async (t) => {
  // The short job's 3 steps could otherwise all run before A's load (the stop comes at A's first
  // step): the queued job would then run instead of waiting.
  const h = harness({ limits: { maxSequences: 2, perTenantInFlight: 1 }, stepsAfterLoadOf: "A" });
  h.engine.model = () => 10; // never EOS
  const short = h.submit(job(h.engine, "s", { tenant: "a", maxTokens: 3 }));
  const long = h.submit(job(h.engine, "l", { tenant: "b", adapter: "A", maxTokens: 1000 }));
  const queued = h.submit(job(h.engine, "q", { tenant: "a" }));
  h.scheduler.start();
  await new Promise<void>((resolve) => {
    const off = h.scheduler.onStep((e) => {
      if (e.adapters.includes("A")) {
        off();
        resolve();
      }
    });
  });
  const stopped = h.scheduler.stop(100);
  const late = h.submit(job(h.engine, "late", { tenant: "c" }));
  await stopped;
  await late.outcome.settled;
  t.is(queued.outcome.error?.code, "SHUTTING_DOWN");
  t.is(late.outcome.error?.code, "SHUTTING_DOWN");
  t.is(short.outcome.result?.finishReason, "length");
  t.is(long.outcome.result?.finishReason, "cancelled");
  t.true(long.outcome.result!.completionTokens >= 9 && long.outcome.result!.completionTokens <= 12, "ran for the ~100 ms grace");
  t.is(h.slots.pinned, 0);
  t.is(h.engine.histories.size, 0);
});

test("busy/idle events, stats and the step log", async (t) => {
  const h = harness();
  const events: string[] = [];
  h.scheduler.on("busy", () => events.push("busy"));
  h.scheduler.on("idle", () => events.push("idle"));
  h.scheduler.start();
  t.false(h.scheduler.busy);
  const o = h.submit(job(h.engine, "abc", { maxTokens: 4 }));
  t.true(h.scheduler.busy);
  await o.outcome.settled;
  await new Promise((r) => setImmediate(r));
  t.deepEqual(events, ["busy", "idle"]);
  const stats = h.scheduler.stats();
  t.is(stats.completed, 1);
  t.is(stats.steps, h.log.length);
  t.is(stats.active, 0);
  t.true(stats.tokensPerSecond > 0);
  t.deepEqual(h.log.map((e) => e.step), h.log.map((_, i) => i + 1));
  t.is(h.log.reduce((n, e) => n + e.tokens, 0), h.engine.steps.flat().length);
  await h.scheduler.stop(0);
});

test("a sink that throws does not disturb the other jobs", async (t) => {
  const h = harness();
  const good = job(h.engine, "abc", { tenant: "a", maxTokens: 6 });
  h.scheduler.submit(job(h.engine, "xyz", { tenant: "b", maxTokens: 6 }), {
    onDelta: () => {
      throw new Error("broken client");
    },
    onDone: () => {
      throw new Error("broken client");
    },
    onError: () => {},
  });
  const o = h.submit(good);
  h.scheduler.start();
  await o.outcome.settled;
  const expected = await alone(good);
  t.deepEqual([o.outcome.result?.text, o.outcome.result?.tokens], [expected.text, expected.tokens]);
  await h.scheduler.stop(0);
  t.is(h.engine.histories.size, 0);
});

test("pipelined loop: a step's text reaches the sink while the next step computes", async (t) => {
  const h = harness({ model: (e) => scriptedModel(e, { go: "abcdefghijklmnopqrstuvwxyz" }) });
  let inFlight = 0;
  const step = h.engine.step.bind(h.engine);
  h.engine.step = async (tokens) => {
    inFlight++;
    try {
      return await step(tokens);
    } finally {
      inFlight--;
    }
  };
  const o = h.submit(job(h.engine, "go", { maxTokens: 5 }));
  const busyAtDelta: boolean[] = [];
  const push = o.outcome.deltas.push.bind(o.outcome.deltas);
  o.outcome.deltas.push = (...items: string[]) => {
    busyAtDelta.push(inFlight > 0);
    return push(...items);
  };
  h.scheduler.start();
  await o.outcome.settled;
  t.is(o.outcome.result?.text, "abcde");
  // Tokens 1-4: the next step is already running; token 5 ends the job, so nothing follows it.
  t.deepEqual(busyAtDelta, [true, true, true, true, false]);
  const log = h.log;
  t.true(log.slice(1).every((e) => e.gapMs >= 0 && e.waitMs >= 0));
  const totals = h.scheduler.stats().totals;
  t.is(totals.decodeTokens + totals.prefillTokens, log.reduce((a, e) => a + e.tokens, 0));
  t.is(totals.sequences, log.length);
  await h.scheduler.stop(0);
});
