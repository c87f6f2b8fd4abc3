// Private to kernels/x86: the vpdpbusd integer dots of one Packed8 block (packed.h) with T
// tokens, for the Groups of packed_tiles.h. Used by packed_vnni.cpp (VEX encoding) and
// packed_avx512.cpp (EVEX, for the groups and small tiles its 16-row registers leave).
#pragma once
#include <type_traits>

#include "packed_k_tiles.h"
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

// Q5_0: Q4_0's nibbles with their fifth bits (packed.h: bit 4h + c of each byte for chunk c,
// half h) moved to bit 4 by one 16-bit shift (a byte's bit 4 comes from the same byte for these
// shifts) and one mask: the unsigned 5-bit quants, offset 16.
template <int K>
inline __m256i fifth_bits(__m256i h) {
  const __m256i m = _mm256_set1_epi8(0x10);
  if constexpr (K < 4) return _mm256_and_si256(_mm256_slli_epi16(h, 4 - K), m);
  else if constexpr (K == 4) return _mm256_and_si256(h, m);
  else return _mm256_and_si256(_mm256_srli_epi16(h, K - 4), m);
}

struct BlockQ5_0 {
  using Block = block_q5_0x8;
  template <int T, int C>
  static void chunk(const Block& b, __m256i h, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i q = load256(b.q + 32 * C);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), fifth_bits<C>(h));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), fifth_bits<4 + C>(h));
    for (int t = 0; t < T; ++t) {
      isum[t] = dpbusd(isum[t], lo, bcast4(x.a[t][i].qs, 4 * C));
      isum[t] = dpbusd(isum[t], hi, bcast4(x.a[t][i].qs, 16 + 4 * C));
    }
  }
  template <int T>
  static void dots(const Block& b, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = _mm256_set1_epi32(-kPackOffsetQ5_0 * x.s[t][i]);
    const __m256i h = load256(b.qh);
    chunk<T, 0>(b, h, x, i, isum);
    chunk<T, 1>(b, h, x, i, isum);
    chunk<T, 2>(b, h, x, i, isum);
    chunk<T, 3>(b, h, x, i, isum);
  }
};

// Q4_1 / Q5_1 (Q8_1 activations): the unsigned quants as they are (no offset); Groups adds the
// mins' share.
template <bool Fifth>
struct BlockQx_1 {
  using Block = std::conditional_t<Fifth, block_q5_1x8, block_q4_1x8>;
  using Act = block_q8_1;
  template <int T, int C>
  static void chunk(const Block& b, __m256i h, const PackedTokens<T, Act>& x, int i, __m256i isum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i q = load256(b.q + 32 * C);
    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (Fifth) {
      lo = _mm256_or_si256(lo, fifth_bits<C>(h));
      hi = _mm256_or_si256(hi, fifth_bits<4 + C>(h));
    }
    for (int t = 0; t < T; ++t) {
      isum[t] = dpbusd(isum[t], lo, bcast4(x.a[t][i].qs, 4 * C));
      isum[t] = dpbusd(isum[t], hi, bcast4(x.a[t][i].qs, 16 + 4 * C));
    }
  }
  template <int T>
  static void dots(const Block& b, const PackedTokens<T, Act>& x, int i, __m256i isum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    __m256i h = _mm256_setzero_si256();
    if constexpr (Fifth) h = load256(b.qh);
    chunk<T, 0>(b, h, x, i, isum);
    chunk<T, 1>(b, h, x, i, isum);
    chunk<T, 2>(b, h, x, i, isum);
    chunk<T, 3>(b, h, x, i, isum);
  }
};
using BlockQ4_1 = BlockQx_1<false>;
using BlockQ5_1 = BlockQx_1<true>;

// IQ4_NL: each nibble looked up (pshufb) as its value + 128, an unsigned byte; offset 128.
inline __m256i iq4nl_table_u8() {
  alignas(16) static const uint8_t t[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
  const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  return _mm256_set_m128i(v, v);
}

struct BlockIQ4_NL {
  using Block = block_iq4_nlx8;
  template <int T>
  static void dots(const Block& b, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), table = iq4nl_table_u8();
    for (int t = 0; t < T; ++t) isum[t] = _mm256_set1_epi32(-kPackOffsetIQ4_NL * x.s[t][i]);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(b.q + 32 * c);
      const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(q, m4));
      const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
      for (int t = 0; t < T; ++t) {
        isum[t] = dpbusd(isum[t], lo, bcast4(x.a[t][i].qs, 4 * c));
        isum[t] = dpbusd(isum[t], hi, bcast4(x.a[t][i].qs, 16 + 4 * c));
      }
    }
  }
};

// The 4-byte dot of the K-quant kernels (packed_k_tiles.h): one vpdpbusd.
struct DotVnni {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) { return dpbusd(acc, u, s); }
};

}  // namespace
}  // namespace el::kernels
