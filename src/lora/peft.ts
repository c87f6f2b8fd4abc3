// PEFT (Hugging Face) LoRA directory writer: adapter_config.json + adapter_model.safetensors
// with tensors base_model.model.model.layers.N.{self_attn,mlp}.<proj>.lora_{A,B}.weight,
// lora_A of shape [rank, nIn] and lora_B of shape [nOut, rank], in Hugging Face layout: for a
// llama model, q/k lora_B rows in rotate-half order (rope-order.ts).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { GGMLType, quantize } from "../gguf/quantize.js";
import { permutedHeads, ggufRowsToHf, type RopeHeads } from "./rope-order.js";
import { ALL_LORA_MODULES, checkPair, LoraPair, PEFT_MODULE_NAME, peftModuleKey } from "./modules.js";
import { SafetensorsDtype, SafetensorsTensor, writeSafetensors } from "./safetensors.js";

export interface PeftDirOptions {
  alpha: number;
  pairs: LoraPair[]; // one rank for all; rows in the model's (GGUF) order
  /** The base model: for a llama model, q/k lora_B rows are written in Hugging Face order, as a
   *  PEFT adapter trained on it has them. Absent: every B is written as given. */
  layout?: RopeHeads & { arch: string };
  dtype?: SafetensorsDtype; // default F32
  useRslora?: boolean;
  baseModel?: string; // base_model_name_or_path
  /** Extra or overriding adapter_config.json keys (e.g. to write refusal test cases). */
  config?: Record<string, unknown>;
}

const GGML_OF: Record<SafetensorsDtype, GGMLType> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

/** Writes dir/adapter_config.json and dir/adapter_model.safetensors (creating dir). */
export async function writePeftDir(dir: string, o: PeftDirOptions): Promise<void> {
  if (o.pairs.length === 0) throw new Error("a PEFT adapter needs at least one LoRA pair");
  const rank = o.pairs[0].rank;
  const dtype = o.dtype ?? "F32";
  const tensors: SafetensorsTensor[] = [];
  for (const p of o.pairs) {
    checkPair(p);
    if (p.rank !== rank) throw new Error(`layer ${p.layer} ${p.module}: rank ${p.rank}, but PEFT needs one rank (${rank})`);
    const base = `base_model.model.${peftModuleKey(p.layer, p.module)}`;
    const enc = (x: Float32Array) => quantize(GGML_OF[dtype], x);
    tensors.push({ name: `${base}.lora_A.weight`, dtype, shape: [rank, p.nIn], data: enc(p.a) });
    const heads = o.layout ? permutedHeads(o.layout.arch, p.module, o.layout) : 0;
    const b = heads > 0 ? ggufRowsToHf(p.b, p.nOut, rank, heads) : p.b;
    tensors.push({ name: `${base}.lora_B.weight`, dtype, shape: [p.nOut, rank], data: enc(b) });
  }
  const targets = ALL_LORA_MODULES.filter((m) => o.pairs.some((p) => p.module === m)).map((m) => PEFT_MODULE_NAME[m]);
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: o.baseModel ?? null,
    r: rank,
    lora_alpha: o.alpha,
    lora_dropout: 0,
    target_modules: targets,
    use_rslora: o.useRslora ?? false,
    fan_in_fan_out: false,
    bias: "none",
    modules_to_save: null,
    inference_mode: true,
    ...o.config,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
  await writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
}
