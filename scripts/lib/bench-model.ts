// The benchmark's synthetic model: a realistic small-LLM shape (ORACLE.md's baseline table),
// written once per weight type into a cache folder and reused. The vocabulary is the synthetic
// SPM one (857 tokens, not the 512 of ORACLE.md's model: 0.3M more output weights of 359M).
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";

import { WEIGHT_MIXES } from "../../src/gguf/presets.js";
import { writeSyntheticModel, type SyntheticType } from "../../src/gguf/synthetic.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";

export const BENCH_SHAPE = { arch: "llama", nEmbd: 896, nLayer: 24, nHead: 14, nHeadKv: 2, nFf: 4864 } as const;

/** Any uniform type or preset mix (presets.ts); at n_embd 896 the mixes hold llama.cpp's fallbacks. */
export type BenchType = SyntheticType;
export const BENCH_TYPES: BenchType[] = ["f16", "q8_0", "q4_0"];  // the default rows
export const ALL_BENCH_TYPES: readonly BenchType[] = WEIGHT_MIXES;

/** Path of the cached model of this type, written first when missing. */
export async function benchModel(dir: string, type: BenchType, log: (line: string) => void): Promise<string> {
  const s = BENCH_SHAPE;
  const path = join(dir, `synthetic-${s.arch}-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-${type}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`writing ${path} (once)`);
  // Write under a temporary name so an interrupted run never leaves a truncated model behind.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeSyntheticModel({
    arch: s.arch, type, out: tmp, nEmbd: s.nEmbd, nLayer: s.nLayer, nHead: s.nHead, nHeadKv: s.nHeadKv,
    nFf: s.nFf, vocab: "spm", tied: false, seed: 1,
  });
  renameSync(tmp, path);
  return path;
}

/** The benchmarks' LoRA adapters (bench:lora, bench:workload): `count` of rank `rank` on all seven
 *  modules, F16 as a converted adapter would be, seeds 1..count; each written once into `dir`. */
export async function benchAdapters(dir: string, modelPath: string, count: number, rank: number, log: (line: string) => void): Promise<string[]> {
  const s = BENCH_SHAPE;
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `lora-${s.arch}-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-r${rank}-seed${i + 1}.gguf`);
    if (!existsSync(path)) {
      log(`writing ${path} (once)`);
      const tmp = `${path}.${process.pid}.tmp`;
      await writeSyntheticAdapter({ model: modelPath, out: tmp, format: "gguf", rank, seed: i + 1, dtype: "f16" });
      renameSync(tmp, path);
    }
    paths.push(path);
  }
  return paths;
}
