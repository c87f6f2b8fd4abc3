// Private to kernels/: unpacking of packed K-quant sub-block scales (Q4_K / Q5_K: 6-bit scales
// and mins; Q3_K: 6-bit signed scales) and of the fifth bits of Q5_0 / Q5_1.
// Declared static so each translation unit (compiled with its own ISA flags) keeps its own copy.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../tensor_types.h"

namespace el::kernels {

// Sub-block j (0..7) of a Q4_K super-block: 6-bit scale and 6-bit min. Scales of sub-blocks
// 0..3 sit in the low 6 bits of bytes 0..3 (mins: bytes 4..7); sub-blocks 4..7 keep their
// low 4 bits in bytes 8..11 and their top 2 bits in the spare top bits of bytes 0..7.
static inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// All eight scales and mins of one super-block, with word-wide masks (little endian):
// the same unpacking as q4k_scale_min for j = 0..7, without a branch per sub-block.
static inline void q4k_scales_mins(const uint8_t* q, uint8_t sc[8], uint8_t m[8]) {
  uint32_t u[3];
  std::memcpy(u, q, 12);
  const uint32_t s_lo = u[0] & 0x3f3f3f3fu;
  const uint32_t s_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_lo = u[1] & 0x3f3f3f3fu;
  const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  std::memcpy(sc, &s_lo, 4);
  std::memcpy(sc + 4, &s_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// The sixteen Q3_K sub-block scales as stored (scale + 32), four per 32-bit word (little
// endian: sub-block 4w + b in byte b of word w). Low 4 bits: bytes 0..7, low nibbles for
// sub-blocks 0..7 and high nibbles for 8..15; top 2 bits: byte 8 + j % 4, bits 2 * (j / 4).
static inline void q3k_scale_words(const uint8_t* q, uint32_t out[4]) {
  uint32_t u[3];
  std::memcpy(u, q, 12);
  for (int w = 0; w < 4; ++w) {
    const uint32_t lo = (w < 2 ? u[w] : u[w - 2] >> 4) & 0x0f0f0f0fu;  // words 2, 3: the high nibbles
    out[w] = lo | (((u[2] >> (2 * w)) & 0x03030303u) << 4);
  }
}

// The same, signed (stored value - 32), one per sub-block.
static inline void q3k_scales(const uint8_t* q, int8_t sc[16]) {
  uint32_t w[4];
  q3k_scale_words(q, w);
  for (int j = 0; j < 16; ++j) sc[j] = int8_t(int((w[j / 4] >> (8 * (j % 4))) & 0xFF) - 32);
}

// Q5_0 / Q5_1: element j (0..31) of a block, 5 bits: its nibble (low half of qs[j] for j < 16,
// high half of qs[j - 16] otherwise) and bit j of qh as bit 4.
static inline int q5_quant(const uint8_t* qs, const uint8_t* qh4, int j) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  const int nib = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return nib | int(((qh >> j) & 1) << 4);
}

// Q4_K / Q5_K test quantizers: the 8 sub-block scales and mins as 6-bit codes of d and dmin,
// packed as q4k_scales_mins reads them; sets the block's scales, d and dmin.
template <typename Block>
static inline void q4k_set_scales_mins(Block& b, const float scale[8], const float minv[8]) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, minv[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = uint8_t(std::min(63, int(std::nearbyint(inv_scale * scale[j]))));
    const uint8_t lm = uint8_t(std::min(63, int(std::nearbyint(inv_min * minv[j]))));
    if (j < 4) {
      b.scales[j] = ls;
      b.scales[j + 4] = lm;
    } else {
      b.scales[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
      b.scales[j - 4] |= uint8_t((ls >> 4) << 6);
      b.scales[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  b.d = fp32_to_fp16(max_scale / 63.f);
  b.dmin = fp32_to_fp16(max_min / 63.f);
}

}  // namespace el::kernels
