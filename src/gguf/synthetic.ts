// Seeded synthetic llama-family models (llama, qwen2, qwen3, phi3 or gemma3 architecture) in any
// supported weight type, loadable by llama.cpp. Weights are random but scaled so that activations stay O(1)
// and the output distribution is peaked (logits far from ties), which makes token-level
// comparisons against llama.cpp meaningful. Each tensor has its own PRNG stream derived from
// (seed, tensor name), so a tensor's float values do not depend on the weight type or on
// which other tensors exist: an F32 and a Q4_0 file of the same seed hold the same weights.
import { Prng } from "./prng.js";
import { FILE_TYPE, isWeightMix, tensorType, type WeightMix } from "./presets.js";
import { GGMLType, quantize } from "./quantize.js";
import { bpeVocab, spmVocab, TokenType, Vocab } from "./vocab.js";
import { GGUFValueType, GGUFWriter, meta } from "./writer.js";

export type SyntheticArch = "llama" | "qwen2" | "qwen3" | "phi3" | "gemma3";
export const SYNTHETIC_ARCHS: readonly SyntheticArch[] = ["llama", "qwen2", "qwen3", "phi3", "gemma3"];
/** A uniform weight type or a preset mix (presets.ts). */
export type SyntheticType = WeightMix;
export type SyntheticVocab = "spm" | "bpe";

export interface SyntheticModelOptions {
  arch: SyntheticArch;
  type: SyntheticType;
  out: string;
  nEmbd?: number; // default 64
  nLayer?: number; // default 2
  nHead?: number; // default 4
  nHeadKv?: number; // default 2
  nFf?: number; // default 128
  nCtx?: number; // default 2048
  headDim?: number; // default nEmbd / nHead (qwen3 and gemma3 may differ: attention.key_length)
  nRot?: number; // rotated dimensions per head (phi3's partial rotary), default headDim
  slidingWindow?: number; // gemma3: attention.sliding_window (default 8, so short tests see it)
  swaPattern?: number; // gemma3: every swaPattern-th layer is global (default 2)
  qkvBias?: boolean; // phi3: an attn_qkv.bias (llama.cpp reads one when present; Phi-3 itself has none)
  vocab?: SyntheticVocab; // default: bpe for qwen2 and qwen3, spm for the others
  tied?: boolean; // no output.weight: the output reuses token_embd
  seed?: number; // default 1
}

export interface SyntheticModelInfo {
  path: string;
  bytes: number;
  nParams: number;
  nVocab: number;
  tensorTypes: Record<string, GGMLType>; // per tensor, after fallbacks
}

/** The vocabulary of a synthetic model. */
export function loadVocab(kind: SyntheticVocab, arch: SyntheticArch): Vocab {
  // Gemma's SentencePiece vocabulary adds no leading space (convert_hf_to_gguf.py's Gemma3Model).
  if (kind === "spm" && arch === "gemma3") return { ...spmVocab(), addSpacePrefix: false };
  if (kind === "spm" && arch === "phi3") return withPhi3Specials(spmVocab());
  if (kind === "spm") return spmVocab();
  return bpeVocab(arch === "qwen2" || arch === "qwen3" ? "qwen2" : "llama-bpe");
}

/** Phi-3's chat tokens (control tokens, as its GGUF has them; llama.cpp drops the whitespace after
 *  them when general.name says phi3, and then needs <|endoftext|> in the vocabulary). */
function withPhi3Specials(v: Vocab): Vocab {
  const extra = ["<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>"];
  return {
    ...v,
    tokens: [...v.tokens, ...extra],
    types: [...v.types, ...extra.map(() => TokenType.control)],
    scores: [...(v.scores ?? []), ...extra.map(() => 0)],
  };
}

function usesBpe(arch: SyntheticArch): boolean {
  return arch === "qwen2" || arch === "qwen3";
}

// Residual branches (attention output, FFN down) get gain 2 so that they outweigh the token's own
// embedding in the residual stream; in tied models that embedding otherwise tends to win the
// argmax (the model repeats its input). Tied random models still repeat more than untied ones.
const BRANCH_GAIN = 2;

interface TensorPlan {
  name: string;
  shape: number[]; // ggml order: [n_in, n_out] for matrices
  std: number;
  mean: number;
}

type PlanOptions = Required<Omit<SyntheticModelOptions, "out" | "vocab">>;

