// The engine and LoRA cases whose llama.cpp outputs are recorded on x86 into
// test/fixtures/llama-cpp-recorded.json (scripts/record-oracle-fixtures.ts) and checked without
// llama.cpp (test/recorded-oracle.test.ts), which is how they run as arm64 under qemu. The models
// and adapters are rewritten by seeded generators at check time; their sha256 is recorded too, so
// a generator that writes other bytes on another machine fails loudly instead of comparing against
// outputs of another model.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { writeSyntheticModel, type SyntheticArch, type SyntheticType } from "../../src/gguf/synthetic.js";
import { storiesPath } from "./engine.js";
import { MIXED_ADAPTERS, type AdapterSpec } from "./lora.js";

export const FIXTURE_FILE = fileURLToPath(new URL("../../../test/fixtures/llama-cpp-recorded.json", import.meta.url));

export interface EngineCase {
  name: string;
  model: "stories260K" | { arch: SyntheticArch; type: SyntheticType; tied: boolean };
  prompt: string | null; // null: BOS alone
  nGreedy: number;
}

export const ENGINE_CASES: EngineCase[] = [
  { name: "stories260K", model: "stories260K", prompt: null, nGreedy: 64 },
  ...(["f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k"] as SyntheticType[]).map((type) => ({
    name: `synthetic llama ${type}`, model: { arch: "llama" as const, type, tied: false }, prompt: "The quick brown fox", nGreedy: 24,
  })),
  { name: "synthetic qwen2 q8_0 (tied)", model: { arch: "qwen2", type: "q8_0", tied: true }, prompt: "The quick brown fox", nGreedy: 24 },
  // The newer architectures (gemma3: a local layer with a window of 8, then a global one).
  { name: "synthetic qwen3 q8_0 (tied)", model: { arch: "qwen3", type: "q8_0", tied: true }, prompt: "The quick brown fox", nGreedy: 24 },
  { name: "synthetic phi3 q8_0", model: { arch: "phi3", type: "q8_0", tied: false }, prompt: "The quick brown fox", nGreedy: 24 },
  { name: "synthetic gemma3 q8_0 (tied)", model: { arch: "gemma3", type: "q8_0", tied: true }, prompt: "The quick brown fox", nGreedy: 24 },
];

/** Each of the four mixed adapters on stories260K (the third at scale 0.5) and the base model, run as one engine batch. */
export const LORA_PROMPTS = ["Once upon a time", "The little dog"];
export interface LoraCase {
  adapter: AdapterSpec | null; // null: the base model
  scale: number;
  prompt: number; // index into LORA_PROMPTS
}
export const LORA_CASES: LoraCase[] = [
  { adapter: MIXED_ADAPTERS[0], scale: 1, prompt: 0 },
  { adapter: MIXED_ADAPTERS[1], scale: 1, prompt: 1 },
  { adapter: MIXED_ADAPTERS[2], scale: 0.5, prompt: 0 },
  { adapter: MIXED_ADAPTERS[3], scale: 1, prompt: 1 },
  { adapter: null, scale: 0, prompt: 0 },
  { adapter: null, scale: 0, prompt: 1 },
];
export const loraCaseName = (c: LoraCase) => (c.adapter ? `${c.adapter.name} x${c.scale}` : "base") + ` on "${LORA_PROMPTS[c.prompt]}"`;
export const LORA_N = 24;

/** The model file of an engine case, written under `dir` (null: stories260K is absent). */
export async function caseModel(c: EngineCase, dir: string): Promise<string | null> {
  if (c.model === "stories260K") return storiesPath();
  const { arch, type, tied } = c.model;
  const path = join(dir, `${arch}-${type}${tied ? "-tied" : ""}.gguf`);
  await writeSyntheticModel({ arch, type, out: path, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, tied, seed: 7 });
  return path;
}

/** sha256 of a file, or of a folder's files in name order (a PEFT adapter). */
export function sha256Of(path: string): string {
  const h = createHash("sha256");
  if (statSync(path).isDirectory()) {
    for (const f of readdirSync(path).sort()) h.update(f).update(readFileSync(join(path, f)));
  } else {
    h.update(readFileSync(path));
  }
  return h.digest("hex");
}

/** One position's recorded log-probabilities: the path token and llama.cpp's top 5, [id, logprob]. */
export type RecordedRow = [number, number][];

export interface RecordedRun {
  name: string;
  sha256: string; // of the model (engine and base cases) or of the adapter the engine loads (file or PEFT folder)
  prompt: number[];
  greedy: number[];
  // Engine cases: rows[i] follows tokens[0..i] of prompt + greedy (teacher forcing along the path).
  // LoRA cases: rows[k] is the distribution greedy[k] was taken from.
  rows: RecordedRow[];
}

export interface RecordedFixtures {
  recordedWith: string;
  engine: RecordedRun[];
  lora: RecordedRun[];
}

export function readFixtures(): RecordedFixtures {
  return JSON.parse(readFileSync(FIXTURE_FILE, "utf8")) as RecordedFixtures;
}

/** A recorded row as llama.cpp's map, for maxLogprobDiff and friends. */
export const rowMap = (row: RecordedRow): Map<number, number> => new Map(row);

/** The path token and the top 5 of a full distribution. */
export function recordRow(full: Map<number, number>, pathToken: number): RecordedRow {
  const top = [...full.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([id]) => id);
  return [...new Set([pathToken, ...top])].map((id) => [id, full.get(id)!]);
}

// Tolerances in log-probability, as test/engine-oracle.test.ts explains them: F32 is plain float32
// arithmetic on both sides; F16 rounds activations like llama.cpp. The quantized types quantize the
// activations (Q8_0 / Q8_K blocks), where a rounding-boundary flip moves that position by one
// quantization step and, through its K/V, every later one; so the median is bounded tightly and the
// maximum loosely. Where the first flip falls is chance: every path's float sums differ from another's
// by 1e-6 from the first position; on the synthetic Q4_K case x86's scalar path never flips, its
// avx2 and avx512-vnni paths and arm64's neon and neon-dotprod flip at position 30 of 36, and arm64's
// scalar path (not run by test:arm64) at position 6. glibc's exp, sin, cos and pow give bit-identical
// results on x86-64 and aarch64 for the engine's inputs: the platform itself adds nothing.
export function engineTolerance(c: EngineCase): { median: number; max: number } {
  const type = c.model === "stories260K" ? "f32" : c.model.type;
  if (type === "f32") return { median: 1e-4, max: 1e-4 };
  if (type === "f16") return { median: 5e-3, max: 2e-2 };
  return { median: 5e-3, max: 3e-1 };
}
/** F32 model, F16-exact adapter values: only summation order differs (test/lora-oracle.test.ts). */
export const LORA_TOLERANCE = 1e-4;
/** Greedy ids may part only where llama.cpp's own two best tokens are this close. */
export const NEAR_TIE = 0.1;
