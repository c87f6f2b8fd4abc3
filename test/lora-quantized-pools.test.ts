// The 8-bit and 4-bit LoRA pools (loraPoolType "q8", "q4") against the F16 pool, which
// lora-oracle.test.ts holds equal to llama.cpp: one batch mixing four adapters (ranks 4..64,
// GGUF and PEFT) gives logits whose distance from the F16 pool's is a small fraction of what each
// adapter changes, on every position; base-only sequences in the same batch are untouched bit
// for bit; and the pool holds each adapter in about 0.55x (q8) or 0.3x (q4) the bytes.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NativeModel } from "../src/engine/model.js";
import type { LoraPoolType } from "../src/engine/types.js";
import { storiesPath } from "./helpers/engine.js";
import { MIXED_ADAPTERS, writeQwen2LoraTestModel, writeTestAdapter, type TestAdapter } from "./helpers/lora.js";

// Per pool: the largest deviation from the F16 pool as a fraction of the adapter's effect, and
// the largest slot size as a fraction of the F16 pool's. q8 measured 1.3-2.7% on these
// deliberately strong adapters (they move logits by 15-25): int8 weights and activations, as a
// Q8_0 adapter in llama.cpp. q4 measured 13-30%: Q4_0's step is 16x coarser than Q8_0's, on both
// A and B (the largest logit deviation over the vocabulary; what the pool type costs in quality).
const POOLS: { pool: LoraPoolType; maxDeviation: number; maxBytes: number }[] = [
  { pool: "q8", maxDeviation: 0.06, maxBytes: 0.65 },
  { pool: "q4", maxDeviation: 0.35, maxBytes: 0.35 },
];


const dir = mkdtempSync(join(tmpdir(), "edgelora-lora-quant-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const CASES: { name: string; model: () => Promise<string | null>; prompt: string }[] = [
  { name: "stories260K", model: async () => storiesPath(), prompt: "Once upon a time there was a little dog" },
  {
    name: "synthetic qwen2 f32",
    model: () => writeQwen2LoraTestModel(dir),
    prompt: "The quick brown fox jumps over",
  },
  {
    // Q8_0 weights: the shrinks read the base product's Q8_0 activations instead of their own.
    name: "synthetic qwen2 q8_0",
    model: () => writeQwen2LoraTestModel(dir, "q8_0"),
    prompt: "The quick brown fox jumps over",
  },
];

/** Logits of every prompt position of 5 sequences in one batch: slots 0..3, then no adapter. */
async function batchLogits(model: NativeModel, adapters: TestAdapter[], prompt: number[], loraPoolType: LoraPoolType) {
  const ctx = await model.createContext({
    nCtx: 64, nSeqMax: 5, nBatchMax: 256, kvType: "f32", threads: 1, loraSlots: adapters.length, loraMaxRank: 64, loraPoolType,
  });
  try {
    const bytes: number[] = [];
    for (const [slot, a] of adapters.entries()) bytes.push((await ctx.loadAdapter(slot, a.path)).bytes);
    const slots = [0, 1, 2, 3, -1];
    const tokens = slots.flatMap(() => prompt);
    const r = await ctx.decode(
      {
        tokens,
        pos: slots.flatMap(() => prompt.map((_, i) => i)),
        seq: slots.flatMap((_, s) => prompt.map(() => s)),
        loraSlot: slots.flatMap((s) => prompt.map(() => s)),
        loraScale: tokens.map(() => 1),
        logits: tokens.map(() => 1),
      },
      tokens.map(() => null),
    );
    const rows = r.logits.length / slots.length;
    return { perSeq: slots.map((_, s) => r.logits.slice(s * rows, (s + 1) * rows)), bytes };
  } finally {
    ctx.dispose();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

for (const c of CASES) for (const { pool, maxDeviation, maxBytes } of POOLS) {
  test.serial(`${c.name}: the ${pool} pool stays within ${maxDeviation * 100}% of each adapter's effect`, async (t) => {
    const modelPath = await c.model();
    if (!modelPath) return t.pass("skipped: ../shared/models/stories260K.gguf is absent");
    const sub = mkdtempSync(join(dir, "case-"));
    const adapters = await Promise.all(MIXED_ADAPTERS.map((s) => writeTestAdapter(modelPath, sub, s)));
    const model = await NativeModel.load(modelPath);
    try {
      const prompt = model.tokenize(c.prompt, true);
      const f16 = await batchLogits(model, adapters, prompt, "f16");
      const quant = await batchLogits(model, adapters, prompt, pool);
      const base = f16.perSeq[4];
      t.deepEqual(quant.perSeq[4], base, "a sequence without an adapter changed");
      for (const [i, a] of adapters.entries()) {
        const effect = maxAbsDiff(f16.perSeq[i], base);
        const deviation = maxAbsDiff(quant.perSeq[i], f16.perSeq[i]);
        t.log(`${a.spec.name}: effect ${effect.toFixed(3)}, ${pool} deviation ${deviation.toFixed(4)} (${((deviation / effect) * 100).toFixed(2)}%), ` +
          `bytes ${quant.bytes[i]} vs ${f16.bytes[i]}`);
        t.true(effect > 1, `${a.spec.name}: the adapter barely changes the logits`);
        t.true(deviation > 0, `${a.spec.name}: the ${pool} pool gave the F16 result exactly: not quantized?`);
        t.true(deviation <= maxDeviation * effect, `${a.spec.name}: ${pool} deviation ${deviation} vs effect ${effect}`);
        t.true(quant.bytes[i] < maxBytes * f16.bytes[i], `${a.spec.name}: ${pool} slot holds ${quant.bytes[i]} bytes, f16 ${f16.bytes[i]}`);
      }
    } finally {
      model.dispose();
    }
  });
}
