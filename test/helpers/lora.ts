// LoRA test helpers: adapters whose values survive the engine's F16 slot storage exactly (so the
// engine and llama.cpp multiply by the same numbers), llama.cpp with an adapter as the oracle,
// a mixed-adapter batched greedy run on the engine, a merged model (W + s·B·A), and the adapters
// and Qwen2 model the LoRA tests share.
import { join } from "node:path";

import type { NativeContext } from "../../src/engine/context.js";
import { fp16ToFp32, fp32ToFp16, GGMLType } from "../../src/gguf/quantize.js";
import { writeSyntheticModel } from "../../src/gguf/synthetic.js";
import { readGGUF, readTensorBytes } from "../../src/gguf/reader.js";
import { GGUFWriter } from "../../src/gguf/writer.js";
import { writeLoraGguf } from "../../src/lora/gguf-adapter.js";
import { GGUF_MODULE_NAME, type LoraModule, type LoraPair } from "../../src/lora/modules.js";
import { writePeftDir } from "../../src/lora/peft.js";
import { readModelShapes, syntheticPairs } from "../../src/lora/synthetic.js";
import { logSoftmax } from "./engine.js";
import { referenceConvertLora } from "./reference-lora-convert.js";

export interface AdapterSpec {
  name: string;
  format: "gguf" | "peft";
  rank: number;
  modules: LoraModule[];
  seed: number;
  alphaOverRank?: number; // default 1; powers of two keep alpha/rank exact in float32
  strength?: number; // how far each adapted projection moves per unit-RMS input (default 0.5)
  peftDtype?: "F32" | "F16";
}

/** Four adapters of ranks 4, 8, 16 and 64 on different module subsets, as GGUF and PEFT files. */
export const MIXED_ADAPTERS: AdapterSpec[] = [
  { name: "r4-qv", format: "gguf", rank: 4, modules: ["q", "v"], seed: 11, strength: 1 },
  { name: "r8-ko-down", format: "peft", rank: 8, modules: ["k", "o", "down"], seed: 12, alphaOverRank: 2, peftDtype: "F16" },
  { name: "r16-ffn", format: "gguf", rank: 16, modules: ["gate", "up", "down"], seed: 13 },
  { name: "r64-all", format: "peft", rank: 64, modules: ["q", "k", "v", "o", "gate", "up", "down"], seed: 14, alphaOverRank: 0.5 },
];

/** The same four on phi3's fused projections (qkv: attn_qkv / qkv_proj; gate_up: ffn_up / gate_up_proj). */
export const FUSED_MIXED_ADAPTERS: AdapterSpec[] = [
  { name: "r4-qkv", format: "gguf", rank: 4, modules: ["qkv"], seed: 11, strength: 1 },
  { name: "r8-qkv-o-down", format: "peft", rank: 8, modules: ["qkv", "o", "down"], seed: 12, alphaOverRank: 2, peftDtype: "F16" },
  { name: "r16-ffn", format: "gguf", rank: 16, modules: ["gate_up", "down"], seed: 13 },
  { name: "r64-all", format: "peft", rank: 64, modules: ["qkv", "o", "gate_up", "down"], seed: 14, alphaOverRank: 0.5 },
];

/** The small Qwen2-shaped F32 model (biases, GQA, tied output) the LoRA tests run besides stories260K. */
export async function writeQwen2LoraTestModel(dir: string, type: "f32" | "q8_0" = "f32"): Promise<string> {
  const path = join(dir, `qwen2-${type}.gguf`);
  await writeSyntheticModel({ arch: "qwen2", type, out: path, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, tied: true, seed: 7 });
  return path;
}

export interface TestAdapter {
  spec: AdapterSpec;
  path: string; // what the engine loads (GGUF file or PEFT directory)
  ggufPath: string; // what llama.cpp loads (the PEFT form converted by convert_lora_to_gguf.py's rules)
  pairs: LoraPair[]; // exact values, in the model's (GGUF) row order
  factor: number; // alpha / rank
}

/** F16-representable float32 values: the engine's F16 slots then hold them exactly. */
function toHalfExact(x: Float32Array): Float32Array {
  return x.map((v) => fp16ToFp32(fp32ToFp16(v)));
}

export async function writeTestAdapter(modelPath: string, dir: string, spec: AdapterSpec): Promise<TestAdapter> {
  const shapes = readModelShapes(modelPath);
  const factor = spec.alphaOverRank ?? 1;
  const alpha = factor * spec.rank;
  const bStd = (spec.strength ?? 0.5) / (factor * Math.sqrt(spec.rank));
  const pairs = syntheticPairs(shapes, spec.rank, spec.modules, spec.seed, bStd).map((p) => ({ ...p, a: toHalfExact(p.a), b: toHalfExact(p.b) }));
  const ggufPath = join(dir, `${spec.name}.gguf`);
  if (spec.format === "gguf") {
    await writeLoraGguf(ggufPath, { arch: shapes.arch, alpha, pairs });
    return { spec, path: ggufPath, ggufPath, pairs, factor };
  }
  const peftDir = join(dir, `${spec.name}-peft`);
  // Hugging Face layout (llama q/k lora_B rows in rotate-half order), as a trained adapter has it.
  await writePeftDir(peftDir, { alpha, pairs, dtype: spec.peftDtype ?? "F32", layout: shapes });
  await referenceConvertLora(peftDir, ggufPath, { arch: shapes.arch, numAttentionHeads: shapes.nHead, numKeyValueHeads: shapes.nHeadKv });
  return { spec, path: peftDir, ggufPath, pairs, factor };
}

