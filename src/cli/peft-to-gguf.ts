// `edgelora adapters convert`: a PEFT LoRA directory (adapter_config.json +
// adapter_model.safetensors) rewritten as a llama.cpp LoRA GGUF, so that llama.cpp (which only
// reads GGUF adapters) can serve the same adapter. Values are written as F32, exactly (F16/BF16
// widen without loss). The GGUF form has only alpha/r scaling, so an rsLoRA adapter (factor
// alpha/sqrt(r)) gets alpha' = alpha * sqrt(r), which gives the same factor alpha'/r. For a
// llama base model, lora_B of q_proj / k_proj is permuted from Hugging Face to GGUF row order
// with the model's head counts, as convert_lora_to_gguf.py does (rope-order.ts).
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { bf16ToFp32, fp16ToFp32 } from "../gguf/quantize.js";
import { writeLoraGguf } from "../lora/gguf-adapter.js";
import { ALL_LORA_MODULES, isAttentionModule, PEFT_MODULE_NAME, type LoraModule, type LoraPair } from "../lora/modules.js";
import { hfRowsToGguf, peftPermutesQk, permutedHeads, type RopeHeads } from "../lora/rope-order.js";
import type { AdapterModelShapes } from "../lora/synthetic.js";

export interface PeftAdapter {
  rank: number;
  alpha: number;
  rslora: boolean;
  pairs: LoraPair[]; // as in the file (Hugging Face row order)
}

interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

function readSafetensors(path: string): Map<string, SafeTensor> {
  const bytes = readFileSync(path);
  if (bytes.length < 8) throw new Error(`${path}: truncated (no header length)`);
  const n = Number(bytes.readBigUInt64LE(0));
  if (8 + n > bytes.length) throw new Error(`${path}: truncated (header of ${n} bytes, file of ${bytes.length})`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  } catch (e) {
    throw new Error(`${path}: bad header: ${(e as Error).message}`);
  }
  const data = bytes.subarray(8 + n);
  const out = new Map<string, SafeTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = t.data_offsets;
    if (!(begin >= 0 && begin <= end && end <= data.length)) throw new Error(`${path}: tensor '${name}' lies outside the file (truncated?)`);
    out.set(name, { dtype: t.dtype, shape: t.shape, data: data.subarray(begin, end) });
  }
  return out;
}

function toFloat32(path: string, name: string, t: SafeTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const width = { F32: 4, F16: 2, BF16: 2 }[t.dtype];
  if (width === undefined) throw new Error(`${path}: tensor '${name}' has dtype ${t.dtype} (F32, F16 or BF16 only)`);
  if (t.data.length !== n * width) throw new Error(`${path}: tensor '${name}' has ${t.data.length} bytes, its shape needs ${n * width}`);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (t.dtype === "F32") y[i] = dv.getFloat32(4 * i, true);
    else if (t.dtype === "F16") y[i] = fp16ToFp32(dv.getUint16(2 * i, true));
    else y[i] = bf16ToFp32(dv.getUint16(2 * i, true));
  }
  return y;
}

const KEY = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$/;