/** The tensors of the model and how each is initialised. */
function plan(o: PlanOptions, nVocab: number): TensorPlan[] {
  const qDim = o.headDim * o.nHead;
  const nKv = o.headDim * o.nHeadKv;
  const mat = (name: string, nIn: number, nOut: number, gain: number): TensorPlan =>
    ({ name, shape: [nIn, nOut], std: gain / Math.sqrt(nIn), mean: 0 });
  const norm = (name: string, n: number, mean = 1): TensorPlan => ({ name, shape: [n], std: 0.05 * mean, mean });
  const bias = (name: string, n: number): TensorPlan => ({ name, shape: [n], std: 0.1, mean: 0 });
  // Gemma scales the embedding by sqrt(n_embd) (elements of RMS 4 in the residual stream) and
  // norms each branch's output (post norms): weights of 4 keep the branches level with it.

  // Logits have a standard deviation of about 4 (the final norm gives unit-RMS input), so the
  // top token stands clear of the rest. Tied models reuse the embedding, hence the same scale.
  const out: TensorPlan[] = [mat("token_embd.weight", o.nEmbd, nVocab, 4), norm("output_norm.weight", o.nEmbd)];
  if (!o.tied) out.push(mat("output.weight", o.nEmbd, nVocab, 4));
  for (let i = 0; i < o.nLayer; i++) {
    const b = `blk.${i}`;
    out.push(norm(`${b}.attn_norm.weight`, o.nEmbd));
    if (o.arch === "phi3") {
      out.push(mat(`${b}.attn_qkv.weight`, o.nEmbd, qDim + 2 * nKv, 1)); // rows: q, then k, then v
      if (o.qkvBias) out.push(bias(`${b}.attn_qkv.bias`, qDim + 2 * nKv));
    } else {
      out.push(mat(`${b}.attn_q.weight`, o.nEmbd, qDim, 1));
      out.push(mat(`${b}.attn_k.weight`, o.nEmbd, nKv, 1));
      out.push(mat(`${b}.attn_v.weight`, o.nEmbd, nKv, 1));
    }
    if (o.arch === "qwen2") {
      out.push(bias(`${b}.attn_q.bias`, qDim));
      out.push(bias(`${b}.attn_k.bias`, nKv));
      out.push(bias(`${b}.attn_v.bias`, nKv));
    }
    if (o.arch === "qwen3" || o.arch === "gemma3") {
      out.push(norm(`${b}.attn_q_norm.weight`, o.headDim));
      out.push(norm(`${b}.attn_k_norm.weight`, o.headDim));
    }
    out.push(mat(`${b}.attn_output.weight`, qDim, o.nEmbd, BRANCH_GAIN));
    if (o.arch === "gemma3") out.push(norm(`${b}.post_attention_norm.weight`, o.nEmbd, 4));
    out.push(norm(`${b}.ffn_norm.weight`, o.nEmbd));
    if (o.arch === "phi3") {
      out.push(mat(`${b}.ffn_up.weight`, o.nEmbd, 2 * o.nFf, 1)); // rows: gate, then up
    } else {
      out.push(mat(`${b}.ffn_gate.weight`, o.nEmbd, o.nFf, 1));
      out.push(mat(`${b}.ffn_up.weight`, o.nEmbd, o.nFf, 1));
    }
    out.push(mat(`${b}.ffn_down.weight`, o.nFf, o.nEmbd, BRANCH_GAIN));
    if (o.arch === "gemma3") out.push(norm(`${b}.post_ffw_norm.weight`, o.nEmbd, 4));
  }
  return out;
}

/** FNV-1a of the name mixed with the seed: one independent PRNG stream per tensor. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The float values of one tensor of a synthetic model (before encoding). */
function syntheticTensorValues(seed: number, name: string, n: number, std: number, mean: number): Float32Array {
  return new Prng(tensorSeed(seed, name)).normals(n, std, mean);
}

