// Block codecs of ggml's K-quants beyond Q4_K / Q6_K: Q2_K, Q3_K and Q5_K (super-blocks of
// 256). The quantizers produce valid blocks by a simpler rule than ggml's scale search (each
// sub-block's range mapped onto its quant levels); the dequantizers follow ggml-quants.c.
// Each function encodes or decodes one super-block: 256 values at x[xi..] or y[yi..], the
// block's bytes at out[o..] or b[o..].
import { fp16ToFp32, fp32ToFp16, fr, getU16, nearestInt, setU16 } from "./float-bits.js";

const QK_K = 256;

/** The 6-bit scale and min of sub-block j of Q4_K / Q5_K (ggml's get_scale_min_k4). */
export function scaleMinK4(j: number, q: Uint8Array): [number, number] {
  if (j < 4) return [q[j] & 63, q[j + 4] & 63];
  return [(q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)];
}

/** Packs eight 6-bit (scale, min) pairs into Q4_K / Q5_K's 12 bytes at out[o..]. */
export function packScaleMinK4(ls: number[], lm: number[], out: Uint8Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[o + j] = ls[j];
      out[o + j + 4] = lm[j];
    } else {
      out[o + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      out[o + j - 4] |= (ls[j] >> 4) << 6;
      out[o + j] |= (lm[j] >> 4) << 6;
    }
  }
}

// Q2_K / Q3_K: the 2-bit part of element e: per 128 elements, 32 bytes hold four runs of 32
// (bits 0-1, 2-3, 4-5, 6-7).
const q2Byte = (e: number) => 32 * Math.floor(e / 128) + (e % 32);
const q2Shift = (e: number) => 2 * Math.floor((e % 128) / 32);

/** Per sub-block of `size` values: the range [min(0, lo), hi] (an offset is subtracted). */
function subRanges(x: Float32Array, xi: number, size: number, steps: number): { scale: number[]; min: number[] } {
  const scale: number[] = [];
  const min: number[] = [];
  for (let j = 0; j < QK_K / size; j++) {
    let lo = 0;
    let hi = -Infinity;
    for (let l = 0; l < size; l++) {
      lo = Math.min(lo, x[xi + size * j + l]);
      hi = Math.max(hi, x[xi + size * j + l]);
    }
    scale.push(fr((hi - lo) / steps));
    min.push(-lo);
  }
  return { scale, min };
}

// block_q2_K: scales[16] (4-bit scale low, 4-bit min high, per sub-block of 16), qs[64], fp16 d,
// fp16 dmin; value = d * scale * q - dmin * min, q 2 bits.
export function quantizeQ2_K(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const { scale, min } = subRanges(x, xi, 16, 3);
  const dh = fp32ToFp16(fr(Math.max(...scale) / 15));
  const mh = fp32ToFp16(fr(Math.max(...min) / 15));
  setU16(out, o + 80, dh);
  setU16(out, o + 82, mh);
  const d = fp16ToFp32(dh);
  const dmin = fp16ToFp32(mh);
  for (let j = 0; j < 16; j++) {
    const ls = d ? Math.max(0, Math.min(15, nearestInt(fr(scale[j] / d)))) : 0;
    const lm = dmin ? Math.max(0, Math.min(15, nearestInt(fr(min[j] / dmin)))) : 0;
    out[o + j] = ls | (lm << 4);
    const dd = fr(d * ls);
    const dm = fr(dmin * lm);
    for (let l = 0; l < 16; l++) {
      const e = 16 * j + l;
      const q = dd ? Math.max(0, Math.min(3, nearestInt(fr(fr(x[xi + e] + dm) / dd)))) : 0;
      out[o + 16 + q2Byte(e)] |= q << q2Shift(e);
    }
  }
}

export function dequantizeQ2_K(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o + 80));
  const dmin = fp16ToFp32(getU16(b, o + 82));
  for (let e = 0; e < QK_K; e++) {
    const sc = b[o + Math.floor(e / 16)];
    const q = (b[o + 16 + q2Byte(e)] >> q2Shift(e)) & 3;
    y[yi + e] = fr(fr(d * (sc & 0xf)) * q) - fr(dmin * (sc >> 4));
  }
}

