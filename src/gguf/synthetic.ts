// Seeded synthetic llama-family models (llama or qwen2 architecture) in any supported weight
// type, loadable by llama.cpp. Weights are random but scaled so that activations stay O(1)
// and the output distribution is peaked (logits far from ties), which makes token-level
// comparisons against llama.cpp meaningful. Each tensor has its own PRNG stream derived from
// (seed, tensor name), so a tensor's float values do not depend on the weight type or on
// which other tensors exist: an F32 and a Q4_0 file of the same seed hold the same weights.
import { Prng } from "./prng.js";
import { FILE_TYPE, isWeightMix, tensorType, type WeightMix } from "./presets.js";
import { GGMLType, quantize } from "./quantize.js";
import { bpeVocab, spmVocab, Vocab } from "./vocab.js";
import { GGUFValueType, GGUFWriter, meta } from "./writer.js";

export type SyntheticArch = "llama" | "qwen2";
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
  vocab?: SyntheticVocab; // default: spm for llama, bpe for qwen2
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
  if (kind === "spm") return spmVocab();
  return bpeVocab(arch === "qwen2" ? "qwen2" : "llama-bpe");
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

/** The tensors of the model and how each is initialised. */
function plan(o: Required<Omit<SyntheticModelOptions, "out" | "vocab">>, nVocab: number): TensorPlan[] {
  const headDim = o.nEmbd / o.nHead;
  const nKv = headDim * o.nHeadKv;
  const mat = (name: string, nIn: number, nOut: number, gain: number): TensorPlan =>
    ({ name, shape: [nIn, nOut], std: gain / Math.sqrt(nIn), mean: 0 });
  const norm = (name: string, n: number): TensorPlan => ({ name, shape: [n], std: 0.05, mean: 1 });
  const bias = (name: string, n: number): TensorPlan => ({ name, shape: [n], std: 0.1, mean: 0 });

  // Logits have a standard deviation of about 4 (the final norm gives unit-RMS input), so the
  // top token stands clear of the rest. Tied models reuse the embedding, hence the same scale.
  const out: TensorPlan[] = [mat("token_embd.weight", o.nEmbd, nVocab, 4), norm("output_norm.weight", o.nEmbd)];
  if (!o.tied) out.push(mat("output.weight", o.nEmbd, nVocab, 4));
  for (let i = 0; i < o.nLayer; i++) {
    const b = `blk.${i}`;
    out.push(norm(`${b}.attn_norm.weight`, o.nEmbd));
    out.push(mat(`${b}.attn_q.weight`, o.nEmbd, o.nEmbd, 1));
    out.push(mat(`${b}.attn_k.weight`, o.nEmbd, nKv, 1));
    out.push(mat(`${b}.attn_v.weight`, o.nEmbd, nKv, 1));
    if (o.arch === "qwen2") {
      out.push(bias(`${b}.attn_q.bias`, o.nEmbd));
      out.push(bias(`${b}.attn_k.bias`, nKv));
      out.push(bias(`${b}.attn_v.bias`, nKv));
    }
    out.push(mat(`${b}.attn_output.weight`, o.nEmbd, o.nEmbd, BRANCH_GAIN));
    out.push(norm(`${b}.ffn_norm.weight`, o.nEmbd));
    out.push(mat(`${b}.ffn_gate.weight`, o.nEmbd, o.nFf, 1));
    out.push(mat(`${b}.ffn_up.weight`, o.nEmbd, o.nFf, 1));
    out.push(mat(`${b}.ffn_down.weight`, o.nFf, o.nEmbd, BRANCH_GAIN));
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
  };
  if (!(o.arch in { llama: 1, qwen2: 1 })) throw new Error(`unknown architecture '${o.arch}'`);
  if (!isWeightMix(o.type)) throw new Error(`unknown weight type '${o.type}'`);
  for (const [k, v] of Object.entries(o))
    if (typeof v === "number" && !(Number.isInteger(v) && v > 0) && k !== "seed") throw new Error(`${k} must be a positive integer`);
  if (o.nEmbd % o.nHead !== 0) throw new Error(`n_embd ${o.nEmbd} is not a multiple of n_head ${o.nHead}`);
  if (o.nHead % o.nHeadKv !== 0) throw new Error(`n_head ${o.nHead} is not a multiple of n_head_kv ${o.nHeadKv}`);
  const headDim = o.nEmbd / o.nHead;
  if (headDim % 2 !== 0) throw new Error(`head dimension ${headDim} must be even for RoPE`);

  const vocab = loadVocab(opts.vocab ?? (o.arch === "qwen2" ? "bpe" : "spm"), o.arch);
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
  w.set(`${a}.rope.dimension_count`, meta.u32(headDim));
  w.set(`${a}.rope.freq_base`, meta.f32(a === "qwen2" ? 1000000 : 10000));
  w.set(`${a}.attention.layer_norm_rms_epsilon`, meta.f32(a === "qwen2" ? 1e-6 : 1e-5));
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
