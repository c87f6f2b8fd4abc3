// ggml tensor encodings in TypeScript, for writing synthetic test models and checking them
// (the engine itself reads these formats in C++): the block layouts of F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, quantizers producing valid ggml
// blocks, and the matching dequantizers (as ggml-quants.c). Float32 arithmetic is mimicked with
// Math.fround wherever ggml computes in float, so Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 blocks equal
// ggml's quantize_row_*_ref output byte for byte; the K-quant and IQ4_NL scale choice is simpler
// than ggml's. The other block types live in quantize-blocks32.ts and quantize-kquants.ts.
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16, fr, getU16, nearestInt, roundAway, setU16 } from "./float-bits.js";
import {
  dequantizeIQ4_NL,
  dequantizeQ4_1,
  dequantizeQ5_0,
  dequantizeQ5_1,
  quantizeIQ4_NL,
  quantizeQ4_1,
  quantizeQ5_0,
  quantizeQ5_1,
} from "./quantize-blocks32.js";
import {
  dequantizeQ2_K,
  dequantizeQ3_K,
  dequantizeQ5_K,
  quantizeQ2_K,
  quantizeQ3_K,
  quantizeQ5_K,
  scaleMinK4,
} from "./quantize-kquants.js";

export { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from "./float-bits.js";

export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
  BF16 = 30,
}

export interface TypeInfo {
  name: string;
  blockSize: number; // elements per block
  typeSize: number; // bytes per block
}

const QK_K = 256;

export const TYPE_INFO: Readonly<Record<GGMLType, TypeInfo>> = {
  [GGMLType.F32]: { name: "f32", blockSize: 1, typeSize: 4 },
  [GGMLType.F16]: { name: "f16", blockSize: 1, typeSize: 2 },
  [GGMLType.Q4_0]: { name: "q4_0", blockSize: 32, typeSize: 18 },
  [GGMLType.Q4_1]: { name: "q4_1", blockSize: 32, typeSize: 20 },
  [GGMLType.Q5_0]: { name: "q5_0", blockSize: 32, typeSize: 22 },
  [GGMLType.Q5_1]: { name: "q5_1", blockSize: 32, typeSize: 24 },
  [GGMLType.Q8_0]: { name: "q8_0", blockSize: 32, typeSize: 34 },
  [GGMLType.Q2_K]: { name: "q2_K", blockSize: QK_K, typeSize: 84 },
  [GGMLType.Q3_K]: { name: "q3_K", blockSize: QK_K, typeSize: 110 },
  [GGMLType.Q4_K]: { name: "q4_K", blockSize: QK_K, typeSize: 144 },
  [GGMLType.Q5_K]: { name: "q5_K", blockSize: QK_K, typeSize: 176 },
  [GGMLType.Q6_K]: { name: "q6_K", blockSize: QK_K, typeSize: 210 },
  [GGMLType.IQ4_NL]: { name: "iq4_nl", blockSize: 32, typeSize: 18 },
  [GGMLType.BF16]: { name: "bf16", blockSize: 1, typeSize: 2 },
};

export function typeInfo(type: number): TypeInfo | undefined {
  return (TYPE_INFO as Record<number, TypeInfo | undefined>)[type];
}

/** Bytes of `n` elements of `type`; n must be a multiple of the block size. */
export function byteSize(type: GGMLType, n: number): number {
  const t = TYPE_INFO[type];
  if (n % t.blockSize !== 0) throw new Error(`${n} elements are not a whole number of ${t.name} blocks`);
  return (n / t.blockSize) * t.typeSize;
}

// ---- quantizers ---------------------------------------------------------------

/** Encodes `x` (length a multiple of the block size) as `type`. */
export function quantize(type: GGMLType, x: Float32Array): Uint8Array {
  const out = new Uint8Array(byteSize(type, x.length));
  const view = new DataView(out.buffer);
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < x.length; i++) view.setFloat32(4 * i, x[i], true);
      break;
    case GGMLType.F16:
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, fp32ToFp16(x[i]), true);
      break;
    case GGMLType.BF16:
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, fp32ToBf16(x[i]), true);
      break;
    case GGMLType.Q8_0:
      for (let b = 0; b < x.length / 32; b++) quantizeQ8_0(x, b * 32, out, b * 34);
      break;
    case GGMLType.Q4_0:
      for (let b = 0; b < x.length / 32; b++) quantizeQ4_0(x, b * 32, out, b * 18);
      break;
    case GGMLType.Q4_K:
      for (let b = 0; b < x.length / QK_K; b++) quantizeQ4_K(x, b * QK_K, out, b * 144);
      break;
    case GGMLType.Q6_K:
      for (let b = 0; b < x.length / QK_K; b++) quantizeQ6_K(x, b * QK_K, out, b * 210);
      break;
    default: {
      const codec = BLOCK_CODECS[type]!;
      const { blockSize, typeSize } = TYPE_INFO[type];
      for (let b = 0; b < x.length / blockSize; b++) codec.encode(x, b * blockSize, out, b * typeSize);
    }
  }
  return out;
}

