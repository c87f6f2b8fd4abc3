// The open-loop MQTT driver against a whole daemon (Controller, embedded broker) over a FakeEngine whose model
// never ends a text early, so every answer has exactly the trace's output length.
import test from "ava";
import { driveMqtt, type MqttTarget, type Progress } from "../../src/bench/mqtt-driver.js";
import { generateTrace, PAPER_TRACE } from "../../src/bench/trace.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startDaemon } from "../helpers/daemon.js";

const TENANTS = 3;
const trace = generateTrace({ ...PAPER_TRACE, adapters: 3, tenants: TENANTS, rate: 40, durationS: 0.5, inputTokens: [4, 12], outputTokens: [2, 12], seed: 5 });

async function daemon(stepDelayMs = 0, queue?: number) {
  const engine = new FakeEngine({ loadDelayMs: 1 });
  engine.model = () => 3; // the letter "a", never EOS
  if (stepDelayMs) engine.beforeStep = () => new Promise((resolve) => setTimeout(resolve, stepDelayMs));
  const hashes = await Promise.all(Array.from({ length: TENANTS }, (_, i) => hashPassword(`w${i}`, { N: 1024, r: 8, p: 1 })));
  return startDaemon({
    engine,
    edit: (c) => {
      c.adapters.entries = { ...c.adapters.entries, a0: c.adapters.entries.pirate, a1: c.adapters.entries.poet, a2: c.adapters.entries.chef };
      for (let i = 0; i < TENANTS; i++) c.tenants[`w${i}`] = { password_hash: hashes[i], adapters: ["*"], default_adapter: null };
      if (queue !== undefined) Object.assign(c.scheduler, { max_queue: queue, per_tenant_queue: queue });
    },
  });
}

function target(url: string, adapterName = (i: number) => `a${i}`): MqttTarget {
  return {
    url, baseTopic: "edgelora", stream: true, temperature: 0, adapterName,
    tenants: Array.from({ length: TENANTS }, (_, i) => ({ name: `w${i}`, password: `w${i}` })),
  };
}

test("every request of the trace is answered and measured, with the daemon's token counts", async (t) => {
  t.true(trace.requests.length >= 8, `trace of ${trace.requests.length}`);
  const d = await daemon();
  try {
    const progress: Progress[] = [];
    const { records, summary } = await driveMqtt(trace, target(d.url), { sloMs: 1e9, drainS: 30, serverPid: process.pid, onProgress: (p) => progress.push(p) });
    t.is(summary.requests, trace.requests.length);
    t.is(summary.completed, trace.requests.length);
    t.is(summary.errors, 0);
    t.is(summary.sloAttainment, 1);
    const tokens = trace.requests.reduce((a, r) => a + r.outputTokens, 0);
    t.is(records.reduce((a, r) => a + r.completionTokens, 0), tokens);
    t.is(summary.tokensPerS, tokens / summary.wallS);
    for (const [i, r] of records.entries()) {
      t.is(r.completionTokens, trace.requests[i].outputTokens);
      t.true(r.promptTokens! > 1);
      t.true(r.sentMs >= r.arrivalMs - 2 && r.firstTokenMs! >= r.sentMs && r.doneMs! >= r.firstTokenMs!, JSON.stringify(r));
    }
    t.true(summary.ttftMs.p50 <= summary.ttftMs.p99 && summary.ttftMs.p99 <= summary.latencyMs.p99);
    t.true(summary.cpuSPer1kTokens! > 0 && summary.peakRssMiB! > 0);
    t.deepEqual(progress.at(-1), { total: records.length, sent: records.length, done: records.length, errors: 0, elapsedS: progress.at(-1)!.elapsedS });
    // The same run judged by an impossible objective: nobody meets it.
    const strict = await driveMqtt(trace, target(d.url), { sloMs: 0, drainS: 30 });
    t.is(strict.summary.completed, trace.requests.length);
    t.is(strict.summary.sloAttainment, 0);
  } finally {
    await d.close();
  }
});

test("refused requests count as errors and SLO misses", async (t) => {
  const d = await daemon();
  try {
    const { records, summary } = await driveMqtt(trace, target(d.url, (i) => (i === 2 ? "missing" : `a${i}`)), { sloMs: 1e9, drainS: 30 });
    const refused = trace.requests.filter((r) => r.adapter === 2).length;
    t.true(refused > 0);
    t.is(summary.errors, refused);
    t.is(summary.completed, trace.requests.length - refused);
    t.is(summary.sloAttainment, (trace.requests.length - refused) / trace.requests.length);
    t.true(records.filter((r) => r.adapter === 2).every((r) => r.error === "ADAPTER_NOT_FOUND"));
  } finally {
    await d.close();
  }
});

test("requests still running when the drain time is up are unfinished, and cancelled on the daemon", async (t) => {
  // Two seconds of the trace, not the half second above: on a loaded machine the first steps came
  // after the half-second cut-off in some runs, and no unfinished request had a token to count. Queues
  // long enough for all of it: every error is then an unfinished request.
  const longer = generateTrace({ ...trace.params, durationS: 2 });
  const d = await daemon(40, longer.requests.length); // 40 ms a step: the trace cannot finish within its time
  try {
    const { summary, records } = await driveMqtt(longer, target(d.url), { sloMs: 1e9, drainS: 0 });
    const unfinished = records.filter((r) => r.error === "UNFINISHED").length;
    t.true(unfinished > 0);
    // The daemon's answers to the cancels count what unfinished requests had generated.
    t.true(records.some((r) => r.error === "UNFINISHED" && r.completionTokens > 0));
    t.true(summary.generatedTokensPerS > summary.tokensPerS);
    t.is(summary.errors, unfinished);
    t.true(summary.sloAttainment < 1);
    // The cancels reach the scheduler: it goes idle instead of finishing every request.
    const deadline = Date.now() + 10_000;
    while (d.controller.context.scheduler!.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.false(d.controller.context.scheduler!.busy);
  } finally {
    await d.close();
  }
});