// block_q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit scales stored + 32), fp16 d;
// value = d * (scale - 32) * (q - 4 * !h), q 2 bits as Q2_K's, h element e's bit e / 32 of
// hmask[e % 32]. Per sub-block the value of largest magnitude maps to -4.
export function quantizeQ3_K(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const scales: number[] = [];
  let amax = 0;
  let maxScale = 0;
  for (let j = 0; j < 16; j++) {
    let subAmax = 0;
    let subMax = 0;
    for (let l = 0; l < 16; l++) {
      const v = x[xi + 16 * j + l];
      if (Math.abs(v) > subAmax) {
        subAmax = Math.abs(v);
        subMax = v;
      }
    }
    scales.push(fr(subMax / -4));
    if (Math.abs(scales[j]) > amax) {
      amax = Math.abs(scales[j]);
      maxScale = scales[j];
    }
  }
  const iscale = maxScale ? fr(-32 / maxScale) : 0;
  const dh = fp32ToFp16(iscale ? fr(1 / iscale) : 0);
  setU16(out, o + 108, dh);
  const d = fp16ToFp32(dh);
  for (let j = 0; j < 16; j++) {
    const l = Math.max(-32, Math.min(31, nearestInt(fr(iscale * scales[j])))) + 32;
    out[o + 96 + (j % 8)] |= (l & 0xf) << (j < 8 ? 0 : 4);
    out[o + 96 + 8 + (j % 4)] |= (l >> 4) << (2 * Math.floor(j / 4));
    const dd = fr(d * (l - 32));
    for (let k = 0; k < 16; k++) {
      const e = 16 * j + k;
      const q = (dd ? Math.max(-4, Math.min(3, nearestInt(fr(x[xi + e] / dd)))) : 0) + 4;
      out[o + 32 + q2Byte(e)] |= (q & 3) << q2Shift(e);
      out[o + (e % 32)] |= (q >> 2) << Math.floor(e / 32);
    }
  }
}

export function dequantizeQ3_K(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o + 108));
  const sc = o + 96;
  for (let e = 0; e < QK_K; e++) {
    const j = Math.floor(e / 16);
    const lo = j < 8 ? b[sc + j] & 0xf : b[sc + j - 8] >> 4;
    const hi = (b[sc + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3;
    const h = (b[o + (e % 32)] >> Math.floor(e / 32)) & 1;
    const q = ((b[o + 32 + q2Byte(e)] >> q2Shift(e)) & 3) - (h ? 0 : 4);
    y[yi + e] = fr(d * ((lo | (hi << 4)) - 32)) * q;
  }
}

// block_q5_K: fp16 d, fp16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
// qh[32] (element e's bit 4: bit e / 32 of qh[e % 32]), qs[128] (nibbles as Q4_K: 32 bytes per
// 64 elements, low nibbles first); value = d * scale * q - dmin * min.
export function quantizeQ5_K(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const { scale, min } = subRanges(x, xi, 32, 31);
  const maxScale = Math.max(...scale);
  const maxMin = Math.max(...min);
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const ls = scale.map((s) => Math.min(63, nearestInt(fr(invScale * s))));
  const lm = min.map((m) => Math.min(63, nearestInt(fr(invMin * m))));
  packScaleMinK4(ls, lm, out, o + 4);
  const dh = fp32ToFp16(fr(maxScale / 63));
  const mh = fp32ToFp16(fr(maxMin / 63));
  setU16(out, o, dh);
  setU16(out, o + 2, mh);
  const packed = out.subarray(o + 4, o + 16);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, packed);
    const dd = fr(fp16ToFp32(dh) * sc);
    const dm = fr(fp16ToFp32(mh) * m);
    for (let l = 0; l < 32; l++) {
      const e = 32 * j + l;
      const q = dd ? Math.max(0, Math.min(31, nearestInt(fr(fr(x[xi + e] + dm) / dd)))) : 0;
      out[o + 48 + 32 * Math.floor(e / 64) + (e % 32)] |= (q & 0xf) << (e % 64 < 32 ? 0 : 4);
      out[o + 16 + (e % 32)] |= (q >> 4) << Math.floor(e / 32);
    }
  }
}

export function dequantizeQ5_K(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  const dmin = fp16ToFp32(getU16(b, o + 2));
  const packed = b.subarray(o + 4, o + 16);
  for (let e = 0; e < QK_K; e++) {
    const [sc, m] = scaleMinK4(Math.floor(e / 32), packed);
    const byte = b[o + 48 + 32 * Math.floor(e / 64) + (e % 32)];
    const q = (e % 64 < 32 ? byte & 0xf : byte >> 4) | (((b[o + 16 + (e % 32)] >> Math.floor(e / 32)) & 1) << 4);
    y[yi + e] = fr(fr(d * sc) * q) - fr(dmin * m);
  }
}