interface BlockCodec {
  encode(x: Float32Array, xi: number, out: Uint8Array, o: number): void;
  decode(b: Uint8Array, o: number, y: Float32Array, yi: number): void;
}

/** The types whose one-block codecs live in quantize-blocks32.ts and quantize-kquants.ts. */
const BLOCK_CODECS: Partial<Record<GGMLType, BlockCodec>> = {
  [GGMLType.Q4_1]: { encode: quantizeQ4_1, decode: dequantizeQ4_1 },
  [GGMLType.Q5_0]: { encode: quantizeQ5_0, decode: dequantizeQ5_0 },
  [GGMLType.Q5_1]: { encode: quantizeQ5_1, decode: dequantizeQ5_1 },
  [GGMLType.IQ4_NL]: { encode: quantizeIQ4_NL, decode: dequantizeIQ4_NL },
  [GGMLType.Q2_K]: { encode: quantizeQ2_K, decode: dequantizeQ2_K },
  [GGMLType.Q3_K]: { encode: quantizeQ3_K, decode: dequantizeQ3_K },
  [GGMLType.Q5_K]: { encode: quantizeQ5_K, decode: dequantizeQ5_K },
};

// block_q8_0: fp16 d, int8 qs[32]; value = d * q.
function quantizeQ8_0(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xi + j]));
  const d = fr(amax / 127);
  const id = d ? fr(1 / d) : 0;
  setU16(out, o, fp32ToFp16(d));
  for (let j = 0; j < 32; j++) out[o + 2 + j] = roundAway(fr(x[xi + j] * id)) & 0xff;
}

