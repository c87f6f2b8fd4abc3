// llama.cpp LoRA adapter GGUF writer: general.type = "adapter", adapter.type = "lora",
// adapter.lora.alpha, and per adapted weight X = blk.N.<module>.weight the tensors
// X.lora_a (ggml ne = [nIn, rank]) and X.lora_b (ne = [rank, nOut]).
import { GGMLType, quantize } from "../gguf/quantize.js";
import { GGUFWriter, meta } from "../gguf/writer.js";
import { checkPair, GGUF_MODULE_NAME, LoraPair } from "./modules.js";

export interface LoraGgufOptions {
  arch: string; // must equal the base model's general.architecture
  alpha: number;
  pairs: LoraPair[];
  type?: GGMLType.F32 | GGMLType.F16 | GGMLType.Q8_0; // default F32
  name?: string; // general.name
}

/** Writes the adapter; returns the file size in bytes. */
export async function writeLoraGguf(path: string, o: LoraGgufOptions): Promise<number> {
  const type = o.type ?? GGMLType.F32;
  const w = new GGUFWriter();
  w.set("general.architecture", meta.str(o.arch));
  w.set("general.type", meta.str("adapter"));
  if (o.name) w.set("general.name", meta.str(o.name));
  w.set("adapter.type", meta.str("lora"));
  w.set("adapter.lora.alpha", meta.f32(o.alpha));
  for (const p of o.pairs) {
    checkPair(p);
    const base = `blk.${p.layer}.${GGUF_MODULE_NAME[p.module]}.weight`;
    w.addTensor(`${base}.lora_a`, [p.nIn, p.rank], type, () => quantize(type, p.a));
    w.addTensor(`${base}.lora_b`, [p.rank, p.nOut], type, () => quantize(type, p.b));
  }
  return w.write(path);
}
