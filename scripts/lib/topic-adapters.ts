// Adapters that genuinely differ, for bench:router: each shifts the model's next-token
// distribution toward one topic's words, whatever the input. In the last layer, rank r:
//   gate and up: A = r fixed random unit rows a_k, B puts +beta * (a_k . x) into FFN channel f_k
//   and -beta * (a_k . x) into channel g_k; silu(z) z = z^2 sigmoid(z), so channels f_k and g_k
//   together give about (beta a_k . x)^2 > 0 for any input;
//   down: A sums those channels, B adds gamma * d to the residual stream per unit, where d is
//   the direction that raises the logits of the topic's tokens: (mean of their output rows -
//   mean of every topic's token rows) * output_norm, normalized.
// So adapter i adds a positive multiple of d_i to the last hidden state: topic i's tokens
// become likelier (by how much: gamma, calibrated by the caller).
import { Prng } from "../../src/gguf/prng.js";
import { dequantize, GGMLType } from "../../src/gguf/quantize.js";
import { metaValue, readGGUF, readTensorBytes } from "../../src/gguf/reader.js";
import { writeLoraGguf } from "../../src/lora/gguf-adapter.js";
import type { LoraPair } from "../../src/lora/modules.js";

export interface TopicDirectionModel {
  arch: string;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nVocab: number;
  output: Float32Array; // nVocab rows of nEmbd
  outputNorm: Float32Array;
}

export function readTopicModel(path: string): TopicDirectionModel {
  const info = readGGUF(path);
  const arch = String(metaValue(info, "general.architecture"));
  const tensor = (name: string) => info.tensors.find((t) => t.name === name);
  const f32 = (name: string) => {
    const t = tensor(name)!;
    return dequantize(t.type as GGMLType, readTensorBytes(path, info, t), t.shape.reduce((a, b) => a * b, 1));
  };
  const out = tensor("output.weight") ? "output.weight" : "token_embd.weight";
  const [nEmbd, nVocab] = tensor(out)!.shape;
  return {
    arch,
    nLayer: Number(metaValue(info, `${arch}.block_count`)),
    nEmbd,
    nFf: tensor("blk.0.ffn_gate.weight")!.shape[1],
    nVocab,
    output: f32(out),
    outputNorm: f32("output_norm.weight"),
  };
}

/** The unit direction of the last hidden state that raises the logits of `tokens` against those
 *  of `reference` (every topic's tokens: so that adapters differ in which topic they favour,
 *  not in how much they favour topic words in general). */
export function topicDirection(m: TopicDirectionModel, tokens: number[], reference: number[]): Float32Array {
  const d = new Float64Array(m.nEmbd);
  for (const t of reference) for (let i = 0; i < m.nEmbd; i++) d[i] -= m.output[t * m.nEmbd + i] / reference.length;
  for (const t of tokens) for (let i = 0; i < m.nEmbd; i++) d[i] += m.output[t * m.nEmbd + i] / tokens.length;
  for (let i = 0; i < m.nEmbd; i++) d[i] *= m.outputNorm[i];
  const norm = Math.hypot(...d);
  return Float32Array.from(d, (x) => x / norm);
}

export interface TopicAdapterOptions {
  rank: number;
  beta: number;
  gamma: number;
  seed: number; // the a_k and channels (shared by every topic adapter of a set)
}

export async function writeTopicAdapter(out: string, m: TopicDirectionModel, direction: Float32Array, o: TopicAdapterOptions): Promise<void> {
  const r = o.rank, E = m.nEmbd, F = m.nFf, layer = m.nLayer - 1;
  const rng = new Prng(o.seed);
  const a = rng.normals(r * E, 1);
  for (let k = 0; k < r; k++) {
    const row = a.subarray(k * E, (k + 1) * E);
    const n = Math.hypot(...row);
    for (let i = 0; i < E; i++) row[i] /= n;
  }
  // 2r distinct FFN channels: f_k = channels[2k], g_k = channels[2k + 1].
  const channels: number[] = [];
  while (channels.length < 2 * r) {
    const c = Math.floor(rng.uniform() * F);
    if (!channels.includes(c)) channels.push(c);
  }
  const bIn = new Float32Array(F * r);
  for (let k = 0; k < r; k++) {
    bIn[channels[2 * k] * r + k] = o.beta;
    bIn[channels[2 * k + 1] * r + k] = -o.beta;
  }
  const aDown = new Float32Array(r * F);
  for (let k = 0; k < r; k++) aDown[k * F + channels[2 * k]] = aDown[k * F + channels[2 * k + 1]] = 1;
  const bDown = new Float32Array(E * r);
  for (let i = 0; i < E; i++) for (let k = 0; k < r; k++) bDown[i * r + k] = o.gamma * direction[i];
  const pairs: LoraPair[] = [
    { layer, module: "gate", rank: r, nIn: E, nOut: F, a, b: bIn },
    { layer, module: "up", rank: r, nIn: E, nOut: F, a, b: bIn },
    { layer, module: "down", rank: r, nIn: F, nOut: E, a: aDown, b: bDown },
  ];
  await writeLoraGguf(out, { arch: m.arch, alpha: r, pairs, type: GGMLType.F32, name: "edgelora topic adapter" });
}

/** `n` disjoint sets of `size` word-piece tokens (letters only, 3+ characters), dealt round-robin
 *  from the vocabulary: each topic adapter favours one set. */
export function tokenSets(nVocab: number, piece: (id: number) => string, n: number, size: number): number[][] {
  const words: number[] = [];
  for (let id = 0; id < nVocab; id++) if (/^\s?[A-Za-z]{3,}$/.test(piece(id))) words.push(id);
  if (words.length < n * size) throw new Error(`the vocabulary has ${words.length} word pieces; ${n * size} needed`);
  return Array.from({ length: n }, (_, i) => Array.from({ length: size }, (_, j) => words[j * n + i]));
}
