// The workload benchmarks' adapters: rank-16 LoRA adapters on every module of the bench model
// (F16, as a converted adapter would be), a few distinct files written once into the cache.
import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";

import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { BENCH_SHAPE } from "./bench-model.js";

export const BENCH_ADAPTER_RANK = 16;

/** Paths of `count` adapters for the bench model at `modelPath`, seeds 1..count, written when missing. */
export async function benchAdapterFiles(cache: string, modelPath: string, count: number, log: (line: string) => void): Promise<string[]> {
  const s = BENCH_SHAPE;
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(cache, `lora-${s.arch}-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-r${BENCH_ADAPTER_RANK}-seed${i + 1}.gguf`);
    if (!existsSync(path)) {
      log(`writing ${path} (once)`);
      const tmp = `${path}.${process.pid}.tmp`;
      await writeSyntheticAdapter({ model: modelPath, out: tmp, format: "gguf", rank: BENCH_ADAPTER_RANK, seed: i + 1, dtype: "f16" });
      renameSync(tmp, path);
    }
    paths.push(path);
  }
  return paths;
}
