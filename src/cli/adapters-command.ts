// `edgelora adapters convert`: PEFT directory -> llama.cpp LoRA GGUF (see peft-to-gguf.ts).
import type { Command } from "commander";

import { readModelShapes } from "../lora/synthetic.js";
import { checkModelPath, intArg } from "./args.js";
import { convertPeftToGguf } from "./peft-to-gguf.js";

interface ConvertOptions {
  out: string;
  model?: string;
  arch?: string;
  nHead?: number;
  nHeadKv?: number;
}

async function convert(dir: string, o: ConvertOptions): Promise<void> {
  if ((o.model === undefined) === (o.arch === undefined)) throw new Error("give the base model's architecture: --model PATH or --arch NAME");
  let arch = o.arch;
  let shapes;
  if (o.model !== undefined) {
    checkModelPath(o.model);
    // The shapes check catches an adapter made for another model before llama.cpp would.
    shapes = readModelShapes(o.model);
    arch = shapes.arch;
  }
  if (o.nHeadKv !== undefined && o.nHead === undefined) throw new Error("--n-head-kv needs --n-head");
  const heads = o.nHead !== undefined ? { nHead: o.nHead, nHeadKv: o.nHeadKv ?? o.nHead } : undefined;
  const a = await convertPeftToGguf(dir, o.out, arch!, shapes, heads);
  const modules = [...new Set(a.pairs.map((p) => p.module))].join(",");
  process.stderr.write(
    `wrote ${o.out}: ${arch} LoRA, rank ${a.rank}, alpha ${a.alpha}${a.rslora ? " (rsLoRA)" : ""}, ${a.pairs.length} pairs (${modules})\n`,
  );
}

export function registerAdaptersCommand(program: Command): void {
  const adapters = program.command("adapters").description("LoRA adapter files");
  adapters
    .command("convert <peft-dir>")
    .description("write a PEFT LoRA directory as a llama.cpp LoRA GGUF (F32)")
    .requiredOption("--out <file>", "GGUF file to write")
    .option("--model <path>", "base model GGUF (gives the architecture and checks the shapes)")
    .option("--arch <name>", "base model architecture (llama, qwen2, qwen3, phi3, gemma3) when no --model is given")
    .option("--n-head <n>", "with --arch llama: the model's attention heads (q_proj rows are permuted by them)", intArg(1))
    .option("--n-head-kv <n>", "with --arch llama: the model's KV heads (k_proj; default: --n-head)", intArg(1))
    .action((dir: string, o: ConvertOptions) => convert(dir, o));
}
