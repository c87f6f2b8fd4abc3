import test, { ExecutionContext } from "ava";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Prng } from "../src/gguf/prng.js";
import {
  bf16ToFp32, byteSize, dequantize, fp16ToFp32, fp32ToBf16, fp32ToFp16, GGMLType, quantize, TYPE_INFO,
} from "../src/gguf/quantize.js";
import { GGUFInfo, metaValue, readGGUF, readTensorBytes } from "../src/gguf/reader.js";
import { SyntheticType, writeSyntheticModel } from "../src/gguf/synthetic.js";
import { GGUFValueType, GGUFWriter, meta } from "../src/gguf/writer.js";

const dir = mkdtempSync(join(tmpdir(), "edgelora-gguf-"));

// ---- writer and reader -----------------------------------------------------------

test("metadata of every type and aligned tensors round-trip", async (t) => {
  const path = join(dir, "all-types.gguf");
  const w = new GGUFWriter(64);
  w.set("v.u8", meta.u8(200)).set("v.i8", meta.i8(-5)).set("v.u16", meta.u16(60000)).set("v.i16", meta.i16(-30000));
  w.set("v.u32", meta.u32(4e9)).set("v.i32", meta.i32(-7)).set("v.f32", meta.f32(0.25)).set("v.f64", meta.f64(-1.5));
  w.set("v.u64", meta.u64(2n ** 63n + 5n)).set("v.i64", meta.i64(-(2n ** 40n))).set("v.bool", meta.bool(true));
  w.set("v.str", meta.str("héllo ▁world"));
  w.set("v.strs", meta.array(GGUFValueType.STRING, ["<s>", "", "日本"]));
  w.set("v.f32s", meta.array(GGUFValueType.FLOAT32, [0.5, -4]));
  w.set("v.nested", meta.array(GGUFValueType.ARRAY, [
    { itemType: GGUFValueType.UINT16, values: [1, 2] },
    { itemType: GGUFValueType.STRING, values: ["x"] },
  ]));
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  w.addTensor("a", [3, 2], GGMLType.F32, () => quantize(GGMLType.F32, a));
  const q = quantize(GGMLType.Q8_0, new Float32Array(64).map((_, i) => i / 10));
  // A producer may hand its bytes over in chunks.
  w.addTensor("b", [32, 2], GGMLType.Q8_0, function* () {
    yield q.subarray(0, 10);
    yield q.subarray(10);
  });
  const size = await w.write(path);
  t.is(size, readFileSync(path).length);

  const info = readGGUF(path);
  t.is(info.version, 3);
  t.is(info.alignment, 64);
  t.is(metaValue(info, "general.alignment"), 64);
  t.is(metaValue(info, "v.u8"), 200);
  t.is(metaValue(info, "v.i8"), -5);
  t.is(metaValue(info, "v.u16"), 60000);
  t.is(metaValue(info, "v.i16"), -30000);
  t.is(metaValue(info, "v.u32"), 4e9);
  t.is(metaValue(info, "v.i32"), -7);
  t.is(metaValue(info, "v.f32"), 0.25);
  t.is(metaValue(info, "v.f64"), -1.5);
  t.is(metaValue(info, "v.u64"), 2n ** 63n + 5n);
  t.is(metaValue(info, "v.i64"), -(2n ** 40n));
  t.is(metaValue(info, "v.bool"), true);
  t.is(metaValue(info, "v.str"), "héllo ▁world");
  t.deepEqual(metaValue(info, "v.strs"), ["<s>", "", "日本"]);
  t.deepEqual(metaValue(info, "v.f32s"), [0.5, -4]);
  t.deepEqual(metaValue(info, "v.nested"), [[1, 2], ["x"]]);
  t.is(info.metadata.get("v.nested")?.type, GGUFValueType.ARRAY);
  t.deepEqual([...info.metadata.keys()].slice(0, 2), ["general.alignment", "v.u8"]);

  t.deepEqual(info.tensors.map((x) => [x.name, x.shape, x.type, x.nbytes]), [
    ["a", [3, 2], GGMLType.F32, 24],
    ["b", [32, 2], GGMLType.Q8_0, 68],
  ]);
  for (const x of info.tensors) t.is((info.dataOffset + x.offset) % 64, 0);
  t.deepEqual(dequantize(GGMLType.F32, readTensorBytes(path, info, info.tensors[0]), 6), a);
  t.deepEqual(readTensorBytes(path, info, info.tensors[1]), q);
});

