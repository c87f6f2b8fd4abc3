// Batched multi-LoRA on the engine itself: requests with different adapters give the same tokens
// one at a time and all together (through the batch driver, with continuous batching and slot
// eviction), and sequences joining and leaving mid-run do not change anyone else's output.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { batchAdapterSlots } from "../src/batch/adapter-slots.js";
import { runBatch, type BatchJob } from "../src/batch/driver.js";
import { NativeEngine } from "../src/engine/engine.js";
import { NativeModel } from "../src/engine/model.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { mixedGreedy, writeTestAdapter, type AdapterSpec, type GreedyRun, type TestAdapter } from "./helpers/lora.js";

const dir = mkdtempSync(join(tmpdir(), "edgelora-lora-batch-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const SPECS: AdapterSpec[] = [
  { name: "r4-qv", format: "gguf", rank: 4, modules: ["q", "v"], seed: 21, strength: 1 },
  { name: "r8-down", format: "peft", rank: 8, modules: ["o", "down"], seed: 22 },
  { name: "r16-all", format: "gguf", rank: 16, modules: ["q", "k", "v", "o", "gate", "up", "down"], seed: 23 },
];

let fixture: Promise<{ modelPath: string; adapters: TestAdapter[] }> | undefined;
function setup() {
  fixture ??= (async () => {
    const modelPath = join(dir, "llama-f32.gguf");
    await writeSyntheticModel({ arch: "llama", type: "f32", out: modelPath, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 3 });
    return { modelPath, adapters: await Promise.all(SPECS.map((s) => writeTestAdapter(modelPath, dir, s))) };
  })();
  return fixture;
}

const PROMPTS = ["The quick brown fox", "Once upon a time", "Hello world", "a b c"];

async function runAll(maxSequences: number, slots: number, threads = 1) {
  const { modelPath, adapters } = await setup();
  const engine = await NativeEngine.open(modelPath, {
    threads, nCtx: 64, nSeqMax: maxSequences, nBatchMax: 64, kvType: "f32", loraSlots: slots, loraMaxRank: 16,
  });
  try {
    // Twelve requests, four per prompt: each adapter (at scale 1, then 0.5) and the base model;
    // greedy for the first prompt, then some sampled; of different lengths.
    const jobs: BatchJob[] = Array.from({ length: 12 }, (_, i) => ({
      promptTokens: engine.tokenize(PROMPTS[Math.floor(i / 4)], true),
      adapter: i % 4 === 3 ? null : { path: adapters[i % 4].path, scale: i < 6 ? 1 : 0.5 },
      maxTokens: i < 4 ? 16 : 6 + ((i * 5) % 13),
      sampling: { temperature: i >= 4 && i % 2 ? 0.9 : 0, topK: 0, topP: 1, minP: 0, seed: 100 + i },
    }));
    const store = batchAdapterSlots(engine, slots);
    return { ...(await runBatch(engine, jobs, store, { maxSequences, maxBatchTokens: 64, prefillChunk: 4 })), store };
  } finally {
    engine.dispose();
  }
}

test.serial("batched == unbatched: the same requests one at a time and all together give the same tokens", async (t) => {
  const alone = await runAll(1, 1);
  const together = await runAll(12, 3);
  const rolling = await runAll(4, 3); // sequences join and leave mid-run (continuous batching)
  t.is(alone.stats.maxSequencesInStep, 1);
  t.is(together.stats.maxAdaptersInStep, 6); // three adapters at two scales
  t.true(rolling.stats.maxAdaptersInStep > 1);
  t.true(alone.store.stats().evictions > 0, "one slot for three adapters must evict");
  for (const [i, a] of alone.outputs.entries()) {
    for (const [name, other] of [["together", together], ["rolling", rolling]] as const) {
      const o = other.outputs[i];
      t.deepEqual(o.tokens, a.tokens, `request ${i}: ${name} tokens differ from one at a time`);
      t.is(o.text, a.text);
      const worst = Math.max(0, ...o.logprobs.map((lp, k) => Math.abs(lp - a.logprobs[k])));
      t.true(worst <= 1e-4, `request ${i}: ${name} log-probabilities differ by ${worst}`);
    }
  }
  // The adapters matter: on the first prompt (greedy) each adapter's output differs from the base model's.
  for (const i of [0, 1, 2]) t.notDeepEqual(alone.outputs[i].tokens, alone.outputs[3].tokens, `adapter ${i} does not change the output`);
});

test.serial("threads: two threads give one thread's tokens and log-probabilities bit for bit", async (t) => {
  // A step of 12 tokens splits the FFN projections (and their LoRA shrinks and expands, slice
  // by slice) across both threads.
  const one = await runAll(12, 3, 1);
  const two = await runAll(12, 3, 2);
  for (const [i, a] of one.outputs.entries()) {
    t.deepEqual(two.outputs[i].tokens, a.tokens, `request ${i}: tokens differ with two threads`);
    t.deepEqual(two.outputs[i].logprobs, a.logprobs, `request ${i}: log-probabilities differ with two threads`);
  }
});

test.serial("continuous batching: sequences joining and leaving mid-run do not change the others' outputs", async (t) => {
  const { modelPath, adapters } = await setup();
  const model = await NativeModel.load(modelPath);
  try {
    const ctx = await model.createContext({ nCtx: 64, nSeqMax: 5, nBatchMax: 64, kvType: "f32", threads: 1, loraSlots: 3, loraMaxRank: 16 });
    for (const [slot, a] of adapters.entries()) await ctx.loadAdapter(slot, a.path);
    const p = PROMPTS.map((s) => model.tokenize(s, true));
    const seqs = [
      { prompt: p[0], slot: 0, scale: 1 },
      { prompt: p[1], slot: 1, scale: 1 },
      { prompt: p[0], slot: -1, scale: 0 },
      { prompt: p[3], slot: 2, scale: 1 },
      { prompt: p[0], slot: 2, scale: 0.5 },
    ];
    const n = 16;
    const solo: GreedyRun[] = [];
    for (const s of seqs) solo.push((await mixedGreedy(ctx, [s], n))[0]);
    // Sequence 1 joins at step 3 and 3 at step 7; 2 leaves after 5 tokens, 4 after 9.
    const mixed = await mixedGreedy(ctx, seqs, n, [0, 3, 0, 7, 0], [n, n, 5, n, 9]);
    ctx.dispose();
    for (const [i, m] of mixed.entries()) {
      t.deepEqual(m.ids, solo[i].ids.slice(0, m.ids.length), `sequence ${i}: ids differ from its run alone`);
      let worst = 0;
      m.rows.forEach((row, k) => row.forEach((v, id) => (worst = Math.max(worst, Math.abs(v - solo[i].rows[k][id])))));
      t.true(worst <= 1e-4, `sequence ${i}: log-probabilities differ by ${worst}`);
    }
    for (const i of [0, 4]) t.notDeepEqual(solo[i].ids, solo[2].ids, `sequence ${i}: the adapter does not change the output`);
  } finally {
    model.dispose();
  }
});
