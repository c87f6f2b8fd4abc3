// Per-tensor weight types of synthetic models: uniform types, and the mixes of llama.cpp's
// usual presets (Q2_K, Q3_K_M, Q4_K_M, Q5_K_M), following llama.cpp's llama_tensor_get_type
// for a dense llama-family model, then its fallback for rows that are not whole blocks.
import { GGMLType, TYPE_INFO } from "./quantize.js";

/** A uniform type: every matrix in it, unless its rows need the fallback. */
export type UniformType =
  | "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "iq4_nl" | "q3_k" | "q4_k" | "q5_k" | "q6_k";
/** A preset mix, named after llama.cpp's quantize presets. */
export type PresetMix = "q2_k" | "q3_k_m" | "q4_k_m" | "q5_k_m";
export type WeightMix = UniformType | PresetMix;

const UNIFORM: Record<UniformType, GGMLType> = {
  f32: GGMLType.F32, f16: GGMLType.F16, bf16: GGMLType.BF16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0,
  q4_1: GGMLType.Q4_1, q5_0: GGMLType.Q5_0, q5_1: GGMLType.Q5_1, iq4_nl: GGMLType.IQ4_NL, q3_k: GGMLType.Q3_K,
  q4_k: GGMLType.Q4_K, q5_k: GGMLType.Q5_K, q6_k: GGMLType.Q6_K,
};
const PRESET_BASE: Record<PresetMix, GGMLType> = {
  q2_k: GGMLType.Q2_K, q3_k_m: GGMLType.Q3_K, q4_k_m: GGMLType.Q4_K, q5_k_m: GGMLType.Q5_K,
};

/** Every uniform type and preset mix, by name. */
export const WEIGHT_MIXES = [...Object.keys(UNIFORM), ...Object.keys(PRESET_BASE)] as readonly WeightMix[];

/** llama_ftype values (general.file_type) of each mix; uniform K-quants are the "S" presets. */
export const FILE_TYPE: Record<WeightMix, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 11, q3_k_m: 12, q4_k: 14,
  q4_k_m: 15, q5_k: 16, q5_k_m: 17, q6_k: 18, iq4_nl: 25, bf16: 32,
};

export function isWeightMix(x: string): x is WeightMix {
  return x in UNIFORM || x in PRESET_BASE;
}

// llama.cpp's per-layer choice of "more bits": the first and last eighth and every third layer between.
function useMoreBits(layer: number, nLayer: number): boolean {
  const e = Math.floor(nLayer / 8);
  return layer < e || layer >= Math.floor((7 * nLayer) / 8) || (layer - e) % 3 === 2;
}

/**
 * The type a preset gives a matrix (before the fallback): the output head (or the tied
 * embedding) Q6_K; attn_v, ffn_down and attn_output as llama.cpp raises them per preset;
 * everything else the preset's base type.
 */
function presetType(mix: PresetMix, name: string, nLayer: number, nGqa: number, tied: boolean): GGMLType {
  if (name === "output.weight" || (tied && name === "token_embd.weight")) return GGMLType.Q6_K;
  const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  const module = name.replace(/^blk\.\d+\./, "");
  if (module === "attn_v.weight") {
    if (mix === "q2_k") return nGqa >= 4 ? GGMLType.Q4_K : GGMLType.Q3_K;
    if (mix === "q3_k_m") return layer < 2 ? GGMLType.Q5_K : GGMLType.Q4_K;
    if (useMoreBits(layer, nLayer)) return GGMLType.Q6_K;
  } else if (module === "ffn_down.weight") {
    if (mix === "q2_k") return GGMLType.Q3_K;
    if (mix === "q3_k_m") return layer < Math.floor(nLayer / 16) ? GGMLType.Q5_K : GGMLType.Q4_K;
    if (useMoreBits(layer, nLayer)) return GGMLType.Q6_K;
  } else if (module === "attn_output.weight") {
    if (mix === "q2_k") return GGMLType.Q3_K;
    if (mix === "q3_k_m") return GGMLType.Q4_K;
  }
  return PRESET_BASE[mix];
}

/**
 * llama.cpp's fallback for a matrix whose rows (nIn) are not whole blocks of its type: the
 * 256-blocks go to a 32-block type (Q2_K and Q3_K to IQ4_NL, as llama.cpp's quantizer did for
 * them before it switched to Q4_0; Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0), and anything
 * still not whole to F16.
 */
export function fallbackType(type: GGMLType, nIn: number): GGMLType {
  if (nIn % TYPE_INFO[type].blockSize === 0) return type;
  const next: Partial<Record<GGMLType, GGMLType>> = {
    [GGMLType.Q2_K]: GGMLType.IQ4_NL, [GGMLType.Q3_K]: GGMLType.IQ4_NL, [GGMLType.Q4_K]: GGMLType.Q5_0,
    [GGMLType.Q5_K]: GGMLType.Q5_1, [GGMLType.Q6_K]: GGMLType.Q8_0,
  };
  const t = next[type] ?? GGMLType.F16;
  return nIn % TYPE_INFO[t].blockSize === 0 ? t : GGMLType.F16;
}

/** The stored type of one tensor of a synthetic model. */
export function tensorType(
  mix: WeightMix, name: string, shape: number[], model: { nLayer: number; nGqa: number; tied: boolean },
): GGMLType {
  if (shape.length === 1) return GGMLType.F32; // norms and biases stay F32, as in llama.cpp
  const want = mix in PRESET_BASE
    ? presetType(mix as PresetMix, name, model.nLayer, model.nGqa, model.tied)
    : UNIFORM[mix as UniformType];
  // The output head of a preset whose rows are not whole super-blocks is Q8_0 in llama.cpp.
  return fallbackType(want, shape[0]);
}