test("writer rejects bad input and leaves no partial file", async (t) => {
  const w = new GGUFWriter();
  w.set("k", meta.u32(1));
  t.throws(() => w.set("k", meta.u32(2)), { message: /duplicate metadata key 'k'/ });
  t.throws(() => w.addTensor("q", [48, 2], GGMLType.Q4_0, () => new Uint8Array(0)), { message: /block size 32/ });
  w.addTensor("t", [4], GGMLType.F32, () => new Uint8Array(12));
  t.throws(() => w.addTensor("t", [4], GGMLType.F32, () => new Uint8Array(16)), { message: /duplicate tensor name/ });
  const sub = mkdtempSync(join(dir, "partial-"));
  await t.throwsAsync(w.write(join(sub, "x.gguf")), { message: /tensor 't': producer gave 12 bytes, expected 16/ });
  t.deepEqual(readdirSync(sub), []);
  t.throws(() => new GGUFWriter(48), { message: /power of two/ });
});

// ---- scalar conversions ----------------------------------------------------------

test("fp16 and bf16 conversions round to nearest even", (t) => {
  t.is(fp32ToFp16(1), 0x3c00);
  t.is(fp32ToFp16(-2), 0xc000);
  t.is(fp32ToFp16(65504), 0x7bff);
  t.is(fp32ToFp16(65520), 0x7c00); // halfway to the next binade rounds up: infinity
  t.is(fp32ToFp16(65519), 0x7bff);
  t.is(fp32ToFp16(2 ** -24), 0x0001); // smallest subnormal
  t.is(fp32ToFp16(2 ** -25), 0x0000); // tie to even: 0
  t.is(fp32ToFp16(3 * 2 ** -25), 0x0002); // tie to even: 2
  t.is(fp32ToFp16(1 + 2 ** -11), 0x3c00); // tie to even
  t.is(fp32ToFp16(1 + 3 * 2 ** -11), 0x3c02);
  t.is(fp32ToFp16(NaN) & 0x7e00, 0x7e00);
  t.is(fp16ToFp32(0x3555), Math.fround(0.333251953125));
  for (let h = 0; h < 0x7c00; h += 7) t.is(fp32ToFp16(fp16ToFp32(h)), h);
  t.is(fp32ToBf16(1), 0x3f80);
  t.is(fp32ToBf16(Math.fround(1 + 2 ** -8)), 0x3f80); // tie to even
  t.is(fp32ToBf16(Math.fround(1 + 3 * 2 ** -8)), 0x3f82);
  t.is(bf16ToFp32(0xc040), -3);
});

// ---- quantizers --------------------------------------------------------------------

/** Largest |x| of each run of `block` values. */
function blockAmax(x: Float32Array, block: number): Float32Array {
  const out = new Float32Array(x.length / block);
  for (let i = 0; i < x.length; i++) out[Math.floor(i / block)] = Math.max(out[Math.floor(i / block)], Math.abs(x[i]));
  return out;
}

