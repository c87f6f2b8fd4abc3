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

#include <type_traits>

#include "../packed_k.h"
#include "packed_tiles.h"

namespace el::kernels {
namespace {

// acc + the 4-byte dots of u (unsigned, <= 31 here) and s (signed) per int32 lane: maddubs
// gives int16 pair sums (at most 2 x 31 x 128, no saturation) and madd adds the pairs.
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

// Bit B of every byte of h, at bit P (16-bit shifts: for |B - P| < 8 and the masks here, the bit
// lands in the byte it came from).
template <int B, int P>
inline __m256i bit_to(__m256i h) {
  const __m256i m = _mm256_set1_epi8(char(1 << P));
  if constexpr (B < P) return _mm256_and_si256(_mm256_slli_epi16(h, P - B), m);
  else if constexpr (B == P) return _mm256_and_si256(h, m);
  else return _mm256_and_si256(_mm256_srli_epi16(h, B - P), m);
}

// The token's sums of 32 quants (Q4_K / Q5_K sub-blocks), pair j of its 16 sums of 16 in lane j.
inline __m256i bsums32(const block_q8_K& a) {
  return _mm256_madd_epi16(load256(a.bsums), _mm256_set1_epi16(1));
}

// Q4_K / Q5_K: per sub-block j of 32, four chunks of nibbles (low: elements 4c + e, high:
// 16 + 4c + e; Q5_K: with their fifth bits at bit 4), eight dots per token, times the rows'
// scales; the mins meet the token's sums of 32 quants.
template <class Dot, bool Fifth>
struct KDotsQ45_K {
  using Block = std::conditional_t<Fifth, block_q5_Kx8, block_q4_Kx8>;
  static constexpr bool kMins = true;
  template <int T, int C>
  static void chunk(const Block& b, int j, __m256i h, const KTokens<T>& x, int i, __m256i s[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i q = load256(b.q[j] + 32 * C);
    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (Fifth) {
      lo = _mm256_or_si256(lo, bit_to<C, 4>(h));
      hi = _mm256_or_si256(hi, bit_to<4 + C, 4>(h));
    }
    for (int t = 0; t < T; ++t) {
      s[t] = Dot::dot(s[t], lo, bcast4(x.a[t][i].qs, 32 * j + 4 * C));
      s[t] = Dot::dot(s[t], hi, bcast4(x.a[t][i].qs, 32 * j + 16 + 4 * C));
    }
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& x, int i, __m256i isum[T], __m256i msum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = _mm256_setzero_si256();
    for (int j = 0; j < QK_K / 32; ++j) {
      __m256i s[T];
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
      __m256i h = _mm256_setzero_si256();
      if constexpr (Fifth) h = load256(b.qh[j]);
      chunk<T, 0>(b, j, h, x, i, s);
      chunk<T, 1>(b, j, h, x, i, s);
      chunk<T, 2>(b, j, h, x, i, s);
      chunk<T, 3>(b, j, h, x, i, s);
      const __m256i sc = row_bytes_u8(b.sc[j]);
      for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s[t], sc));
    }
    for (int t = 0; t < T; ++t) {
      const __m256i b32 = bsums32(x.a[t][i]);
      for (int j = 0; j < QK_K / 32; ++j) {
        const __m256i bj = _mm256_permutevar8x32_epi32(b32, _mm256_set1_epi32(j));
        msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(row_bytes_u8(b.m[j]), bj));
      }
    }
  }
};
template <class Dot>
using KDotsQ4_K = KDotsQ45_K<Dot, false>;
template <class Dot>
using KDotsQ5_K = KDotsQ45_K<Dot, true>;

// Q2_K: per sub-block s of 16, one chunk of 2-bit parts (bits 2k: elements 4k + e), times the
// rows' 4-bit scales (low nibbles of sm); the mins (high nibbles) meet the token's sums of 16.
template <class Dot>
struct KDotsQ2_K {
  using Block = block_q2_Kx8;
  static constexpr bool kMins = true;
  template <int T, int S>
  static void sub_blocks(const Block& b, const KTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i q = load256(b.q2[S]), m3 = _mm256_set1_epi8(3);
    const __m256i u[4] = {_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_srli_epi16(q, 2), m3),
                          _mm256_and_si256(_mm256_srli_epi16(q, 4), m3), _mm256_and_si256(_mm256_srli_epi16(q, 6), m3)};
    const __m256i sc = _mm256_and_si256(row_bytes_u8(b.sm[S]), _mm256_set1_epi32(0xF));
    for (int t = 0; t < T; ++t) {
      __m256i s = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) s = Dot::dot(s, u[k], bcast4(x.a[t][i].qs, 16 * S + 4 * k));
      isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s, sc));
    }
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(b, x, i, isum);
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& x, int i, __m256i isum[T], __m256i msum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = _mm256_setzero_si256();
    sub_blocks<T, 0>(b, x, i, isum);
    for (int t = 0; t < T; ++t) {
      const __m128i* bs = reinterpret_cast<const __m128i*>(x.a[t][i].bsums);
      const __m256i b16[2] = {_mm256_cvtepi16_epi32(_mm_loadu_si128(bs)), _mm256_cvtepi16_epi32(_mm_loadu_si128(bs + 1))};
      for (int s = 0; s < QK_K / 16; ++s) {
        const __m256i bj = _mm256_permutevar8x32_epi32(b16[s / 8], _mm256_set1_epi32(s % 8));
        msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(_mm256_srli_epi32(row_bytes_u8(b.sm[s]), 4), bj));
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
  template <int T, int S, int K>
  static void chunk(__m256i q, __m256i h, const KTokens<T>& x, int i, __m256i s[T]) {
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * K), _mm256_set1_epi8(3));
    const __m256i u = _mm256_or_si256(low, bit_to<4 * (S % 2) + K, 2>(h));
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