// block_q4_0: fp16 d, 16 bytes of nibbles (low: elements 0..15, high: 16..31); value = d * (q - 8).
function quantizeQ4_0(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[xi + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = fr(max / -8);
  const id = d ? fr(1 / d) : 0;
  setU16(out, o, fp32ToFp16(d));
  for (let j = 0; j < 16; j++) {
    const q0 = Math.min(15, Math.trunc(fr(fr(x[xi + j] * id) + 8.5)));
    const q1 = Math.min(15, Math.trunc(fr(fr(x[xi + 16 + j] * id) + 8.5)));
    out[o + 2 + j] = q0 | (q1 << 4);
  }
}

// block_q4_K: fp16 d, fp16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
// 128 bytes of nibbles; value = d * scale_j * q - dmin * min_j.
function quantizeQ4_K(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let lo = 0; // the offset is subtracted, so the range always includes 0
    let hi = -Infinity;
    for (let l = 0; l < 32; l++) {
      lo = Math.min(lo, x[xi + 32 * j + l]);
      hi = Math.max(hi, x[xi + 32 * j + l]);
    }
    scales[j] = fr((hi - lo) / 15);
    mins[j] = -lo;
    maxScale = Math.max(maxScale, scales[j]);
    maxMin = Math.max(maxMin, mins[j]);
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const packed = out.subarray(o + 4, o + 16);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])));
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      packed[j - 4] |= (ls >> 4) << 6;
      packed[j] |= (lm >> 4) << 6;
    }
  }
  const dh = fp32ToFp16(fr(maxScale / 63));
  const mh = fp32ToFp16(fr(maxMin / 63));
  setU16(out, o, dh);
  setU16(out, o + 2, mh);
  const L = new Uint8Array(QK_K);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, packed);
    const d = fr(fp16ToFp32(dh) * sc);
    if (!d) continue; // every value of this sub-block decodes to -dmin*m; q stays 0
    const dm = fr(fp16ToFp32(mh) * m);
    for (let l = 0; l < 32; l++) {
      const q = nearestInt(fr(fr(x[xi + 32 * j + l] + dm) / d));
      L[32 * j + l] = Math.max(0, Math.min(15, q));
    }
  }
  // Each 32 bytes hold two consecutive sub-blocks: low nibbles the first, high the second.
  for (let j = 0; j < QK_K; j += 64) {
    const q = o + 16 + j / 2;
    for (let l = 0; l < 32; l++) out[q + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

// block_q6_K: 128 bytes low nibbles, 64 bytes high 2 bits, int8 scales[16] (sub-blocks of 16),
// fp16 d; value = d * scale_j * (q - 32).
function quantizeQ6_K(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    let amax = 0;
    let max = 0;
    for (let l = 0; l < 16; l++) {
      const v = x[xi + 16 * ib + l];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    scales[ib] = fr(max / -32); // the largest magnitude maps to q = -32, the end with room
    if (Math.abs(scales[ib]) > maxAbsScale) {
      maxAbsScale = Math.abs(scales[ib]);
      maxScale = scales[ib];
    }
  }
  if (maxAbsScale < 1e-15) return; // an all-zero block (out is zero-filled)
  const iscale = fr(-128 / maxScale);
  const dh = fp32ToFp16(fr(1 / iscale));
  setU16(out, o + 208, dh);
  const sc = new Int8Array(out.buffer, out.byteOffset + o + 192, 16);
  for (let ib = 0; ib < 16; ib++) sc[ib] = Math.min(127, nearestInt(fr(iscale * scales[ib])));
  const L = new Uint8Array(QK_K).fill(32);
  for (let j = 0; j < 16; j++) {
    const d = fr(fp16ToFp32(dh) * sc[j]);
    if (!d) continue;
    for (let l = 0; l < 16; l++) {
      const q = nearestInt(fr(x[xi + 16 * j + l] / d));
      L[16 * j + l] = Math.max(-32, Math.min(31, q)) + 32;
    }
  }
  // Per 128 elements: ql gets 64 bytes (nibbles of elements l, l+64 and l+32, l+96),
  // qh 32 bytes (the top 2 bits of l, l+32, l+64, l+96).
  for (let j = 0; j < QK_K; j += 128) {
    const ql = o + j / 2;
    const qh = o + 128 + j / 4;
    for (let l = 0; l < 32; l++) {
      const a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
      out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

// ---- dequantizers (ggml's dequantize_row_*) -------------------------------------

/** Decodes `n` elements of `type` from `b`. */
export function dequantize(type: GGMLType, b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < n; i++) y[i] = view.getFloat32(4 * i, true);
      break;
    case GGMLType.F16:
      for (let i = 0; i < n; i++) y[i] = fp16ToFp32(getU16(b, 2 * i));
      break;
    case GGMLType.BF16:
      for (let i = 0; i < n; i++) y[i] = bf16ToFp32(getU16(b, 2 * i));
      break;
    case GGMLType.Q8_0:
      for (let blk = 0; blk < n / 32; blk++) {
        const o = blk * 34;
        const d = fp16ToFp32(getU16(b, o));
        for (let j = 0; j < 32; j++) y[blk * 32 + j] = d * ((b[o + 2 + j] << 24) >> 24);
      }
      break;
    case GGMLType.Q4_0:
      for (let blk = 0; blk < n / 32; blk++) {
        const o = blk * 18;
        const d = fp16ToFp32(getU16(b, o));
        for (let j = 0; j < 16; j++) {
          y[blk * 32 + j] = ((b[o + 2 + j] & 0xf) - 8) * d;
          y[blk * 32 + j + 16] = ((b[o + 2 + j] >> 4) - 8) * d;
        }
      }
      break;
    case GGMLType.Q4_K:
      for (let blk = 0; blk < n / QK_K; blk++) dequantizeQ4_K(b, blk * 144, y, blk * QK_K);
      break;
    case GGMLType.Q6_K:
      for (let blk = 0; blk < n / QK_K; blk++) dequantizeQ6_K(b, blk * 210, y, blk * QK_K);
      break;
    default: {
      const codec = BLOCK_CODECS[type]!;
      const { blockSize, typeSize } = TYPE_INFO[type];
      for (let blk = 0; blk < n / blockSize; blk++) codec.decode(b, blk * typeSize, y, blk * blockSize);
    }
  }
  return y;
}

function dequantizeQ4_K(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  const min = fp16ToFp32(getU16(b, o + 2));
  const packed = b.subarray(o + 4, o + 16);
  for (let j = 0; j < QK_K; j += 64) {
    const q = o + 16 + j / 2;
    const [sc1, m1] = scaleMinK4(j / 32, packed);
    const [sc2, m2] = scaleMinK4(j / 32 + 1, packed);
    const d1 = fr(d * sc1), dm1 = fr(min * m1);
    const d2 = fr(d * sc2), dm2 = fr(min * m2);
    for (let l = 0; l < 32; l++) y[yi + j + l] = fr(d1 * (b[q + l] & 0xf)) - dm1;
    for (let l = 0; l < 32; l++) y[yi + j + 32 + l] = fr(d2 * (b[q + l] >> 4)) - dm2;
  }
}

function dequantizeQ6_K(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o + 208));
  for (let n = 0; n < QK_K; n += 128) {
    const ql = o + n / 2;
    const qh = o + 128 + n / 4;
    const sc = o + 192 + n / 16;
    const s = (k: number) => (b[sc + k] << 24) >> 24;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = b[qh + l];
      const q1 = ((b[ql + l] & 0xf) | (((h >> 0) & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[yi + n + l] = fr(d * s(is)) * q1;
      y[yi + n + l + 32] = fr(d * s(is + 2)) * q2;
      y[yi + n + l + 64] = fr(d * s(is + 4)) * q3;
      y[yi + n + l + 96] = fr(d * s(is + 6)) * q4;
    }
  }
}
