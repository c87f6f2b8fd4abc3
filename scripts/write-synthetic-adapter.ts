// Writes a seeded synthetic LoRA adapter for a base model. Examples:
//   node dist/scripts/write-synthetic-adapter.js --model /tmp/tiny.gguf --rank 8 --out /tmp/a.gguf
//   node dist/scripts/write-synthetic-adapter.js --model m.gguf --rank 16 --format peft --dtype bf16 \
//     --modules q,v --out /tmp/adapter-dir
import { Command, InvalidArgumentError } from "commander";

import { LORA_MODULES, LoraModule } from "../src/lora/modules.js";
import { AdapterDtype, writeSyntheticAdapter } from "../src/lora/synthetic.js";

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function number(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

function oneOf<T extends string>(...allowed: T[]) {
  return (v: string): T => {
    if (!(allowed as string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${allowed.join(", ")}`);
    return v as T;
  };
}

function moduleList(v: string): LoraModule[] {
  const list = v.split(",").map((s) => s.trim());
  for (const m of list)
    if (!(LORA_MODULES as readonly string[]).includes(m))
      throw new InvalidArgumentError(`unknown module '${m}' (${LORA_MODULES.join(", ")})`);
  return list as LoraModule[];
}

const program = new Command()
  .name("write-synthetic-adapter")
  .description("Write a seeded synthetic LoRA adapter (llama.cpp GGUF or PEFT directory) for a base model")
  .requiredOption("--model <gguf>", "base model GGUF (shapes and architecture are read from it)")
  .requiredOption("--out <path>", "output GGUF file, or PEFT directory")
  .requiredOption("--rank <n>", "LoRA rank", positive)
  .option("--alpha <x>", "LoRA alpha (default: rank)", number)
  .option("--modules <list>", `comma-separated subset of ${LORA_MODULES.join(",")}`, moduleList)
  .option("--format <fmt>", "gguf | peft", oneOf("gguf", "peft"), "gguf")
  .option("--dtype <t>", "f32 | f16 | q8_0 (gguf) or f32 | f16 | bf16 (peft)", oneOf<AdapterDtype>("f32", "f16", "bf16", "q8_0"), "f32")
  .option("--seed <n>", "PRNG seed", (v) => Number.parseInt(v, 10), 1)
  .option("--strength <x>", "typical change of an adapted projection's output", number, 0.5)
  .option("--rslora", "PEFT rsLoRA scaling (alpha / sqrt(rank))", false)
  .parse();

const o = program.opts<{
  model: string; out: string; rank: number; alpha?: number; modules?: LoraModule[]; format: "gguf" | "peft";
  dtype: AdapterDtype; seed: number; strength: number; rslora: boolean;
}>();
const written = await writeSyntheticAdapter({
  model: o.model, out: o.out, rank: o.rank, alpha: o.alpha, modules: o.modules, format: o.format, dtype: o.dtype,
  seed: o.seed, strength: o.strength, useRslora: o.rslora,
});
process.stdout.write(
  `${written.path}: ${o.format} rank ${o.rank}, ${written.pairs.length} adapted projections of ${written.shapes.arch} ` +
    `(${written.shapes.nLayer} layers), factor ${written.factor}\n`,
);
