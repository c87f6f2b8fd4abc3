// What the F16 slot pool's rounding of an F32 adapter costs: adapters with F32 values that F16
// cannot hold exactly, on stories260K and a small synthetic Qwen2 (F32 weights), compared with
// llama.cpp (node-llama-cpp, which computes an F32 adapter in F32) along llama.cpp's greedy path:
//   exact    = engine vs llama.cpp given the adapter already rounded to F16 (stored as F32): the
//              engines' own agreement, the floor;
//   rounding = engine (F16 pool) vs llama.cpp with the F32 adapter: floor + the rounding's effect;
//   adapter  = llama.cpp with vs without the adapter: how much the adapter moves the output.
// Figures are the largest |delta log-prob| over each position's path token and llama.cpp's top 5.
// Usage: npm run bench:adapter-precision   (prints a table, writes bench-results/adapter-precision-<date>.json)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { fp16ToFp32, fp32ToFp16 } from "../src/gguf/quantize.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { writeLoraGguf } from "../src/lora/gguf-adapter.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { logSoftmax } from "../test/helpers/engine.js";
import { Oracle } from "../test/helpers/oracle.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";

const N = 32;
const dir = mkdtempSync(join(tmpdir(), "edgelora-adapter-precision-"));
const log = (s: string) => process.stderr.write(`${s}\n`);

function maxDiff(a: (Float64Array | Map<number, number>)[], ref: Map<number, number>[], path: number[]): number {
  let worst = 0;
  ref.forEach((r, k) => {
    const top = [...r.entries()].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([id]) => id);
    for (const id of new Set([path[k], ...top])) {
      const v = a[k] instanceof Map ? (a[k] as Map<number, number>).get(id)! : (a[k] as Float64Array)[id];
      worst = Math.max(worst, Math.abs(v - r.get(id)!));
    }
  });
  return worst;
}

/** The engine's log-probs after each of tokens[0..n-2] with the adapter in slot 0 (F16 pool). */
async function engineRows(model: NativeModel, adapterPath: string, tokens: number[], rank: number): Promise<Float64Array[]> {
  const ctx = await model.createContext({ nCtx: tokens.length + 1, nSeqMax: 1, nBatchMax: tokens.length, kvType: "f32", threads: 1, loraSlots: 1, loraMaxRank: rank });
  try {
    await ctx.loadAdapter(0, adapterPath);
    const feed = tokens.slice(0, -1);
    const r = await ctx.decode(
      { tokens: feed, pos: feed.map((_, i) => i), seq: feed.map(() => 0), loraSlot: feed.map(() => 0), loraScale: feed.map(() => 1), logits: feed.map(() => 1) },
      feed.map(() => null),
    );
    const nVocab = r.logits.length / feed.length;
    return feed.map((_, i) => logSoftmax(r.logits.subarray(i * nVocab, (i + 1) * nVocab)));
  } finally {
    ctx.dispose();
  }
}

interface Case { model: string; adapter: string; rank: number; strength: number; exact: number; rounding: number; adapterEffect: number; greedySame: boolean }
const cases: Case[] = [];
try {
  const qwen = join(dir, "qwen2.gguf");
  await writeSyntheticModel({ arch: "qwen2", type: "f32", out: qwen, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, tied: true, seed: 7 });
  const models: [string, string][] = [["stories260K", join(packageRoot(), "..", "shared", "models", "stories260K.gguf")], ["qwen2 synthetic", qwen]];
  for (const [label, path] of models) {
    const model = await NativeModel.load(path);
    const oracle = await Oracle.load(path);
    try {
      const prompt = model.tokenize("Once upon a time", true);
      for (const [rank, strength, seed] of [[8, 0.5, 1], [16, 1, 2], [64, 2, 3]]) {
        const f32 = join(dir, `${label}-r${rank}.gguf`);
        const a = await writeSyntheticAdapter({ model: path, out: f32, format: "gguf", rank, strength, seed });
        const rounded = join(dir, `${label}-r${rank}-f16-as-f32.gguf`);
        const half = (x: Float32Array) => x.map((v) => fp16ToFp32(fp32ToFp16(v)));
        await writeLoraGguf(rounded, { arch: a.shapes.arch, alpha: rank, pairs: a.pairs.map((p) => ({ ...p, a: half(p.a), b: half(p.b) })) });
        const want = await oracle.greedy(prompt, N, { filePath: f32, scale: 1 });
        const tokens = [...prompt, ...want];
        const ours = (await engineRows(model, f32, tokens, rank)).slice(prompt.length - 1);
        const refF32 = (await oracle.nextLogprobs(tokens, { filePath: f32, scale: 1 })).slice(prompt.length - 1);
        const refHalf = (await oracle.nextLogprobs(tokens, { filePath: rounded, scale: 1 })).slice(prompt.length - 1);
        const refBase = (await oracle.nextLogprobs(tokens, null)).slice(prompt.length - 1);
        const greedyOurs = ours.map((row) => row.reduce((b, v, i) => (v > row[b] ? i : b), 0));
        const c: Case = {
          model: label, adapter: `r${rank} all modules`, rank, strength,
          exact: maxDiff(ours, refHalf, want), rounding: maxDiff(ours, refF32, want), adapterEffect: maxDiff(refBase, refF32, want),
          greedySame: greedyOurs.every((id, k) => id === want[k]),
        };
        cases.push(c);
        log(`${label} r${rank}: exact ${c.exact.toExponential(2)}, rounding ${c.rounding.toExponential(2)}, adapter ${c.adapterEffect.toFixed(3)}, greedy ${c.greedySame ? "same" : "differs"}`);
      }
    } finally {
      model.dispose();
      await oracle.dispose();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(
  [
    `F32 adapters (values F16 cannot hold) in the F16 slot pool vs llama.cpp computing them in F32; ${N} greedy tokens from "Once upon a time";`,
    "max |delta log-prob| over path token + llama.cpp's top 5 per position",
    renderTable(
      ["model", "adapter", "B strength", "exact (F16 values)", "F32 rounded to F16", "adapter's own effect", "rounding / effect", "greedy ids"],
      cases.map((c) => [c.model, c.adapter, fmt(c.strength), c.exact.toExponential(1), c.rounding.toExponential(1), fmt(c.adapterEffect, 3),
        fmt((100 * c.rounding) / c.adapterEffect, 2, "%"), c.greedySame ? "same" : "differ"]),
    ),
    "",
  ].join("\n"),
);
log(`wrote ${writeBenchResults("adapter-precision", { tokens: N, cases })}`);
