// Packed8: Q4_0 / Q8_0 / Q5_0 / IQ4_NL / Q4_1 / Q5_1 weight matrices repacked at load so that
// eight rows are read together (and the K-quants Q4_K, Q5_K, Q6_K, Q3_K, Q2_K: packed_k.h).
//
// Why: with rows interleaved in 4-byte groups, one 32-byte chunk holds 4 consecutive elements
// of 8 rows, so one u8 x s8 4-way dot instruction (vpdpbusd) against the token's 4 activation
// bytes, broadcast, gives 8 row partial sums in 8 int32 lanes (lane = row). After a 32-element
// block, one int->float convert and one FMA apply the 8 row scales x the token scale: no
// horizontal sums, and the decode GEMV is one contiguous stream over 8 rows at a time.
//
// Layout (n_out % 8 == 0, n_in % 32 == 0):
//   row groups g = rows 8g..8g+7, stored one after another; group g holds its nb = n_in / 32
//   blocks in order; each block is
//     fp16 d[8];     the 32-element block scales of rows 8g..8g+7 (same bits as in the GGUF)
//     uint8 q[...];  chunks of 32 bytes; in every chunk, byte 4r + e belongs to row r (0..7)
//   Q4_0: q[128] = 4 chunks. Chunk c, byte 4r + e = the GGUF block's qs[4c + e] of row r,
//         unchanged: low nibble = element 4c + e, high nibble = element 16 + 4c + e
//         (nibble 0..15; the weight is nibble - 8).
//   Q8_0: q[256] = 8 chunks. Chunk c, byte 4r + e = uint8(qs[4c + e] of row r + 128).
//   Q5_0: Q4_0's chunks, after 32 bytes of fifth bits (block_q5_0x8 below).
//   IQ4_NL: Q4_0's layout; the nibbles index kIq4nlValues.
// A packed block has the byte size of the 8 original blocks (8 x 18 = 144, 8 x 34 = 272,
// 8 x 22 = 176), so a packed matrix has the size of the original one.
//
// Weights are stored unsigned (the dot instruction is u8 x s8). A block's integer dot is exact
// when its accumulator starts at -kOffset * sum(x_q), x_q the token's Q8_0 activation quants of
// that block (PreparedActivations::qsum, once per batch), kOffset = 8 (Q4_0), 128 (Q8_0), 16
// (Q5_0); IQ4_NL's kernels look the nibbles up as value + 128 (x86) or as signed values (NEON).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../tensor_types.h"

namespace el::kernels {

struct PreparedActivations;

constexpr int kPackRows = 8;  // rows per group

struct block_q4_0x8 {
  fp16_t d[kPackRows];
  uint8_t q[kPackRows * QK4_0 / 2];
};
static_assert(sizeof(block_q4_0x8) == kPackRows * sizeof(block_q4_0), "block_q4_0x8 layout");

struct block_q8_0x8 {
  fp16_t d[kPackRows];
  uint8_t q[kPackRows * QK8_0];
};
static_assert(sizeof(block_q8_0x8) == kPackRows * sizeof(block_q8_0), "block_q8_0x8 layout");

// Q5_0: Q4_0's chunks of nibbles, plus the fifth bits: byte 4r + e of qh holds in bit 4h + c the
// fifth bit of row r's element 16h + 4c + e (the nibble's chunk c, low or high half h), so that
// one shift and one mask put a chunk half's fifth bits next to its nibbles. The stored weight
// is the unsigned 5-bit quant (nibble + 16 x fifth bit), the value that quant - 16.
struct block_q5_0x8 {
  fp16_t d[kPackRows];
  uint8_t qh[kPackRows * 4];
  uint8_t q[kPackRows * QK5_0 / 2];
};
static_assert(sizeof(block_q5_0x8) == kPackRows * sizeof(block_q5_0), "block_q5_0x8 layout");

// IQ4_NL: Q4_0's layout; a nibble n stands for kIq4nlValues[n] (the kernels look it up).
struct block_iq4_nlx8 {
  fp16_t d[kPackRows];
  uint8_t q[kPackRows * QK4_NL / 2];
};
static_assert(sizeof(block_iq4_nlx8) == kPackRows * sizeof(block_iq4_nl), "block_iq4_nlx8 layout");

// Q4_1 / Q5_1 (Q8_1 activations): Q4_0's / Q5_0's layout with the 8 rows' mins after their
// scales; the quants are stored unsigned and not offset (the weight is d x quant + m), and the
// kernels add m x the token block's s (d x its quant sum) per block.
struct block_q4_1x8 {
  fp16_t d[kPackRows];
  fp16_t m[kPackRows];
  uint8_t q[kPackRows * QK4_1 / 2];
};
static_assert(sizeof(block_q4_1x8) == kPackRows * sizeof(block_q4_1), "block_q4_1x8 layout");

struct block_q5_1x8 {
  fp16_t d[kPackRows];
  fp16_t m[kPackRows];
  uint8_t qh[kPackRows * 4];
  uint8_t q[kPackRows * QK5_1 / 2];
};
static_assert(sizeof(block_q5_1x8) == kPackRows * sizeof(block_q5_1), "block_q5_1x8 layout");

// What the unsigned stored weight is offset by (IQ4_NL: its values + 128, in the kernels that
// multiply unsigned bytes; the stored nibbles themselves are not offset).
constexpr int kPackOffsetQ4_0 = 8;
constexpr int kPackOffsetQ8_0 = 128;
constexpr int kPackOffsetQ5_0 = 16;
constexpr int kPackOffsetIQ4_NL = 128;

// True for the types this layout defines (Q4_0, Q8_0, Q5_0, IQ4_NL, Q4_1, Q5_1; packed_k.h's K-quants).
bool packable_type(TensorType t);

// Bytes of a packed matrix of n_out rows (a multiple of 8) of n_in elements: the GGUF size,
// except for the K-quants, whose packed blocks are larger (packed_k.h).
size_t packed_bytes(TensorType t, int64_t n_in, int64_t n_out);

// Repacks n_out rows (GGUF row-major blocks of `type`, n_in elements each) into dst, which
// holds packed_bytes(type, n_in, n_out) bytes. Any other type or row count is refused
// (el::Error, Internal): callers pack only what packable_type and n_out % 8 allow.
void repack(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst);
// The inverse, for tests: dst gets the original GGUF rows back, bit for bit.
void unpack(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst);

// Scalar reference over the packed layout, the readable spec of the SIMD kernels (and the
// fallback of paths without them). For the ng row groups starting at w (n elements per row)
// and tokens t0 .. t0 + nt - 1 of act (Q8_0 activations with their side arrays):
// out[t * out_stride + 8g + r] = (row r of group g) . (token t0 + t).
void packed_matmul_ref(TensorType type, int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0,
                       int nt, float* out, int64_t out_stride);

}  // namespace el::kernels