/** Writes `modelPath` with W + s·B·A folded into every adapted weight (all must be F32). */
export async function writeMergedModel(modelPath: string, out: string, adapter: TestAdapter, scale: number): Promise<void> {
  const info = readGGUF(modelPath);
  const w = new GGUFWriter(info.alignment);
  for (const [key, value] of info.metadata) if (key !== "general.alignment") w.set(key, value);
  const byName = new Map(adapter.pairs.map((p) => [`blk.${p.layer}.${GGUF_MODULE_NAME[p.module]}.weight`, p]));
  const s = scale * adapter.factor;
  for (const t of info.tensors) {
    const bytes = readTensorBytes(modelPath, info, t);
    const p = byName.get(t.name);
    if (!p) {
      w.addTensor(t.name, t.shape, t.type, () => bytes);
      continue;
    }
    if (t.type !== GGMLType.F32) throw new Error(`${t.name}: merging needs F32 weights`);
    const wf = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    for (let o = 0; o < p.nOut; o++) {
      for (let i = 0; i < p.nIn; i++) {
        let d = 0;
        for (let j = 0; j < p.rank; j++) d += p.b[o * p.rank + j] * p.a[j * p.nIn + i];
        wf[o * p.nIn + i] += s * d;
      }
    }
    w.addTensor(t.name, t.shape, t.type, () => new Uint8Array(wf.buffer));
  }
  await w.write(out);
}

// ---- the engine: many sequences, each with its own adapter, in every step ---------------------

export interface MixedSequence {
  prompt: number[];
  slot: number; // -1 = base model
  scale: number;
}

export interface GreedyRun {
  ids: number[];
  rows: Float64Array[]; // rows[k]: log-probabilities the model gave before ids[k]
}

/**
 * Greedy decoding of all `seqs` together on sequences 0..n-1: one step with every prompt, then
 * one step per token with one token of every sequence. `join[i]` (default 0) delays sequence i
 * by that many decode steps (it joins mid-run; its prompt shares a step with the others'
 * decode tokens); `leave[i]` ends sequence i after that many tokens (its KV is cleared while
 * the others go on).
 */
export async function mixedGreedy(
  ctx: NativeContext, seqs: MixedSequence[], n: number, join: number[] = [], leave: number[] = [],
): Promise<GreedyRun[]> {
  const runs: GreedyRun[] = seqs.map(() => ({ ids: [], rows: [] }));
  const done = seqs.map((_, i) => (leave[i] ?? n) <= 0);
  seqs.forEach((_, i) => ctx.seqClear(i));
  for (let step = 0; done.some((d) => !d); step++) {
    const tokens: number[] = [], pos: number[] = [], seq: number[] = [], loraSlot: number[] = [], loraScale: number[] = [], logits: number[] = [];
    const wants: number[] = [];
    seqs.forEach((s, i) => {
      const start = join[i] ?? 0;
      if (done[i] || step < start) return;
      const fresh = step === start;
      const feed = fresh ? s.prompt : [runs[i].ids[runs[i].ids.length - 1]];
      const pos0 = fresh ? 0 : s.prompt.length + runs[i].ids.length - 1;
      feed.forEach((t, k) => {
        tokens.push(t);
        pos.push(pos0 + k);
        seq.push(i);
        loraSlot.push(s.slot);
        loraScale.push(s.scale);
        logits.push(k === feed.length - 1 ? 1 : 0);
      });
      wants.push(i);
    });
    const r = await ctx.decode({ tokens, pos, seq, loraSlot, loraScale, logits }, wants.map(() => null));
    const nVocab = r.logits.length / wants.length;
    wants.forEach((i, k) => {
      const row = logSoftmax(r.logits.subarray(k * nVocab, (k + 1) * nVocab));
      let best = 0;
      for (let id = 1; id < nVocab; id++) if (row[id] > row[best]) best = id;
      runs[i].ids.push(best);
      runs[i].rows.push(row);
      if (runs[i].ids.length >= Math.min(n, leave[i] ?? n)) {
        done[i] = true;
        ctx.seqClear(i);
      }
    });
  }
  return runs;
}

/** Largest |engine - llama.cpp| over each position's path token and llama.cpp's top 5. */
export function maxLogprobDiff(mine: Float64Array[], ref: Map<number, number>[], path: number[]): number {
  let worst = 0;
  mine.forEach((row, k) => {
    const top = [...ref[k].entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([id]) => id);
    for (const id of new Set([path[k], ...top])) worst = Math.max(worst, Math.abs(row[id] - ref[k].get(id)!));
  });
  return worst;
}
