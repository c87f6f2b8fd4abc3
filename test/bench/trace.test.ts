import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { gammaSample, generateTrace, PAPER_TRACE, promptText, readTrace, writeTrace, type TraceParams } from "../../src/bench/trace.js";
import { Prng } from "../../src/gguf/prng.js";

const BASE: TraceParams = { ...PAPER_TRACE, adapters: 10, rate: 20, durationS: 500, seed: 7 };

const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

test("Gamma samples have the mean and variance of their shape", (t) => {
  const rng = new Prng(3);
  for (const shape of [1 / 1.5 ** 2, 1, 2.5]) {
    const xs = Array.from({ length: 40_000 }, () => gammaSample(rng, shape));
    t.true(Math.abs(mean(xs) - shape) / shape < 0.03, `shape ${shape}: mean ${mean(xs)}`);
    t.true(Math.abs(std(xs) ** 2 - shape) / shape < 0.08, `shape ${shape}: variance ${std(xs) ** 2}`);
    t.true(xs.every((x) => x > 0));
  }
});

test("inter-arrival times have mean 1/R and the asked coefficient of variation", (t) => {
  for (const cv of [1, 1.5]) {
    const { requests } = generateTrace({ ...BASE, cv });
    const gaps = requests.slice(1).map((r, i) => r.atS - requests[i].atS);
    t.true(Math.abs(mean(gaps) - 1 / BASE.rate) * BASE.rate < 0.04, `cv ${cv}: mean gap ${mean(gaps)}`);
    t.true(Math.abs(std(gaps) / mean(gaps) - cv) / cv < 0.08, `cv ${cv}: measured cv ${std(gaps) / mean(gaps)}`);
    t.true(Math.abs(requests.length / BASE.durationS - BASE.rate) / BASE.rate < 0.05, `rate ${requests.length / BASE.durationS}`);
    t.true(requests.every((r, i) => r.atS >= 0 && r.atS < BASE.durationS && (i === 0 || r.atS >= requests[i - 1].atS)));
  }
});

test("lengths are uniform in their ranges", (t) => {
  const { requests } = generateTrace(BASE);
  const input = requests.map((r) => r.inputTokens);
  const output = requests.map((r) => r.outputTokens);
  t.is(Math.min(...input), 8);
  t.is(Math.max(...input), 128);
  t.is(Math.min(...output), 8);
  t.is(Math.max(...output), 256);
  t.true(input.every(Number.isInteger) && output.every(Number.isInteger));
  t.true(Math.abs(mean(input) - 68) < 1.5, `input mean ${mean(input)}`);
  t.true(Math.abs(mean(output) - 132) < 3, `output mean ${mean(output)}`);
});

test("adapter popularity follows floor(U^(1/alpha) * n)", (t) => {
  // alpha 1: uniform over the n adapters.
  const uniform = generateTrace(BASE).requests;
  const counts = Array.from({ length: BASE.adapters }, (_, a) => uniform.filter((r) => r.adapter === a).length);
  for (const c of counts) t.true(Math.abs(c / uniform.length - 0.1) < 0.015, `share ${c / uniform.length}`);
  // alpha 0.3: P(index < k) = (k/n)^alpha, so the first adapters take most requests.
  const skewed = generateTrace({ ...BASE, alpha: 0.3 }).requests;
  for (const k of [1, 5]) {
    const share = skewed.filter((r) => r.adapter < k).length / skewed.length;
    t.true(Math.abs(share - (k / BASE.adapters) ** 0.3) < 0.02, `k ${k}: share ${share}`);
  }
  t.true(skewed.every((r) => r.adapter >= 0 && r.adapter < BASE.adapters));
});

test("tenants take requests in turn", (t) => {
  const { requests } = generateTrace({ ...BASE, durationS: 10 });
  t.deepEqual(requests.map((r) => r.tenant), requests.map((_, i) => i % BASE.tenants));
});

test("the same seed gives the same trace; another seed another one", (t) => {
  const a = generateTrace({ ...BASE, durationS: 20 });
  t.deepEqual(generateTrace({ ...BASE, durationS: 20 }), a);
  t.notDeepEqual(generateTrace({ ...BASE, durationS: 20, seed: 8 }).requests, a.requests);
});

test("a trace written as JSONL reads back the same; bad files are refused", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-trace-"));
  const trace = generateTrace({ ...BASE, durationS: 5 });
  writeTrace(join(dir, "t.jsonl"), trace);
  t.deepEqual(readTrace(join(dir, "t.jsonl")), trace);
  writeFileSync(join(dir, "bad.jsonl"), `${JSON.stringify({ id: 0 })}\n`);
  t.throws(() => readTrace(join(dir, "bad.jsonl")), { message: /header/ });
  writeFileSync(join(dir, "range.jsonl"), `${JSON.stringify({ trace: BASE })}\n${JSON.stringify({ ...trace.requests[0], adapter: 99 })}\n`);
  t.throws(() => readTrace(join(dir, "range.jsonl")), { message: /out of range/ });
  t.throws(() => generateTrace({ ...BASE, rate: 0 }), { message: /rate/ });
  t.throws(() => generateTrace({ ...BASE, inputTokens: [10, 5] }), { message: /inputTokens/ });
});

test("prompts are seeded by the request id and sized by its input length", (t) => {
  const p = promptText({ id: 3, inputTokens: 40 });
  t.is(p, promptText({ id: 3, inputTokens: 40 }));
  t.not(p, promptText({ id: 4, inputTokens: 40 }));
  t.is(p.split(" ").length, 39); // BOS is the 40th token
});