/** Reads a PEFT LoRA directory; refuses what a llama.cpp GGUF adapter cannot hold. */
export function readPeftAdapter(dir: string): PeftAdapter {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
  const configPath = join(dir, "adapter_config.json");
  const weightsPath = join(dir, "adapter_model.safetensors");
  if (!existsSync(configPath)) throw new Error(`${dir}: not a PEFT adapter directory (no adapter_config.json)`);
  if (!existsSync(weightsPath)) throw new Error(`${dir}: no adapter_model.safetensors`);
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(configPath, "utf8"));
  } catch (e) {
    throw new Error(`${configPath}: ${(e as Error).message}`);
  }
  if (c.peft_type !== undefined && c.peft_type !== "LORA") throw new Error(`${configPath}: peft_type is not "LORA"`);
  const rank = c.r;
  const alpha = c.lora_alpha;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank < 1) throw new Error(`${configPath}: 'r' must be a positive integer`);
  if (typeof alpha !== "number" || !(alpha > 0)) throw new Error(`${configPath}: 'lora_alpha' must be positive`);
  if (c.use_dora === true) throw new Error(`${configPath}: DoRA (use_dora) is not supported`);
  if (c.bias !== undefined && c.bias !== "none") throw new Error(`${configPath}: bias training is not supported`);
  if (Array.isArray(c.modules_to_save) && c.modules_to_save.length > 0) throw new Error(`${configPath}: modules_to_save is not supported`);

  const halves = new Map<string, { layer: number; module: LoraModule; a?: SafeTensor; b?: SafeTensor }>();
  for (const [name, t] of readSafetensors(weightsPath)) {
    const m = KEY.exec(name);
    const module = m && ALL_LORA_MODULES.find((x) => PEFT_MODULE_NAME[x] === m[3] && (m[2] === "self_attn") === isAttentionModule(x));
    if (!m || !module) throw new Error(`${weightsPath}: tensor '${name}' is not a LoRA weight of q/k/v/o/qkv/gate/up/down/gate_up_proj`);
    const key = `${m[1]}.${module}`;
    const h = halves.get(key) ?? { layer: Number(m[1]), module };
    h[m[4] === "A" ? "a" : "b"] = t;
    halves.set(key, h);
  }
  const pairs: LoraPair[] = [];
  for (const h of halves.values()) {
    const what = `layer ${h.layer} ${PEFT_MODULE_NAME[h.module]}`;
    if (!h.a || !h.b) throw new Error(`${weightsPath}: ${what} has lora_${h.a ? "A" : "B"} but no lora_${h.a ? "B" : "A"}`);
    if (h.a.shape.length !== 2 || h.b.shape.length !== 2 || h.a.shape[0] !== rank || h.b.shape[1] !== rank)
      throw new Error(`${weightsPath}: ${what}: lora_A [${h.a.shape}] / lora_B [${h.b.shape}] do not have rank r = ${rank}`);
    pairs.push({
      layer: h.layer, module: h.module, rank, nIn: h.a.shape[1], nOut: h.b.shape[0],
      a: toFloat32(weightsPath, `${what} lora_A`, h.a), b: toFloat32(weightsPath, `${what} lora_B`, h.b),
    });
  }
  if (pairs.length === 0) throw new Error(`${weightsPath}: no LoRA tensors`);
  pairs.sort((x, y) => x.layer - y.layer || ALL_LORA_MODULES.indexOf(x.module) - ALL_LORA_MODULES.indexOf(y.module));
  return { rank, alpha, rslora: c.use_rslora === true, pairs };
}

/** Throws when a pair does not fit the base model's shapes. */
export function checkAgainstModel(a: PeftAdapter, shapes: AdapterModelShapes): void {
  for (const p of a.pairs) {
    const what = `layer ${p.layer} ${PEFT_MODULE_NAME[p.module]}`;
    if (p.layer >= shapes.nLayer) throw new Error(`${what}: the model has ${shapes.nLayer} layers`);
    if (!shapes.nIn[p.module]) throw new Error(`${what}: the ${shapes.arch} model has no such projection`);
    if (p.nIn !== shapes.nIn[p.module] || p.nOut !== shapes.nOut[p.module])
      throw new Error(`${what}: adapter is ${p.nIn} -> ${p.nOut}, the model's projection is ${shapes.nIn[p.module]} -> ${shapes.nOut[p.module]}`);
  }
}

/** The pairs in the model's (GGUF) row order: q/k lora_B permuted for a llama model. */
export function toGgufOrder(a: PeftAdapter, arch: string, heads?: RopeHeads): LoraPair[] {
  const needs = peftPermutesQk(arch) && a.pairs.some((p) => p.module === "q" || p.module === "k");
  if (needs && !heads)
    throw new Error(`a ${arch} adapter's q_proj/k_proj rows are reordered by the model's head counts: give --model PATH, or --n-head N (and --n-head-kv N)`);
  if (!needs) return a.pairs;
  return a.pairs.map((p) => {
    const n = permutedHeads(arch, p.module, heads!);
    if (n === 0) return p;
    try {
      return { ...p, b: hfRowsToGguf(p.b, p.nOut, p.rank, n) };
    } catch (e) {
      throw new Error(`layer ${p.layer} ${PEFT_MODULE_NAME[p.module]} lora_B: ${(e as Error).message}`);
    }
  });
}

/** Writes `out`; returns the adapter as read. `shapes` (from the base model) checks the shapes
 *  and gives the head counts; without it, `heads` gives them (needed for llama q/k). */
export async function convertPeftToGguf(
  dir: string, out: string, arch: string, shapes?: AdapterModelShapes, heads?: RopeHeads,
): Promise<PeftAdapter> {
  const a = readPeftAdapter(dir);
  if (shapes) checkAgainstModel(a, shapes);
  const pairs = toGgufOrder(a, arch, shapes ?? heads);
  const alpha = a.rslora ? a.alpha * Math.sqrt(a.rank) : a.alpha;
  await writeLoraGguf(out, { arch, alpha, pairs, name: `converted from ${dir}` });
  return a;
}
