// Block codecs of ggml's 32-element types beyond Q8_0 / Q4_0: Q4_1, Q5_0, Q5_1 (byte for byte
// ggml's quantize_row_*_ref) and IQ4_NL (valid blocks by a simpler rule than ggml's scale
// search), with the matching dequantizers of ggml-quants.c. Each function encodes or decodes
// one block: 32 values at x[xi..] or y[yi..], the block's bytes at out[o..] or b[o..].
import { fp16ToFp32, fp32ToFp16, fr, getU16, setU16 } from "./float-bits.js";

const QK = 32;
const FLT_MAX = 3.4028234663852886e38;

/** ggml's kvalues_iq4nl: the 16 levels of an IQ4_NL nibble. */
export const IQ4_NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

function minMax(x: Float32Array, xi: number): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < QK; j++) {
    min = Math.min(min, x[xi + j]);
    max = Math.max(max, x[xi + j]);
  }
  return [min, max];
}

/** The first value of largest magnitude, with its sign. */
function signedAmax(x: Float32Array, xi: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[xi + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** C's (int8_t) / (uint8_t) conversion of a float: truncate, then wrap. */
const toInt8 = (v: number) => (Math.trunc(v) << 24) >> 24;
const toUint8 = (v: number) => Math.trunc(v) & 0xff;

// 32 five-bit quants: low nibbles as Q4_0 (bytes 0..15: element j low, j + 16 high), bit 4 of
// element j in bit j of the 4-byte qh at `qh`.
function packQ5(q: number[], out: Uint8Array, qh: number, qs: number): void {
  let h = 0;
  for (let j = 0; j < 16; j++) {
    out[qs + j] = (q[j] & 0xf) | ((q[j + 16] & 0xf) << 4);
    h |= ((q[j] >> 4) & 1) << j;
    h |= ((q[j + 16] >> 4) & 1) << (j + 16);
  }
  new DataView(out.buffer, out.byteOffset).setUint32(qh, h >>> 0, true);
}

function q5Quant(b: Uint8Array, qh: number, qs: number, j: number): number {
  const h = new DataView(b.buffer, b.byteOffset).getUint32(qh, true);
  const nib = j < 16 ? b[qs + j] & 0xf : b[qs + j - 16] >> 4;
  return nib | (((h >>> j) & 1) << 4);
}

// block_q4_1: fp16 d, fp16 m, 16 bytes of nibbles; value = d * q + m.
export function quantizeQ4_1(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const [min, max] = minMax(x, xi);
  const d = fr((max - min) / 15);
  const id = d ? fr(1 / d) : 0;
  setU16(out, o, fp32ToFp16(d));
  setU16(out, o + 2, fp32ToFp16(min));
  for (let j = 0; j < 16; j++) {
    const q0 = Math.min(15, toInt8(fr(fr(fr(x[xi + j] - min) * id) + 0.5)));
    const q1 = Math.min(15, toInt8(fr(fr(fr(x[xi + j + 16] - min) * id) + 0.5)));
    out[o + 4 + j] = q0 | (q1 << 4);
  }
}

export function dequantizeQ4_1(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  const m = fp16ToFp32(getU16(b, o + 2));
  for (let j = 0; j < 16; j++) {
    y[yi + j] = fr((b[o + 4 + j] & 0xf) * d) + m;
    y[yi + j + 16] = fr((b[o + 4 + j] >> 4) * d) + m;
  }
}

// block_q5_0: fp16 d, 4 bytes qh, 16 bytes of nibbles; value = d * (q - 16).
export function quantizeQ5_0(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const d = fr(signedAmax(x, xi) / -16);
  const id = d ? fr(1 / d) : 0;
  setU16(out, o, fp32ToFp16(d));
  const q: number[] = [];
  for (let j = 0; j < QK; j++) q.push(Math.min(31, toInt8(fr(fr(x[xi + j] * id) + 16.5))));
  packQ5(q, out, o + 2, o + 6);
}

export function dequantizeQ5_0(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  for (let j = 0; j < QK; j++) y[yi + j] = (q5Quant(b, o + 2, o + 6, j) - 16) * d;
}

// block_q5_1: fp16 d, fp16 m, 4 bytes qh, 16 bytes of nibbles; value = d * q + m.
export function quantizeQ5_1(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const [min, max] = minMax(x, xi);
  const d = fr((max - min) / 31);
  const id = d ? fr(1 / d) : 0;
  setU16(out, o, fp32ToFp16(d));
  setU16(out, o + 2, fp32ToFp16(min));
  const q: number[] = [];
  for (let j = 0; j < QK; j++) q.push(toUint8(fr(fr(fr(x[xi + j] - min) * id) + 0.5)));
  packQ5(q, out, o + 4, o + 8);
}

export function dequantizeQ5_1(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  const m = fp16ToFp32(getU16(b, o + 2));
  for (let j = 0; j < QK; j++) y[yi + j] = fr(q5Quant(b, o + 4, o + 8, j) * d) + m;
}

/** The IQ4_NL level nearest to v (the lower on a tie). */
function iq4Index(v: number): number {
  let best = 0;
  for (let k = 1; k < 16; k++) if (Math.abs(v - IQ4_NL_VALUES[k]) < Math.abs(v - IQ4_NL_VALUES[best])) best = k;
  return best;
}

// block_iq4_nl: fp16 d, 16 bytes of nibbles (laid out as Q4_0); value = d * IQ4_NL_VALUES[q].
// The value of largest magnitude maps to the level -127; every value to its nearest level.
export function quantizeIQ4_NL(x: Float32Array, xi: number, out: Uint8Array, o: number): void {
  const dh = fp32ToFp16(fr(signedAmax(x, xi) / -127));
  setU16(out, o, dh);
  const d = fp16ToFp32(dh);
  const id = d ? fr(1 / d) : 0;
  for (let j = 0; j < 16; j++) out[o + 2 + j] = iq4Index(fr(x[xi + j] * id)) | (iq4Index(fr(x[xi + j + 16] * id)) << 4);
}

export function dequantizeIQ4_NL(b: Uint8Array, o: number, y: Float32Array, yi: number): void {
  const d = fp16ToFp32(getU16(b, o));
  for (let j = 0; j < 16; j++) {
    y[yi + j] = d * IQ4_NL_VALUES[b[o + 2 + j] & 0xf];
    y[yi + j + 16] = d * IQ4_NL_VALUES[b[o + 2 + j] >> 4];
  }
}
