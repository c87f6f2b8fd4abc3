// Private to kernels/x86: the kernels over the K-quants' Packed8 blocks (packed_k.h), one row
// group (8 rows) x T tokens, for the walk of packed_driver.h. As packed_tiles.h's, a 4-byte dot
// of a chunk (4 elements of 8 rows) with the token's 4 matching activation bytes, broadcast,
// adds into the 8 rows' int32 lanes; here each sub-block's lanes are then multiplied by the 8
// rows' sub-block scales (one widening load) and added into the super-block's sums, so every
// integer is exact and the float steps come once per 256 elements.
//
// Dot, the 4-byte dot instruction: vpdpbusd (packed_vnni_dots.h) or, without VNNI, DotAvx2
// below. Header-only with internal linkage: each translation unit compiles its own copy.
#pragma once
#include <immintrin.h>

#include "../packed_k.h"
#include "packed_tiles.h"

namespace el::kernels {
namespace {

// acc + the 4-byte dots of u (unsigned, <= 15 here) and s (signed) per int32 lane: maddubs
// gives int16 pair sums (at most 2 x 15 x 128, no saturation) and madd adds the pairs.
struct DotAvx2 {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

template <int T>
using KTokens = PackedTokens<T, block_q8_K>;

// The 8 rows' bytes of one sub-block's scales (or mins) as int32 lanes.
inline __m256i row_bytes_u8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i row_bytes_s8(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Q4_K: per sub-block j of 32, four chunks of nibbles (low: elements 4c + e, high: 16 + 4c + e),
// eight dots per token, times the rows' scales; the mins meet the token's sums of 32 quants.
template <class Dot>
struct KDotsQ4_K {
  using Block = block_q4_Kx8;
  static constexpr bool kMins = true;
  template <int T>
  static void dots(const Block& b, const KTokens<T>& x, int i, __m256i isum[T], __m256i msum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = _mm256_setzero_si256();
    for (int j = 0; j < QK_K / 32; ++j) {
      __m256i s[T];
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = load256(b.q[j] + 32 * c);
        const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        for (int t = 0; t < T; ++t) {
          s[t] = Dot::dot(s[t], lo, bcast4(x.a[t][i].qs, 32 * j + 4 * c));
          s[t] = Dot::dot(s[t], hi, bcast4(x.a[t][i].qs, 32 * j + 16 + 4 * c));
        }
      }
      const __m256i sc = row_bytes_u8(b.sc[j]);
      for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s[t], sc));
    }
    // The token's sums of 32 quants, pair j of its 16 sums of 16 in lane j.
    for (int t = 0; t < T; ++t) {
      const __m256i bsum32 = _mm256_madd_epi16(load256(x.a[t][i].bsums), _mm256_set1_epi16(1));
      for (int j = 0; j < QK_K / 32; ++j) {
        const __m256i bj = _mm256_permutevar8x32_epi32(bsum32, _mm256_set1_epi32(j));
        msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(row_bytes_u8(b.m[j]), bj));
      }
    }
  }
};

// Q3_K: per sub-block s of 16, one chunk of 2-bit parts (bits 2k: elements 4k + e) joined by
// their high bits (bit 4 (s % 2) + k of the pair's qh chunk, moved to bit 2); the sums start at
// -4 x the token's sum of the 16 quants, for the quant's - 4.
template <class Dot>
struct KDotsQ3_K {
  using Block = block_q3_Kx8;
  static constexpr bool kMins = false;
  // Bit B of every byte of h, at bit 2 (16-bit shifts: bit 2 of a byte then comes from the same byte).
  template <int B>
  static __m256i high(__m256i h) {
    const __m256i m = _mm256_set1_epi8(4);
    if constexpr (B < 2) return _mm256_and_si256(_mm256_slli_epi16(h, 2 - B), m);
    else if constexpr (B == 2) return _mm256_and_si256(h, m);
    else return _mm256_and_si256(_mm256_srli_epi16(h, B - 2), m);
  }
  template <int T, int S, int K>
  static void chunk(__m256i q, __m256i h, const KTokens<T>& x, int i, __m256i s[T]) {
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * K), _mm256_set1_epi8(3));
    const __m256i u = _mm256_or_si256(low, high<4 * (S % 2) + K>(h));
    for (int t = 0; t < T; ++t) s[t] = Dot::dot(s[t], u, bcast4(x.a[t][i].qs, 16 * S + 4 * K));
  }
  template <int T, int S>
  static void sub_blocks(const Block& b, const KTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i q = load256(b.q2[S]), h = load256(b.qh[S / 2]);
    __m256i s[T];
    for (int t = 0; t < T; ++t) s[t] = _mm256_set1_epi32(-kPackOffsetQ3_K * x.a[t][i].bsums[S]);
    chunk<T, S, 0>(q, h, x, i, s);
    chunk<T, S, 1>(q, h, x, i, s);
    chunk<T, S, 2>(q, h, x, i, s);
    chunk<T, S, 3>(q, h, x, i, s);
    const __m256i sc = row_bytes_s8(b.sc[S]);
    for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s[t], sc));
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(b, x, i, isum);
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& x, int i, __m256i isum[T], __m256i*) {
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    sub_blocks<T, 0>(b, x, i, isum);
  }
};

// The Groups of packed_driver.h for KDots: per super-block, float(isum) x (row d x token d),
// minus float(msum) x (row dmin x token d) for the types with mins.
template <class KDots>
struct KGroups {
  using Block = typename KDots::Block;
  using Act = block_q8_K;
  template <int T>
  static void run(int nb, const Block* w, const KTokens<T>& x, float* out, int64_t os) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; ++i) {
      __m256i isum[T], msum[T];
      KDots::template dots<T>(w[i], x, i, isum, msum);
      const __m256 dw = row_scales(w[i].d);
      for (int t = 0; t < T; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(x.a[t][i].d)), acc[t]);
      if constexpr (KDots::kMins) {
        const __m256 dm = row_scales(w[i].dmin);
        for (int t = 0; t < T; ++t)
          acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(dm, _mm256_set1_ps(x.a[t][i].d)), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * os, acc[t]);
  }
};

}  // namespace
}  // namespace el::kernels