// Worst error per element relative to the largest |x| of its block, and RMS error relative to
// the RMS of gaussian data. The worst-case bounds follow from each format, e.g. Q4_0: steps of
// amax/8; the side opposite the largest value is clamped at +7 steps, costing one step.
// Q6_K: a step of amax_sub/32 clamped the same way, plus the int8 rounding of sub-block
// scales (amax/256). Q4_K: half a step of (hi-lo)/15 <= 2*amax/15 plus the 6-bit rounding of
// scale and min. The RMS bounds are those of uniform rounding error, step/sqrt(12), plus margin.
const BOUNDS: Record<string, { block: number; max: number; rms: number }> = {
  f16: { block: 32, max: 2 ** -11, rms: 1e-3 },
  bf16: { block: 32, max: 2 ** -8, rms: 4e-3 },
  q8_0: { block: 32, max: 0.6 / 127, rms: 0.006 },
  q4_0: { block: 32, max: 1.1 / 8, rms: 0.1 },
  q4_K: { block: 256, max: 0.1, rms: 0.11 },
  q6_K: { block: 256, max: 1 / 32 + 1 / 256 + 1e-3, rms: 0.03 },
  // Q4_1 / Q5_1: half a step of (max - min) / 15 or 31 <= 2 * amax / steps, plus the fp16 offset.
  // Q5_0: as Q4_0 with steps of amax / 16. IQ4_NL: half the widest gap between levels (24 / 127),
  // and 113 / 127 at the top. Q5_K: as Q4_K with 31 steps. Q3_K: steps of amax_sub / 4, the side
  // opposite the largest value clamped one step short, plus the 6-bit signed scales. Q2_K: three
  // steps over the sub-block's range, with 4-bit scales and mins (each rounded by up to 1 / 30 of
  // the block's largest).
  q4_1: { block: 32, max: 1.05 / 15, rms: 0.1 },
  q5_1: { block: 32, max: 1.1 / 31, rms: 0.05 },
  q5_0: { block: 32, max: 1.1 / 16, rms: 0.05 },
  iq4_nl: { block: 32, max: 0.12, rms: 0.1 },
  q5_K: { block: 256, max: 0.06, rms: 0.06 },
  q3_K: { block: 256, max: 0.3, rms: 0.25 },
  q2_K: { block: 256, max: 0.6, rms: 0.45 },
};

function checkError(t: ExecutionContext, type: GGMLType, x: Float32Array, y: Float32Array, what: string, gaussian = true) {
  const b = BOUNDS[TYPE_INFO[type].name];
  const amax = blockAmax(x, b.block);
  let worst = 0;
  let se = 0;
  let sx = 0;
  for (let i = 0; i < x.length; i++) {
    worst = Math.max(worst, Math.abs(y[i] - x[i]) / (amax[Math.floor(i / b.block)] || 1));
    se += (y[i] - x[i]) ** 2;
    sx += x[i] ** 2;
  }
  t.true(worst <= b.max, `${what}: worst relative error ${worst} > ${b.max}`);
  if (!gaussian) return;
  const rms = Math.sqrt(se / sx);
  t.true(rms <= b.rms, `${what}: RMS relative error ${rms} > ${b.rms}`);
}

const QUANTIZED = [
  GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1,
  GGMLType.IQ4_NL, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];

test("quantizers stay within each type's error on gaussian data", (t) => {
  const prng = new Prng(7);
  const x = prng.normals(256 * 16, 0.05);
  // Blocks with an offset mean, a single spike, all zeros: the edge cases of the scale search.
  const edge = prng.normals(256 * 4, 0.05);
  for (let i = 0; i < 256; i++) edge[i] += 0.2;
  edge[300] = 3;
  edge.fill(0, 512, 768);
  edge.fill(-1e-3, 768, 800);
  for (const type of QUANTIZED) {
    const bytes = quantize(type, x);
    t.is(bytes.length, byteSize(type, x.length));
    checkError(t, type, x, dequantize(type, bytes, x.length), TYPE_INFO[type].name);
    checkError(t, type, edge, dequantize(type, quantize(type, edge), edge.length), `${TYPE_INFO[type].name} edge`, false);
  }
});

