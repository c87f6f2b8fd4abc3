// Private to kernels/x86: the vpdpbusd integer dots of one Packed8 block (packed.h) with T
// tokens, for the Groups of packed_tiles.h. Used by packed_vnni.cpp (VEX encoding) and
// packed_avx512.cpp (EVEX, for the groups and small tiles its 16-row registers leave).
#pragma once
#include "packed_tiles.h"
#include "vnni_dpbusd.h"

namespace el::kernels {
namespace {

// The integer dots of one packed block with T tokens' blocks i: each token's accumulator
// starts at -offset x sum(x_q), then takes one vpdpbusd per chunk (Q4_0: per nibble half).
// One dependent chain per token is enough: measured, splitting it did not speed up even the
// one-token GEMV, whose consecutive blocks already overlap.
struct BlockQ4_0 {
  using Block = block_q4_0x8;
  template <int T>
  static void dots(const Block& b, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int t = 0; t < T; ++t) isum[t] = _mm256_set1_epi32(-kPackOffsetQ4_0 * x.s[t][i]);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(b.q + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4);                         // elements 4c + e
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);  // elements 16 + 4c + e
      for (int t = 0; t < T; ++t) {
        isum[t] = dpbusd(isum[t], lo, bcast4(x.a[t][i].qs, 4 * c));
        isum[t] = dpbusd(isum[t], hi, bcast4(x.a[t][i].qs, 16 + 4 * c));
      }
    }
  }
};

struct BlockQ8_0 {
  using Block = block_q8_0x8;
  template <int T>
  static void dots(const Block& b, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = _mm256_set1_epi32(-kPackOffsetQ8_0 * x.s[t][i]);
    for (int c = 0; c < 8; ++c) {
      const __m256i q = load256(b.q + 32 * c);
      for (int t = 0; t < T; ++t) isum[t] = dpbusd(isum[t], q, bcast4(x.a[t][i].qs, 4 * c));
    }
  }
};

}  // namespace
}  // namespace el::kernels
