// Private to kernels/: unpacking of the 6-bit Q4_K sub-block scales and mins.
// Declared static so each translation unit (compiled with its own ISA flags) keeps its own copy.
#pragma once
#include <cstdint>

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

// All eight scales and mins of one super-block.
static inline void q4k_scales_mins(const uint8_t* q, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 8; ++j) q4k_scale_min(j, q, &sc[j], &m[j]);
}

}  // namespace el::kernels
