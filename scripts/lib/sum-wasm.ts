// A tiny WebAssembly module that sums a memory range with 128-bit loads: the memory read
// bandwidth probe. Plain JS typed-array loops reach only about 2 GB/s here (scalar loads, bounds
// checks), far below what the engine's kernels can read, so the probe uses wasm SIMD instead.
//
//   (import "env" "mem" (memory shared N N))
//   (func (export "sum") (param $p i32) (param $end i32) (result i32)
//     4 v128 accumulators; loop: acc_k += i32x4 load [p + 16k], p += 64, while p < end;
//     return the sum of all lanes of all accumulators)
//
// The module is assembled here byte by byte (no wat2wasm in the toolchain).

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128, as i32.const takes it (64 needs two bytes: a lone 0x40 would be -64). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  return [...uleb(s.length), ...Buffer.from(s, "utf8")];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

const OP = {
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32LtU: 0x49,
  i32Add: 0x6a,
  simd: 0xfd,
} as const;
const V128_LOAD = [OP.simd, 0x00];
const I32X4_ADD = [OP.simd, ...uleb(0xae)];
const I32X4_EXTRACT_LANE = [OP.simd, 0x1b];
const I32 = 0x7f;
const V128 = 0x7b;

/** The module's bytes for a shared memory of `pages` 64 KiB pages. */
export function sumModuleBytes(pages: number): Uint8Array<ArrayBuffer> {
  const P = 0; // param: start address
  const END = 1; // param: end address (exclusive, start + a multiple of 64)
  const ACC = [2, 3, 4, 5]; // v128 locals
  const body: number[] = [OP.loop, 0x40];
  ACC.forEach((acc, k) => {
    body.push(OP.localGet, acc, OP.localGet, P, ...V128_LOAD, 0x04, ...uleb(16 * k), ...I32X4_ADD, OP.localSet, acc);
  });
  body.push(OP.localGet, P, OP.i32Const, ...sleb(64), OP.i32Add, OP.localTee, P);
  body.push(OP.localGet, END, OP.i32LtU, OP.brIf, 0, OP.end);
  // acc0 = acc0 + acc1 + acc2 + acc3, then the sum of its four lanes (every load feeds the result).
  body.push(OP.localGet, ACC[0]);
  for (const acc of ACC.slice(1)) body.push(OP.localGet, acc, ...I32X4_ADD);
  body.push(OP.localSet, ACC[0]);
  for (let lane = 0; lane < 4; lane++) {
    body.push(OP.localGet, ACC[0], ...I32X4_EXTRACT_LANE, lane);
    if (lane > 0) body.push(OP.i32Add);
  }
  body.push(OP.end);
  const func = [1, 4, V128, ...body]; // one local group: 4 x v128

  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]),
    ...section(2, [1, ...str("env"), ...str("mem"), 0x02, 0x03, ...uleb(pages), ...uleb(pages)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...str("sum"), 0x00, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}