export async function writeSyntheticModel(opts: SyntheticModelOptions): Promise<SyntheticModelInfo> {
  const o = {
    arch: opts.arch,
    type: opts.type,
    nEmbd: opts.nEmbd ?? 64,
    nLayer: opts.nLayer ?? 2,
    nHead: opts.nHead ?? 4,
    nHeadKv: opts.nHeadKv ?? 2,
    nFf: opts.nFf ?? 128,
    nCtx: opts.nCtx ?? 2048,
    tied: opts.tied ?? false,
    seed: opts.seed ?? 1,
    headDim: opts.headDim ?? Math.floor((opts.nEmbd ?? 64) / (opts.nHead ?? 4)),
    nRot: opts.nRot ?? opts.headDim ?? Math.floor((opts.nEmbd ?? 64) / (opts.nHead ?? 4)),
    slidingWindow: opts.slidingWindow ?? 8,
    swaPattern: opts.swaPattern ?? 2,
    qkvBias: opts.qkvBias ?? false,
  };
  if (!SYNTHETIC_ARCHS.includes(o.arch)) throw new Error(`unknown architecture '${o.arch}'`);
  if (!isWeightMix(o.type)) throw new Error(`unknown weight type '${o.type}'`);
  for (const [k, v] of Object.entries(o))
    if (typeof v === "number" && !(Number.isInteger(v) && v > 0) && k !== "seed") throw new Error(`${k} must be a positive integer`);
  if (opts.headDim === undefined && o.nEmbd % o.nHead !== 0) throw new Error(`n_embd ${o.nEmbd} is not a multiple of n_head ${o.nHead}`);
  if (o.nHead % o.nHeadKv !== 0) throw new Error(`n_head ${o.nHead} is not a multiple of n_head_kv ${o.nHeadKv}`);
  const headDim = o.headDim;
  if (headDim % 2 !== 0 || o.nRot % 2 !== 0 || o.nRot > headDim) throw new Error(`head dimension ${headDim} and rotated dimensions ${o.nRot} must be even, nRot <= headDim`);
  if (headDim * o.nHead !== o.nEmbd && (o.arch === "llama" || o.arch === "qwen2" || o.arch === "phi3"))
    throw new Error(`${o.arch}: headDim x nHead must equal nEmbd`);

  const vocab = loadVocab(opts.vocab ?? (usesBpe(o.arch) ? "bpe" : "spm"), o.arch);
  const nVocab = vocab.tokens.length;
  const w = new GGUFWriter();
  const a = o.arch;
  w.set("general.architecture", meta.str(a));
  w.set("general.name", meta.str(`edgelora synthetic ${a} ${o.type} seed ${o.seed}`));
  w.set("general.file_type", meta.u32(FILE_TYPE[o.type]));
  w.set("general.quantization_version", meta.u32(2));
  w.set(`${a}.context_length`, meta.u32(o.nCtx));
  w.set(`${a}.embedding_length`, meta.u32(o.nEmbd));
  w.set(`${a}.block_count`, meta.u32(o.nLayer));
  w.set(`${a}.feed_forward_length`, meta.u32(o.nFf));
  w.set(`${a}.attention.head_count`, meta.u32(o.nHead));
  w.set(`${a}.attention.head_count_kv`, meta.u32(o.nHeadKv));
  w.set(`${a}.rope.dimension_count`, meta.u32(o.nRot));
  if (headDim * o.nHead !== o.nEmbd || a === "gemma3") {
    w.set(`${a}.attention.key_length`, meta.u32(headDim));
    w.set(`${a}.attention.value_length`, meta.u32(headDim));
  }
  const million = a === "qwen2" || a === "qwen3" || a === "gemma3";
  w.set(`${a}.rope.freq_base`, meta.f32(million ? 1000000 : 10000));
  w.set(`${a}.attention.layer_norm_rms_epsilon`, meta.f32(million ? 1e-6 : 1e-5));
  if (a === "gemma3") {
    // Local layers: a window of slidingWindow positions and RoPE base 10000 (llama.cpp's
    // default for rope.freq_base_swa); every swaPattern-th layer is global.
    w.set(`${a}.attention.sliding_window`, meta.u32(o.slidingWindow));
    w.set(`${a}.attention.sliding_window_pattern`, meta.u32(o.swaPattern));
  }
  if (a === "phi3") {
    // As Phi-3-mini's GGUF: llama.cpp ignores phi3's sliding window (it runs full attention).
    w.set(`${a}.attention.sliding_window`, meta.u32(2047));
    w.set(`${a}.rope.scaling.original_context_length`, meta.u32(4096));
  }
  w.set(`${a}.vocab_size`, meta.u32(nVocab));

  setTokenizerMeta(w, vocab);

  const tensorTypes: Record<string, GGMLType> = {};
  let nParams = 0;
  for (const t of plan(o, nVocab)) {
    const type = tensorType(o.type, t.name, t.shape, { nLayer: o.nLayer, nGqa: o.nHead / o.nHeadKv, tied: o.tied });
    const n = t.shape.reduce((x, y) => x * y, 1);
    tensorTypes[t.name] = type;
    nParams += n;
    w.addTensor(t.name, t.shape, type, () => quantize(type, syntheticTensorValues(o.seed, t.name, n, t.std, t.mean)));
  }
  const bytes = await w.write(opts.out);
  return { path: opts.out, bytes, nParams, nVocab, tensorTypes };
}

/** The tokenizer.ggml.* metadata of `vocab` (what llama.cpp and the engine read a tokenizer from). */
export function setTokenizerMeta(w: GGUFWriter, vocab: Vocab): void {
  w.set("tokenizer.ggml.model", meta.str(vocab.model));
  if (vocab.pre) w.set("tokenizer.ggml.pre", meta.str(vocab.pre));
  w.set("tokenizer.ggml.tokens", meta.array(GGUFValueType.STRING, vocab.tokens));
  if (vocab.scores) w.set("tokenizer.ggml.scores", meta.array(GGUFValueType.FLOAT32, vocab.scores));
  w.set("tokenizer.ggml.token_type", meta.array(GGUFValueType.INT32, vocab.types));
  if (vocab.merges) w.set("tokenizer.ggml.merges", meta.array(GGUFValueType.STRING, vocab.merges));
  w.set("tokenizer.ggml.bos_token_id", meta.u32(vocab.bos));
  w.set("tokenizer.ggml.eos_token_id", meta.u32(vocab.eos));
  if (vocab.unk !== undefined) w.set("tokenizer.ggml.unknown_token_id", meta.u32(vocab.unk));
  w.set("tokenizer.ggml.add_bos_token", meta.bool(vocab.addBos));
  w.set("tokenizer.ggml.add_eos_token", meta.bool(vocab.addEos));
  if (vocab.addSpacePrefix !== undefined) w.set("tokenizer.ggml.add_space_prefix", meta.bool(vocab.addSpacePrefix));
}
