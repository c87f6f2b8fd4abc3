// An independent implementation of convert_lora_to_gguf.py's rules, for the oracle tests (not the
// product's converter, src/cli/peft-to-gguf.ts): PEFT lora_A [r, n_in] becomes <W>.lora_a and
// lora_B [n_out, r] <W>.lora_b with the same row-major data, written as F32 (the script's default
// --outtype); adapter.lora.alpha = lora_alpha as given; and, for a llama base model, the weights'
// own transformation applied to the LoRA pair: convert_hf_to_gguf.py's LlamaModel.permute of
// q_proj (n_head) and k_proj (n_head_kv), which reshapes W [n_out, n_in] to
// [n_head, 2, n_out/n_head/2, n_in], swaps axes 1 and 2 and reshapes back. On a LoRA pair the
// script's LoraTorchTensor applies that to B's rows only.
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { bf16ToFp32, fp16ToFp32, GGMLType } from "../../src/gguf/quantize.js";
import { GGUFWriter, meta } from "../../src/gguf/writer.js";

/** What the script reads from the base model's config.json. */
export interface ReferenceBase {
  arch: string; // the GGUF architecture the script's model class writes ("llama", "qwen2")
  numAttentionHeads: number;
  numKeyValueHeads: number;
}

const GGUF_NAME: Record<string, string> = {
  "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
  // phi3's fused modules (gguf-py's tensor_mapping: ATTN_QKV, FFN_UP)
  "self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up",
};

function readTensors(path: string): Map<string, { shape: number[]; values: Float32Array }> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const count = t.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    const at = base + t.data_offsets[0];
    for (let i = 0; i < count; i++) {
      if (t.dtype === "F32") values[i] = bytes.readFloatLE(at + 4 * i);
      else if (t.dtype === "F16") values[i] = fp16ToFp32(bytes.readUInt16LE(at + 2 * i));
      else if (t.dtype === "BF16") values[i] = bf16ToFp32(bytes.readUInt16LE(at + 2 * i));
      else throw new Error(`reference converter: dtype ${t.dtype}`);
    }
    out.set(name, { shape: t.shape, values });
  }
  return out;
}

/** LlamaModel.permute on a [rows, cols] matrix: view as [nHead, 2, rows/nHead/2, cols], swap
 *  axes 1 and 2 (giving [nHead, rows/nHead/2, 2, cols]), read out row-major. */
function llamaPermute(x: Float32Array, rows: number, cols: number, nHead: number, nHeadKv: number): Float32Array {
  const h = nHead !== nHeadKv ? nHeadKv : nHead;
  const half = rows / h / 2;
  const out = new Float32Array(x.length);
  for (let a = 0; a < h; a++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const dst = ((a * half + i) * 2 + j) * cols; // out[a][i][j]
        const src = ((a * 2 + j) * half + i) * cols; // x[a][j][i]
        out.set(x.subarray(src, src + cols), dst);
      }
  return out;
}

/** Converts PEFT directory `dir` to a llama.cpp LoRA GGUF at `out`. */
export async function referenceConvertLora(dir: string, out: string, base: ReferenceBase): Promise<void> {
  const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as { lora_alpha: number };
  const tensors = readTensors(join(dir, "adapter_model.safetensors"));
  const w = new GGUFWriter();
  w.set("general.architecture", meta.str(base.arch));
  w.set("general.type", meta.str("adapter"));
  w.set("adapter.type", meta.str("lora"));
  w.set("adapter.lora.alpha", meta.f32(config.lora_alpha));
  for (const [name, t] of [...tensors].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const m = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.(?:[qkvo]|qkv)_proj|mlp\.(?:gate|up|down|gate_up)_proj)\.lora_([AB])\.weight$/.exec(name);
    if (!m) throw new Error(`reference converter: unexpected tensor ${name}`);
    const [rows, cols] = t.shape;
    let values = t.values;
    if (m[3] === "B" && base.arch === "llama") {
      if (m[2] === "self_attn.q_proj") values = llamaPermute(values, rows, cols, base.numAttentionHeads, base.numAttentionHeads);
      if (m[2] === "self_attn.k_proj") values = llamaPermute(values, rows, cols, base.numAttentionHeads, base.numKeyValueHeads);
    }
    const data = new Uint8Array(values.buffer.slice(0));
    w.addTensor(`blk.${m[1]}.${GGUF_NAME[m[2]]}.weight.lora_${m[3].toLowerCase()}`, [cols, rows], GGMLType.F32, () => data);
  }
  await w.write(out);
}
