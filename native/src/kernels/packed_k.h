// Packed8 for the K-quants (Q4_K, Q5_K, Q6_K, Q3_K, Q2_K): 256-element super-blocks of 8 rows interleaved in
// 4-byte groups as the 32-element types of packed.h, so the rows x tokens kernels are the same
// u8 x s8 4-way dot products (vpdpbusd, sdot), 8 rows per instruction, instead of a per-row
// decode of 2-, 3- and 4-bit fields and 6-bit scales for every block and token tile.
//
// The sub-block scales (and mins) are stored one byte per row and sub-block, [sub-block][row],
// so a kernel turns 8 rows' scales into 8 int32 lanes with one widening load. For the 6-bit
// scales that costs a few bytes per row and super-block over the GGUF block (packed_bytes):
//   Q4_K: 148 bytes for 144 (+2.8%, 4.63 bits per weight)
//   Q5_K: 180 bytes for 176 (+2.3%, 5.63 bits per weight)
//   Q3_K: 114 bytes for 110 (+3.6%, 3.56 bits per weight)
//   Q2_K:  84 bytes for  84 (its 4-bit scale and min already share a byte)
//   Q6_K: 210 bytes for 210 (its 8-bit scales already are bytes)
// A kernel computes, per row, token and super-block, the exact integers
//   isum = sum over sub-blocks s of scale_s x (sum of the sub-block's u x q8)
//   msum = sum over sub-blocks s of min_s x bsum_s                  (Q4_K, Q5_K, Q2_K)
// u the stored unsigned quant, q8 / bsum the token's Q8_K quants / their sums over the sub-block,
// and adds float(isum) x (d x token d) then subtracts float(msum) x (dmin x token d).
// Q3_K's quant is u - 4, Q6_K's u - 32: their sub-block sums start at -4 (-32) x bsum_s.
#pragma once
#include <cstdint>

#include "../tensor_types.h"
#include "packed.h"

namespace el::kernels {

// Q4_K: value = d x sc x u - dmin x m, u the nibble (0..15), sc and m 6-bit per 32 elements.
// Sub-block j (elements 32j .. 32j + 31) is a Q4_0 x8 block's quants (packed.h): 4 chunks of
// 32 bytes; in chunk c, byte 4r + e holds row r's element 32j + 4c + e in its low nibble and
// element 32j + 16 + 4c + e in its high nibble.
struct block_q4_Kx8 {
  fp16_t d[kPackRows];
  fp16_t dmin[kPackRows];
  uint8_t sc[QK_K / 32][kPackRows];  // [sub-block j][row r]
  uint8_t m[QK_K / 32][kPackRows];
  uint8_t q[QK_K / 32][4 * 32];
};
static_assert(sizeof(block_q4_Kx8) == kPackRows * (sizeof(block_q4_K) + 4), "block_q4_Kx8 layout");

// Q5_K: Q4_K's layout plus the fifth bits, u = nibble + 16 x fifth bit (0..31): in qh[j], bit
// 4h + c of byte 4r + e is the fifth bit of the element whose nibble is half h of chunk c's byte
// 4r + e (Q5_0's placement in packed.h), so one shift and one mask put it at bit 4.
struct block_q5_Kx8 {
  fp16_t d[kPackRows];
  fp16_t dmin[kPackRows];
  uint8_t sc[QK_K / 32][kPackRows];
  uint8_t m[QK_K / 32][kPackRows];
  uint8_t qh[QK_K / 32][32];
  uint8_t q[QK_K / 32][4 * 32];
};
static_assert(sizeof(block_q5_Kx8) == kPackRows * (sizeof(block_q5_K) + 4), "block_q5_Kx8 layout");

// Q6_K: value = d x sc x (u - 32), u = low 4 bits | high 2 bits << 4 (0..63), sc signed 8-bit per
// 16 elements. The low 4 bits are Q4_K's nibbles (q[j]: sub-blocks 2j in the low nibbles, 2j + 1
// in the high ones); the high 2 bits of the low nibbles' elements are in qh[j][0..31], of the
// high nibbles' in qh[j][32..63]: bits 2c, 2c + 1 of byte 4r + e for chunk c's byte 4r + e.
struct block_q6_Kx8 {
  fp16_t d[kPackRows];
  int8_t sc[QK_K / 16][kPackRows];
  uint8_t q[QK_K / 32][4 * 32];
  uint8_t qh[QK_K / 32][2 * 32];
};
static_assert(sizeof(block_q6_Kx8) == kPackRows * sizeof(block_q6_K), "block_q6_Kx8 layout");

// Q3_K: value = d x sc x (u - 4), u = 2-bit part | high bit << 2 (0..7), sc signed (-32..31) per
// 16 elements. Sub-block s (elements 16s .. 16s + 15): q2[s] is one chunk of 32 bytes whose byte
// 4r + e holds in bits 2k, 2k + 1 the 2-bit part of row r's element 16s + 4k + e; the high bits
// of sub-blocks 2p and 2p + 1 share qh[p]: bit b of byte 4r + e is row r's element 32p + 4b + e,
// so one shift and one mask put a chunk's high bits at bit 2, next to its 2-bit parts.
struct block_q3_Kx8 {
  fp16_t d[kPackRows];
  int8_t sc[QK_K / 16][kPackRows];  // [sub-block s][row r], signed (GGUF's stored value - 32)
  uint8_t q2[QK_K / 16][32];
  uint8_t qh[QK_K / 32][32];
};
static_assert(sizeof(block_q3_Kx8) == kPackRows * (sizeof(block_q3_K) + 4), "block_q3_Kx8 layout");

// Q2_K: value = d x sc x u - dmin x m, u 2 bits (0..3), sc and m 4 bits per 16 elements, kept
// as in the GGUF block (sc | m << 4), [sub-block s][row r]; q2[s] as Q3_K's.
struct block_q2_Kx8 {
  fp16_t d[kPackRows];
  fp16_t dmin[kPackRows];
  uint8_t sm[QK_K / 16][kPackRows];
  uint8_t q2[QK_K / 16][32];
};
static_assert(sizeof(block_q2_Kx8) == kPackRows * sizeof(block_q2_K), "block_q2_Kx8 layout");

constexpr int kPackOffsetQ3_K = 4;
constexpr int kPackOffsetQ6_K = 32;

// True for the K-quants this layout defines (Q4_K, Q5_K, Q6_K, Q3_K, Q2_K).
bool packable_k_type(TensorType t);

namespace detail {
// packed.cpp's repack / unpack / packed_matmul_ref for the K-quants (packed_k.cpp).
void repack_k(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst);
void unpack_k(TensorType type, const void* src, int64_t n_in, int64_t n_out, void* dst);
void packed_k_matmul_ref(TensorType type, int n, const uint8_t* w, int64_t ng, const PreparedActivations& act, int t0,
                         int nt, float* out, int64_t out_stride);
}  // namespace detail

}  // namespace el::kernels
