// Option parsers shared by the CLI's commands: a bad value becomes commander's usage error.
import { existsSync } from "node:fs";
import { InvalidArgumentError, Option } from "commander";

import { parseAdapterRef, type AdapterRef } from "../batch/adapter-file.js";
import { LORA_POOL_TYPES } from "../engine/types.js";

export function intArg(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return n;
  };
}

export function floatArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be a number in [${min}, ${max}]`);
    return n;
  };
}

/** --lora PATH[:SCALE] */
export function adapterArg(v: string): AdapterRef {
  try {
    return parseAdapterRef(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** --lora-pool f16|q8|q4 (engine/types.ts LoraPoolType) */
export function loraPoolOption(): Option {
  return new Option("--lora-pool <type>",
    "how LoRA adapters are stored: f16 (exact), q8 (8-bit: less memory, faster with many adapters) or q4 (4-bit: least memory, fastest, coarsest)")
    .choices([...LORA_POOL_TYPES])
    .default("f16");
}

export function checkModelPath(path: string): void {
  if (!existsSync(path)) throw new Error(`model file not found: ${path}`);
}
