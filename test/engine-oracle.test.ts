// The engine against llama.cpp: greedy ids and teacher-forced log-probabilities, on the real
// stories260K model and on synthetic Llama- and Qwen2-shaped models in every weight type.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NativeModel } from "../src/engine/model.js";
import { writeSyntheticModel, type SyntheticArch, type SyntheticType } from "../src/gguf/synthetic.js";
import { engineGreedy, engineNextLogprobs, storiesPath } from "./helpers/engine.js";
import { Oracle } from "./helpers/oracle.js";

interface LogprobComparison {
  max: number; // largest |engine - llama.cpp| over each position's path token and llama.cpp's top 5
  median: number; // median over positions of that position's largest difference
  ref: Map<number, number>[]; // llama.cpp's log-probabilities after each prefix
}

/**
 * Teacher-forced comparison along `tokens`, over each position's path token and llama.cpp's top 5
 * tokens (tokens of tiny probability carry float32 softmax noise).
 */
async function compareLogprobs(model: NativeModel, oracle: Oracle, tokens: number[]): Promise<LogprobComparison> {
  const ctx = await model.createContext({ nCtx: tokens.length + 1, nSeqMax: 1, nBatchMax: 64, kvType: "f32", threads: 1 });
  try {
    const mine = await engineNextLogprobs(ctx, tokens);
    const ref = await oracle.nextLogprobs(tokens);
    const perPosition = ref.map((row, i) => {
      const top = [...row.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([id]) => id);
      let worst = 0;
      for (const id of new Set([tokens[i + 1], ...top])) worst = Math.max(worst, Math.abs(mine[i][id] - row.get(id)!));
      return worst;
    });
    const sorted = [...perPosition].sort((a, b) => a - b);
    return { max: sorted[sorted.length - 1], median: sorted[Math.floor(sorted.length / 2)], ref };
  } finally {
    ctx.dispose();
  }
}

/** Gap between llama.cpp's two most likely tokens, in log-probability. */
function topGap(row: Map<number, number>): number {
  const [a, b] = [...row.values()].sort((x, y) => y - x);
  return a - b;
}

const stories = storiesPath();

test("stories260K: greedy ids from BOS and per-position log-probabilities match llama.cpp", async (t) => {
  if (!stories) return t.pass("skipped: ../shared/models/stories260K.gguf is absent");
  const model = await NativeModel.load(stories);
  const oracle = await Oracle.load(stories);
  try {
    const bos = [model.info.bos];
    const want = await oracle.greedy(bos, 200);
    const ctx = await model.createContext({ nCtx: 256, nSeqMax: 1, nBatchMax: 64, kvType: "f32", threads: 1 });
    const got = await engineGreedy(ctx, bos, 200);
    ctx.dispose();
    t.deepEqual(got, want);
    const { max } = await compareLogprobs(model, oracle, [...bos, ...want]);
    t.log(`stories260K: max |delta logprob| = ${max.toExponential(2)}`);
    t.true(max <= 1e-4, `max |delta logprob| ${max}`);
  } finally {
    model.dispose();
    await oracle.dispose();
  }
});

// Tolerances in log-probability per weight type. F32 is plain float32 arithmetic on both sides.
// For the other types llama.cpp rounds activations before the dot product (to F16 / BF16, or
// to Q8_0 / Q8_K blocks for quantized weights; ORACLE.md) and the engine rounds them the same
// way, so most positions agree to ~1e-5. What is left are rounding-boundary flips: a value
// that lands on the other side of a rounding boundary in one engine moves by one quantization
// step, and since that position's K/V stay in the cache, every later position carries the
// change. The engine shows the same on its own: on the q8_0 model, its one-token path and its
// batched path (float sums in another order, 2e-6 apart) part by 0.2 from the position where
// one activation lands on the other side of a boundary, while the scalar path, whose order is
// the same in both, gives identical bits. So for those types the test bounds the median over
// positions tightly and the maximum loosely. Measured (seed 7, 2 layers, 256 wide, ~36 positions): f32 max 8e-6;
// f16 max 4.6e-3; bf16 max 3.3e-2; q8_0, q4_0, q6_k max <= 1.7e-3; q4_k max 1.3e-1 after a flip.
const TOLERANCE: Record<SyntheticType, { median: number; max: number }> = {
  f32: { median: 1e-4, max: 1e-4 },
  f16: { median: 5e-3, max: 2e-2 },
  bf16: { median: 5e-3, max: 3e-1 },
  q8_0: { median: 5e-3, max: 3e-1 },
  q4_0: { median: 5e-3, max: 3e-1 },
  q4_k: { median: 5e-3, max: 3e-1 },
  q6_k: { median: 5e-3, max: 3e-1 },
};
// Greedy ids may part only where llama.cpp's own two best tokens are this close (a near-tie
// that a rounding flip can decide either way); anywhere else the ids must be equal.
const NEAR_TIE = 0.1;

const TYPES: SyntheticType[] = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"];
// n_embd and n_ff of 256 so that Q4_K / Q6_K blocks (256 wide) apply to every matrix.
const SHAPES: { arch: SyntheticArch; tied: boolean }[] = [
  { arch: "llama", tied: false },
  { arch: "qwen2", tied: true },
];
const N_GREEDY = 24;

const dir = mkdtempSync(join(tmpdir(), "edgelora-oracle-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

for (const { arch, tied } of SHAPES) {
  for (const type of TYPES) {
    test.serial(`synthetic ${arch} ${type}${tied ? " (tied)" : ""}: greedy ids and log-probabilities match llama.cpp`, async (t) => {
      const path = join(dir, `${arch}-${type}.gguf`);
      await writeSyntheticModel({ arch, type, out: path, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, tied, seed: 7 });
      const model = await NativeModel.load(path);
      const oracle = await Oracle.load(path);
      try {
        const prompt = model.tokenize("The quick brown fox", true);
        t.deepEqual(prompt, oracle.tokenize("The quick brown fox", model.info.addBos));
        const want = await oracle.greedy(prompt, N_GREEDY);
        const ctx = await model.createContext({ nCtx: 64, nSeqMax: 1, nBatchMax: 64, kvType: "f32", threads: 1 });
        const got = await engineGreedy(ctx, prompt, N_GREEDY);
        ctx.dispose();
        const { max, median, ref } = await compareLogprobs(model, oracle, [...prompt, ...want]);
        const split = got.findIndex((id, i) => id !== want[i]);
        if (split >= 0) {
          // ref[prompt.length - 1 + k] is llama.cpp's distribution for generated token k.
          const gap = topGap(ref[prompt.length - 1 + split]);
          t.log(`greedy ids part at token ${split} where llama.cpp's top-2 gap is ${gap.toFixed(4)}`);
          t.true(gap < NEAR_TIE, `greedy ids differ at token ${split}, not a near-tie (gap ${gap})`);
        } else {
          t.deepEqual(got, want);
        }
        const tol = TOLERANCE[type];
        t.log(`${arch} ${type}: |delta logprob| median ${median.toExponential(2)}, max ${max.toExponential(2)} (tolerance ${tol.median}/${tol.max})`);
        t.true(median <= tol.median, `median |delta logprob| ${median} > ${tol.median}`);
        t.true(max <= tol.max, `max |delta logprob| ${max} > ${tol.max}`);
      } finally {
        model.dispose();
        await oracle.dispose();
      }
    });
  }
}