test("values exactly representable in Q8_0 and Q4_0 come back exactly", (t) => {
  const d = fp16ToFp32(fp32ToFp16(0.01));
  const q8 = new Float32Array(32).map((_, i) => d * (i === 0 ? -127 : ((i * 37) % 255) - 127));
  t.deepEqual(dequantize(GGMLType.Q8_0, quantize(GGMLType.Q8_0, q8), 32), q8);
  // Q4_0 maps the largest magnitude to -8 steps: values d*(q-8) with q = 0 present.
  const q4 = new Float32Array(32).map((_, i) => Math.fround(-d * ((i * 5) % 16 - 8)));
  const back = dequantize(GGMLType.Q4_0, quantize(GGMLType.Q4_0, q4), 32);
  for (let i = 0; i < 32; i++) t.true(Math.abs(back[i] - q4[i]) <= Math.abs(q4[i]) * 1e-6, `element ${i}`);
});

test("Q4_0 and Q8_0 blocks have ggml's layout", (t) => {
  const x = new Float32Array(32).map((_, i) => i - 16); // largest magnitude -16: d = 2
  const q4 = quantize(GGMLType.Q4_0, x);
  t.is(fp16ToFp32(q4[0] | (q4[1] << 8)), 2);
  t.is(q4[2], ((-16 / 2 + 8) & 0xf) | (((0 / 2 + 8) & 0xf) << 4)); // elements 0 and 16 share byte 0
  const q8 = quantize(GGMLType.Q8_0, x);
  t.is(q8[0] | (q8[1] << 8), fp32ToFp16(16 / 127));
  t.is((q8[2] << 24) >> 24, -127);
  t.is(q8[2 + 16], 0);
});

// ---- synthetic models --------------------------------------------------------------

const EXPECTED: Partial<Record<SyntheticType, GGMLType>> = {
  f32: GGMLType.F32, f16: GGMLType.F16, bf16: GGMLType.BF16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0,
  q4_1: GGMLType.Q4_1, q5_0: GGMLType.Q5_0, q5_1: GGMLType.Q5_1, iq4_nl: GGMLType.IQ4_NL, q3_k: GGMLType.Q3_K,
  q4_k: GGMLType.Q4_K, q5_k: GGMLType.Q5_K, q6_k: GGMLType.Q6_K,
};
const TYPES = Object.keys(EXPECTED) as SyntheticType[];

// Small enough to be quick, rows of 256 so the K-quants apply everywhere.
const SHAPE = { nEmbd: 256, nLayer: 1, nHead: 4, nHeadKv: 2, nFf: 512 };

function tensorValues(path: string, info: GGUFInfo, name: string): Float32Array {
  const ti = info.tensors.find((x) => x.name === name);
  if (!ti) throw new Error(`no tensor ${name} in ${path}`);
  return dequantize(ti.type, readTensorBytes(path, info, ti), ti.shape.reduce((a, b) => a * b, 1));
}

