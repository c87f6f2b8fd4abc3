// Float encodings shared by the TypeScript quantizers: IEEE half and bfloat16 conversions,
// ggml's two rounding rules, and little-endian 16-bit access to block bytes. Float32
// arithmetic is mimicked with Math.fround wherever ggml computes in float.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export const fr = Math.fround;

/** float32 -> IEEE half, round to nearest even (as GGML_FP32_TO_FP16). */
export function fp32ToFp16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    let h = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
    return sign | h;
  }
  // Subnormal half: the implicit bit joins the mantissa, shifted into units of 2^-24.
  const shift = 14 - e;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && h & 1)) h++;
  return sign | h;
}

export function fp16ToFp32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 -> bfloat16, round to nearest even; NaN stays a quiet NaN (as ggml). */
export function fp32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

export function bf16ToFp32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** roundf: half away from zero. */
export function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/** ggml's nearest_int: half to even. */
export function nearestInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function setU16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = v >>> 8;
}

export function getU16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}
