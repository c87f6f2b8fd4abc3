// Adapter references as users write them (PATH[:SCALE]) and the one fact about an adapter file
// that must be known before a context exists: its rank, which sizes the context's LoRA slots.
// Everything else (shapes, architecture, dtypes) the engine checks when it loads the adapter.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { readGGUF } from "../gguf/reader.js";

export interface AdapterRef {
  path: string; // GGUF adapter file or PEFT directory
  scale: number; // user scale (multiplies the adapter's own alpha/rank factor)
}

/** "PATH" or "PATH:SCALE" (scale default 1); a suffix that is not a number stays part of the path. */
export function parseAdapterRef(spec: string): AdapterRef {
  const colon = spec.lastIndexOf(":");
  if (colon > 0) {
    const tail = spec.slice(colon + 1);
    const scale = Number(tail);
    if (tail.trim() !== "" && Number.isFinite(scale)) return { path: spec.slice(0, colon), scale };
  }
  if (spec === "") throw new Error("empty adapter path");
  return { path: spec, scale: 1 };
}

/** The key under which batched requests share an adapter: same file and same scale. */
export function adapterKey(ref: AdapterRef): string {
  return `${ref.path}:${ref.scale}`;
}

/** The adapter's rank: PEFT adapter_config.json `r`, or the row count of a GGUF's first lora_a. */
export function adapterRank(path: string): number {
  if (!existsSync(path)) throw new Error(`adapter not found: ${path}`);
  if (statSync(path).isDirectory()) {
    const configPath = join(path, "adapter_config.json");
    if (!existsSync(configPath)) throw new Error(`${path}: not a PEFT adapter directory (no adapter_config.json)`);
    let r: unknown;
    try {
      r = (JSON.parse(readFileSync(configPath, "utf8")) as { r?: unknown }).r;
    } catch (e) {
      throw new Error(`${configPath}: ${(e as Error).message}`);
    }
    if (typeof r !== "number" || !Number.isInteger(r) || r < 1) throw new Error(`${configPath}: 'r' must be a positive integer`);
    return r;
  }
  let a;
  try {
    a = readGGUF(path).tensors.find((t) => t.name.endsWith(".lora_a"));
  } catch (e) {
    throw new Error(`${path}: not a readable GGUF adapter: ${(e as Error).message}`);
  }
  if (!a || a.shape.length < 2) throw new Error(`${path}: not a LoRA adapter (no .lora_a tensor)`);
  return a.shape[1];
}