test("synthetic llama models of every type hold the same weights within quantization error", async (t) => {
  const ref = join(dir, "ref-f32.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: ref, ...SHAPE });
  const refInfo = readGGUF(ref);
  for (const type of TYPES.slice(1)) {
    const path = join(dir, `llama-${type}.gguf`);
    const res = await writeSyntheticModel({ arch: "llama", type, out: path, ...SHAPE });
    const info = readGGUF(path);
    t.deepEqual(info.tensors.map((x) => [x.name, x.shape]), refInfo.tensors.map((x) => [x.name, x.shape]));
    for (const ti of info.tensors) {
      const want = ti.shape.length === 1 ? GGMLType.F32 : EXPECTED[type]!;
      t.is(ti.type, want, `${type} ${ti.name}`);
      t.is(res.tensorTypes[ti.name], want);
      if (ti.shape.length === 1) continue;
      checkError(t, ti.type, tensorValues(ref, refInfo, ti.name), tensorValues(path, info, ti.name), `${type} ${ti.name}`);
    }
  }
});

test("synthetic llama metadata, tensors and weight scales", async (t) => {
  const path = join(dir, "llama-meta.gguf");
  const res = await writeSyntheticModel({ arch: "llama", type: "f32", out: path, seed: 3 });
  const info = readGGUF(path);
  t.is(metaValue(info, "general.architecture"), "llama");
  t.is(metaValue(info, "llama.embedding_length"), 64);
  t.is(metaValue(info, "llama.block_count"), 2);
  t.is(metaValue(info, "llama.attention.head_count"), 4);
  t.is(metaValue(info, "llama.attention.head_count_kv"), 2);
  t.is(metaValue(info, "llama.feed_forward_length"), 128);
  t.is(metaValue(info, "llama.rope.dimension_count"), 16);
  t.is(metaValue(info, "tokenizer.ggml.model"), "llama");
  const tokens = metaValue(info, "tokenizer.ggml.tokens") as string[];
  t.is(tokens.length, res.nVocab);
  t.is(tokens[metaValue(info, "tokenizer.ggml.bos_token_id") as number], "<s>");
  t.is((metaValue(info, "tokenizer.ggml.scores") as number[]).length, res.nVocab);
  t.is((metaValue(info, "tokenizer.ggml.token_type") as number[]).length, res.nVocab);

  const shapes = Object.fromEntries(info.tensors.map((x) => [x.name, x.shape]));
  t.deepEqual(shapes["token_embd.weight"], [64, res.nVocab]);
  t.deepEqual(shapes["output.weight"], [64, res.nVocab]);
  t.deepEqual(shapes["blk.1.attn_k.weight"], [64, 32]);
  t.deepEqual(shapes["blk.1.ffn_down.weight"], [128, 64]);
  t.is(info.tensors.length, 3 + 2 * 9);
  t.is(res.nParams, info.tensors.reduce((n, x) => n + x.shape.reduce((a, b) => a * b, 1), 0));

  const std = (x: Float32Array, mean = 0) => Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
  const norm = tensorValues(path, info, "blk.0.attn_norm.weight");
  t.true(Math.abs(norm.reduce((s, v) => s + v, 0) / norm.length - 1) < 0.05);
  t.true(Math.abs(std(tensorValues(path, info, "blk.0.attn_q.weight")) - 1 / 8) < 0.01);
  t.true(Math.abs(std(tensorValues(path, info, "output.weight")) - 4 / 8) < 0.02);

  // Same seed, same bytes; another seed, other weights.
  const again = join(dir, "llama-meta-again.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: again, seed: 3 });
  t.deepEqual(readFileSync(again), readFileSync(path));
  const other = join(dir, "llama-meta-other.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: other, seed: 4 });
  t.notDeepEqual(tensorValues(other, readGGUF(other), "blk.0.attn_q.weight"), tensorValues(path, info, "blk.0.attn_q.weight"));
});

test("synthetic qwen2: biases, qwen2 keys, BPE vocabulary, tied output", async (t) => {
  const path = join(dir, "qwen2.gguf");
  const res = await writeSyntheticModel({ arch: "qwen2", type: "q8_0", out: path, tied: true, nHead: 8, nHeadKv: 2 });
  const info = readGGUF(path);
  t.is(metaValue(info, "general.architecture"), "qwen2");
  t.is(metaValue(info, "qwen2.attention.head_count"), 8);
  t.is(metaValue(info, "qwen2.rope.freq_base"), 1e6);
  t.is(metaValue(info, "llama.block_count"), undefined);
  t.is(metaValue(info, "tokenizer.ggml.model"), "gpt2");
  t.is(metaValue(info, "tokenizer.ggml.pre"), "qwen2");
  t.true((metaValue(info, "tokenizer.ggml.merges") as string[]).length > 0);
  const byName = new Map(info.tensors.map((x) => [x.name, x]));
  t.false(byName.has("output.weight"));
  t.deepEqual(byName.get("blk.0.attn_q.bias")?.shape, [64]);
  t.deepEqual(byName.get("blk.0.attn_k.bias")?.shape, [16]);
  t.is(byName.get("blk.0.attn_v.bias")?.type, GGMLType.F32);
  t.is(byName.get("token_embd.weight")?.type, GGMLType.Q8_0);
  t.is(res.tensorTypes["blk.1.attn_k.bias"], GGMLType.F32);
});

test("K-quants fall back per tensor when rows are not whole super-blocks", async (t) => {
  const path = join(dir, "q4k-small.gguf");
  const res = await writeSyntheticModel({ arch: "llama", type: "q4_k", out: path, nEmbd: 64, nFf: 256 });
  t.is(res.tensorTypes["blk.0.attn_q.weight"], GGMLType.Q5_0); // rows of 64: llama.cpp's fallback
  t.is(res.tensorTypes["blk.0.ffn_down.weight"], GGMLType.Q4_K); // rows of 256
  const q6 = await writeSyntheticModel({ arch: "llama", type: "q6_k", out: path, nEmbd: 64, nFf: 256 });
  t.is(q6.tensorTypes["blk.0.attn_q.weight"], GGMLType.Q8_0);
  t.is(readGGUF(path).tensors.find((x) => x.name === "blk.0.ffn_down.weight")?.type, GGMLType.Q6_K);
  await t.throwsAsync(writeSyntheticModel({ arch: "llama", type: "f32", out: path, nEmbd: 60, nHead: 8 }),
    { message: /not a multiple of n_head/ });
  t.true(existsSync(path));
});

test("preset mixes give each matrix llama.cpp's type, with its fallbacks for 896-wide rows", async (t) => {
  const path = join(dir, "mix.gguf");
  const types = async (type: SyntheticType, nEmbd: number, nFf: number) =>
    (await writeSyntheticModel({ arch: "llama", type, out: path, nEmbd, nFf, nHead: 4, nHeadKv: 2, nLayer: 2 })).tensorTypes;
  const q4km = await types("q4_k_m", 256, 512);
  // Layer 1 of 2 gets "more bits" (llama.cpp's use_more_bits): Q6_K for attn_v and ffn_down.
  t.is(q4km["blk.0.attn_v.weight"], GGMLType.Q4_K);
  t.is(q4km["blk.1.attn_v.weight"], GGMLType.Q6_K);
  t.is(q4km["blk.0.ffn_down.weight"], GGMLType.Q4_K);
  t.is(q4km["blk.1.ffn_down.weight"], GGMLType.Q6_K);
  t.is(q4km["output.weight"], GGMLType.Q6_K);
  t.is(q4km["blk.0.attn_q.weight"], GGMLType.Q4_K);
  t.is(q4km["token_embd.weight"], GGMLType.Q4_K);
  const q3km = await types("q3_k_m", 256, 512);
  t.is(q3km["blk.0.attn_v.weight"], GGMLType.Q5_K);
  t.is(q3km["blk.0.attn_output.weight"], GGMLType.Q4_K);
  t.is(q3km["blk.0.ffn_down.weight"], GGMLType.Q4_K);
  t.is(q3km["blk.0.ffn_up.weight"], GGMLType.Q3_K);
  const q2k = await types("q2_k", 256, 512);
  t.is(q2k["blk.0.attn_q.weight"], GGMLType.Q2_K);
  t.is(q2k["blk.0.attn_v.weight"], GGMLType.Q3_K);
  t.is(q2k["blk.1.ffn_down.weight"], GGMLType.Q3_K);
  // 896-wide rows are not whole super-blocks; ffn_down's 1024-wide rows are.
  const wide = await types("q5_k_m", 896, 1024);
  t.is(wide["blk.0.attn_q.weight"], GGMLType.Q5_1);
  t.is(wide["blk.1.attn_v.weight"], GGMLType.Q8_0);
  t.is(wide["blk.1.ffn_down.weight"], GGMLType.Q6_K);
  t.is(wide["blk.0.ffn_down.weight"], GGMLType.Q5_K);
  t.is(wide["output.weight"], GGMLType.Q8_0);
  const wide2 = await types("q2_k", 896, 1024);
  t.is(wide2["blk.0.attn_q.weight"], GGMLType.IQ4_NL);
  t.is(wide2["blk.0.attn_v.weight"], GGMLType.IQ4_NL);
  t.is(wide2["blk.0.ffn_down.weight"], GGMLType.Q3_K);
  t.is((await types("q4_k_m", 896, 1024))["blk.0.ffn_gate.weight"], GGMLType.Q5_0);
});
