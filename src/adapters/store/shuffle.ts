// Byte-plane shuffle (as blosc's shuffle filter): the k-th byte of every `size`-byte element goes
// to plane k, so the exponent bytes of fp16 values sit together and a compressor finds their
// repetition; raw fp16 bytes barely compress. Trailing bytes (length % size) are copied as they are.

/** Bytes of `src` rearranged into `size` planes. size 1 returns a copy. */
export function shuffle(src: Uint8Array, size: number): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  const n = Math.floor(src.length / size);
  for (let k = 0; k < size; k++) {
    const base = k * n;
    for (let i = 0, j = k; i < n; i++, j += size) out[base + i] = src[j];
  }
  out.set(src.subarray(n * size), n * size);
  return out;
}

/** The inverse of shuffle(), into `out` (a fresh buffer when absent). */
export function unshuffle(src: Uint8Array, size: number, out: Buffer = Buffer.allocUnsafe(src.length)): Buffer {
  const n = Math.floor(src.length / size);
  for (let k = 0; k < size; k++) {
    const base = k * n;
    for (let i = 0, j = k; i < n; i++, j += size) out[j] = src[base + i];
  }
  out.set(src.subarray(n * size), n * size);
  return out;
}
