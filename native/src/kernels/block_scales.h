// Private to kernels/: unpacking of the 6-bit Q4_K sub-block scales and mins.
// Declared static so each translation unit (compiled with its own ISA flags) keeps its own copy.
#pragma once
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

}  // namespace el::kernels
