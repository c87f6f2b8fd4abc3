// Hugging Face keeps the q_proj / k_proj output rows of a llama model in rotate-half RoPE order
// (per head: the first halves of all rotation pairs, then the second halves); a llama GGUF holds
// them interleaved, because convert_hf_to_gguf.py permutes those weights (n_head for q, n_head_kv
// for k). A PEFT adapter is in Hugging Face layout, so lora_B of q_proj / k_proj (whose rows are
// the weight's output rows) is permuted the same way, as convert_lora_to_gguf.py does. Other
// architectures (qwen2: NeoX RoPE) keep Hugging Face order. The native PEFT loader does the same
// (native/src/lora/peft_rope_order.h).
import type { LoraModule } from "./modules.js";

/** Head counts of the base model, for the permutation. */
export interface RopeHeads {
  nHead: number;
  nHeadKv: number;
}

/** Whether PEFT q/k lora_B rows are permuted for a base model of this general.architecture. */
export function peftPermutesQk(arch: string): boolean {
  return arch === "llama";
}

/** The head count whose rows a module's B is permuted by, or 0 when it is not permuted. */
export function permutedHeads(arch: string, module: LoraModule, heads: RopeHeads): number {
  if (!peftPermutesQk(arch) || (module !== "q" && module !== "k")) return 0;
  return module === "q" ? heads.nHead : heads.nHeadKv;
}

function checkHeads(nOut: number, nHead: number): number {
  if (!(Number.isInteger(nHead) && nHead > 0) || nOut % (2 * nHead) !== 0)
    throw new Error(`${nOut} rows cannot be split into ${nHead} heads of RoPE pairs (adapter for another base model?)`);
  return nOut / nHead;
}

/** B (nOut rows of `rank`) from Hugging Face to GGUF order: in a head of d rows, row j*d/2 + i
 *  (j = 0, 1; i < d/2) becomes row 2i + j. */
export function hfRowsToGguf(b: Float32Array, nOut: number, rank: number, nHead: number): Float32Array {
  const d = checkHeads(nOut, nHead);
  const out = new Float32Array(b.length);
  for (let r = 0; r < nOut; r++) {
    const head = Math.floor(r / d), k = r % d;
    const to = head * d + 2 * (k % (d / 2)) + Math.floor(k / (d / 2));
    out.set(b.subarray(r * rank, (r + 1) * rank), to * rank);
  }
  return out;
}

/** The inverse of hfRowsToGguf (for writing a PEFT adapter from model-order values). */
export function ggufRowsToHf(b: Float32Array, nOut: number, rank: number, nHead: number): Float32Array {
  const d = checkHeads(nOut, nHead);
  const out = new Float32Array(b.length);
  for (let g = 0; g < nOut; g++) {
    const head = Math.floor(g / d), k = g % d;
    const from = head * d + (k % 2) * (d / 2) + Math.floor(k / 2);
    out.set(b.subarray(g * rank, (g + 1) * rank), from * rank);
  }
  return out;
}
