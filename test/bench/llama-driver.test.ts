// The llama.cpp side of the workload benchmark on stories260K with three small adapters: both ways a
// node-llama-cpp user serves many adapters answer every request of a trace.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { driveLlama, type LlamaTarget } from "../../src/bench/llama-driver.js";
import { generateTrace, PAPER_TRACE } from "../../src/bench/trace.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { storiesPath } from "../helpers/engine.js";

const model = storiesPath();
const ADAPTERS = 3;
const trace = generateTrace({ ...PAPER_TRACE, adapters: ADAPTERS, tenants: 2, rate: 30, durationS: 0.4, inputTokens: [8, 16], outputTokens: [4, 8], seed: 2 });

async function adapterDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-llama-driver-"));
  for (let i = 0; i < ADAPTERS; i++) {
    await writeSyntheticAdapter({ model: model!, out: join(dir, `a${i}.gguf`), format: "gguf", rank: 4, seed: 30 + i, dtype: "f32" });
  }
  return dir;
}

const run = (dir: string, mode: LlamaTarget["mode"]) =>
  driveLlama(
    trace,
    { modelPath: model!, adapterPath: (i) => join(dir, `a${i}.gguf`), mode, maxContexts: 2, lanes: 2, threadsPerContext: 1, contextSize: 64, temperature: 0 },
    { sloMs: 1e9, drainS: 60 },
  );

if (!model) {
  test("llama.cpp driver (skipped: ../shared/models/stories260K.gguf not found)", (t) => t.pass());
} else {
  test("one context per adapter (LRU, 2 at most) and one context per switch both serve the whole trace", async (t) => {
    const dir = await adapterDir();
    const used = new Set(trace.requests.map((r) => r.adapter));
    t.true(trace.requests.length >= 6 && used.size === ADAPTERS, `trace of ${trace.requests.length}, ${used.size} adapters`);
    for (const mode of ["contexts", "switch"] as const) {
      const { records, summary, contextsCreated } = await run(dir, mode);
      t.is(summary.completed, trace.requests.length, mode);
      t.is(summary.errors, 0, mode);
      for (const [i, r] of records.entries()) {
        t.true(r.completionTokens >= 1 && r.completionTokens <= trace.requests[i].outputTokens, `${mode} request ${i}: ${r.completionTokens}`);
        t.is(r.promptTokens, trace.requests[i].inputTokens, `${mode} request ${i}: the prompt has the trace's length`);
        t.true(r.firstTokenMs! >= r.sentMs && r.doneMs! >= r.firstTokenMs!);
      }
      // Every adapter needed a context of its own (two at most at a time).
      t.true(contextsCreated >= ADAPTERS, `${mode}: ${contextsCreated} contexts created`);
      t.true(summary.cpuSPer1kTokens! > 0);
    }
  });

  test("a missing adapter file fails its requests, not the run", async (t) => {
    const dir = await adapterDir();
    const { summary, records } = await driveLlama(
      trace,
      { modelPath: model!, adapterPath: (i) => join(dir, i === 1 ? "missing.gguf" : `a${i}.gguf`), mode: "contexts", maxContexts: 2, lanes: 2, threadsPerContext: 1, contextSize: 64, temperature: 0 },
      { sloMs: 1e9, drainS: 60 },
    );
    const bad = records.filter((r) => r.adapter === 1);
    t.true(bad.length > 0 && bad.every((r) => r.error === "INTERNAL"));
    t.is(summary.completed, records.length - bad.length);
  });
}
