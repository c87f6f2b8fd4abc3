// Private to kernels/x86: the kernels over the K-quants' Packed8 blocks (packed_k.h), G row
// groups (8 G rows) x T tokens, for the walk of packed_driver.h. As packed_tiles.h's, a 4-byte
// dot of a chunk (4 elements of 8 rows) with the token's 4 matching activation bytes, broadcast,
// adds into the rows' int32 lanes; here each sub-block's lanes are then multiplied by the rows'
// sub-block scales (one widening load) and added into the super-block's sums, so every integer
// is exact and the float steps come once per 256 elements.
//
// The kernels are written once over V, the registers: Ymm<Dot> (one group in 8 lanes; Dot, the
// 4-byte dot instruction: vpdpbusd, packed_vnni_dots.h, or without VNNI DotAvx2 below) or, on
// the AVX-512 path, ZmmPair (packed_avx512.cpp: the same bytes of two consecutive groups in one
// zmm, 16 lanes). Lane for lane they do the same integer and float steps, so the results are
// the same bits. Header-only with internal linkage: each translation unit compiles its own copy.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <type_traits>

#include "../packed_k.h"
#include "packed_tiles.h"

namespace el::kernels {
namespace {

// acc + the 4-byte dots of u (unsigned, <= 63 here) and s (signed) per int32 lane: maddubs
// gives int16 pair sums (at most 2 x 63 x 128, no saturation) and madd adds the pairs.
struct DotAvx2 {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

template <int T>
using KTokens = PackedTokens<T, block_q8_K>;

// One row group's registers. V's interface (I: int32 lanes, one per row; F: the float lanes):
//   I load(p)           the 32 bytes at p (ZmmPair: and those at p + the second group's offset)
//   I rows_u8(p), rows_s8(p)  the rows' bytes at p (8 per group) widened to int32
//   F rows_f16(p)       the rows' fp16 at p as floats
//   static I bcast4(qs, j)    activation bytes j .. j + 3 in every lane
//   static I dot(acc, u, s)   the 4-byte dot per lane
//   static I lane(v, k)       lane k of an 8-lane int32 vector in every lane
// and the plain bytewise / int32 / float operations below.
template <class Dot>
struct Ymm {
  using I = __m256i;
  using F = __m256;
  static constexpr int kGroups = 1;
  explicit Ymm(ptrdiff_t) {}
  I load(const uint8_t* p) const { return load256(p); }
  I rows_u8(const uint8_t* p) const {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  I rows_s8(const int8_t* p) const {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  F rows_f16(const fp16_t* p) const { return row_scales(p); }
  static I bcast4(const int8_t* qs, int j) { return el::kernels::bcast4(qs, j); }
  static I dot(I acc, I u, I s) { return Dot::dot(acc, u, s); }
  static I lane(__m256i v, int k) { return _mm256_permutevar8x32_epi32(v, _mm256_set1_epi32(k)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t x) { return _mm256_set1_epi32(x); }
  static I bytes(char x) { return _mm256_set1_epi8(x); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I mullo(I a, I b) { return _mm256_mullo_epi32(a, b); }
  template <int N>
  static I srli16(I a) { return _mm256_srli_epi16(a, N); }
  template <int N>
  static I slli16(I a) { return _mm256_slli_epi16(a, N); }
  static I srli32(I a, int n) { return _mm256_srli_epi32(a, n); }
  static F fzero() { return _mm256_setzero_ps(); }
  static F fmadd(I isum, F scale, F acc) { return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc); }
  static F fnmadd(I isum, F scale, F acc) { return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc); }
  static F scaled(F rows, float x) { return _mm256_mul_ps(rows, _mm256_set1_ps(x)); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
};

// Bits B .. B + W - 1 of every byte of h, at bits P .. P + W - 1 (16-bit shifts: for the fields
// here, the bits land in the byte they came from).
template <class V, int B, int P, int W = 1>
inline typename V::I bit_to(typename V::I h) {
  const typename V::I m = V::bytes(char(((1 << W) - 1) << P));
  if constexpr (B < P) return V::and_(V::template slli16<P - B>(h), m);
  else if constexpr (B == P) return V::and_(h, m);
  else return V::and_(V::template srli16<B - P>(h), m);
}

// The token's sums of 32 quants (Q4_K / Q5_K sub-blocks), pair j of its 16 sums of 16 in lane j;
// and its 16 sums of 16 widened, 8 per vector.
inline __m256i bsums32(const block_q8_K& a) { return _mm256_madd_epi16(load256(a.bsums), _mm256_set1_epi16(1)); }
inline __m256i bsums16(const block_q8_K& a, int half) {
  return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums) + half));
}

// Q4_K / Q5_K: per sub-block j of 32, four chunks of nibbles (low: elements 4c + e, high:
// 16 + 4c + e; Q5_K: with their fifth bits at bit 4), eight dots per token, times the rows'
// scales; the mins meet the token's sums of 32 quants.
template <class V, bool Fifth>
struct KDotsQ45_K {
  using I = typename V::I;
  using Block = std::conditional_t<Fifth, block_q5_Kx8, block_q4_Kx8>;
  static constexpr bool kMins = true;
  template <int T, int C>
  static void chunk(const V& v, const Block& b, int j, I h, const KTokens<T>& x, int i, I s[T]) {
    const I m4 = V::bytes(0x0F);
    const I q = v.load(b.q[j] + 32 * C);
    I lo = V::and_(q, m4), hi = V::and_(V::template srli16<4>(q), m4);
    if constexpr (Fifth) {
      lo = V::or_(lo, bit_to<V, C, 4>(h));
      hi = V::or_(hi, bit_to<V, 4 + C, 4>(h));
    }
    for (int t = 0; t < T; ++t) {
      s[t] = V::dot(s[t], lo, V::bcast4(x.a[t][i].qs, 32 * j + 4 * C));
      s[t] = V::dot(s[t], hi, V::bcast4(x.a[t][i].qs, 32 * j + 16 + 4 * C));
    }
  }
  template <int T>
  static void dots(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T], I msum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = V::zero();
    for (int j = 0; j < QK_K / 32; ++j) {
      I s[T];
      for (int t = 0; t < T; ++t) s[t] = V::zero();
      I h = V::zero();
      if constexpr (Fifth) h = v.load(b.qh[j]);
      chunk<T, 0>(v, b, j, h, x, i, s);
      chunk<T, 1>(v, b, j, h, x, i, s);
      chunk<T, 2>(v, b, j, h, x, i, s);
      chunk<T, 3>(v, b, j, h, x, i, s);
      const I sc = v.rows_u8(b.sc[j]);
      for (int t = 0; t < T; ++t) isum[t] = V::add(isum[t], V::mullo(s[t], sc));
    }
    for (int t = 0; t < T; ++t) {
      const __m256i b32 = bsums32(x.a[t][i]);
      for (int j = 0; j < QK_K / 32; ++j) msum[t] = V::add(msum[t], V::mullo(v.rows_u8(b.m[j]), V::lane(b32, j)));
    }
  }
};

// Q2_K: per sub-block s of 16, one chunk of 2-bit parts (bits 2k: elements 4k + e), times the
// rows' 4-bit scales (low nibbles of sm); the mins (high nibbles) meet the token's sums of 16.
template <class V>
struct KDotsQ2_K {
  using I = typename V::I;
  using Block = block_q2_Kx8;
  static constexpr bool kMins = true;
  template <int T, int S>
  static void sub_blocks(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T]) {
    const I q = v.load(b.q2[S]), m3 = V::bytes(3);
    const I u[4] = {V::and_(q, m3), V::and_(V::template srli16<2>(q), m3), V::and_(V::template srli16<4>(q), m3),
                    V::and_(V::template srli16<6>(q), m3)};
    const I sc = V::and_(v.rows_u8(b.sm[S]), V::set1(0xF));
    for (int t = 0; t < T; ++t) {
      I s = V::zero();
      for (int k = 0; k < 4; ++k) s = V::dot(s, u[k], V::bcast4(x.a[t][i].qs, 16 * S + 4 * k));
      isum[t] = V::add(isum[t], V::mullo(s, sc));
    }
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(v, b, x, i, isum);
  }
  template <int T>
  static void dots(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T], I msum[T]) {
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = V::zero();
    sub_blocks<T, 0>(v, b, x, i, isum);
    for (int t = 0; t < T; ++t) {
      const __m256i b16[2] = {bsums16(x.a[t][i], 0), bsums16(x.a[t][i], 1)};
      for (int s = 0; s < QK_K / 16; ++s)
        msum[t] = V::add(msum[t], V::mullo(V::srli32(v.rows_u8(b.sm[s]), 4), V::lane(b16[s / 8], s % 8)));
    }
  }
};

// Q3_K: per sub-block s of 16, one chunk of 2-bit parts (bits 2k: elements 4k + e) joined by
// their high bits (bit 4 (s % 2) + k of the pair's qh chunk, moved to bit 2); the sums start at
// -4 x the token's sum of the 16 quants, for the quant's - 4.
template <class V>
struct KDotsQ3_K {
  using I = typename V::I;
  using Block = block_q3_Kx8;
  static constexpr bool kMins = false;
  template <int T, int S, int K>
  static void chunk(I q, I h, const KTokens<T>& x, int i, I s[T]) {
    const I low = V::and_(V::template srli16<2 * K>(q), V::bytes(3));
    const I u = V::or_(low, bit_to<V, 4 * (S % 2) + K, 2>(h));
    for (int t = 0; t < T; ++t) s[t] = V::dot(s[t], u, V::bcast4(x.a[t][i].qs, 16 * S + 4 * K));
  }
  template <int T, int S>
  static void sub_blocks(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T]) {
    const I q = v.load(b.q2[S]), h = v.load(b.qh[S / 2]);
    I s[T];
    for (int t = 0; t < T; ++t) s[t] = V::set1(-kPackOffsetQ3_K * x.a[t][i].bsums[S]);
    chunk<T, S, 0>(q, h, x, i, s);
    chunk<T, S, 1>(q, h, x, i, s);
    chunk<T, S, 2>(q, h, x, i, s);
    chunk<T, S, 3>(q, h, x, i, s);
    const I sc = v.rows_s8(b.sc[S]);
    for (int t = 0; t < T; ++t) isum[t] = V::add(isum[t], V::mullo(s[t], sc));
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(v, b, x, i, isum);
  }
  template <int T>
  static void dots(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T], I*) {
    for (int t = 0; t < T; ++t) isum[t] = V::zero();
    sub_blocks<T, 0>(v, b, x, i, isum);
  }
};

// Q6_K: per sub-block pair j, sub-block 2j + H is half H's nibbles of four chunks joined by their
// high 2 bits (bits 2c of qh[j][32H ..], moved to bits 4, 5); the sums start at -32 x the token's
// sum of the 16 quants, for the quant's - 32.
template <class V>
struct KDotsQ6_K {
  using I = typename V::I;
  using Block = block_q6_Kx8;
  static constexpr bool kMins = false;
  template <int T, int H, int C>
  static void chunk(const V& v, const Block& b, int j, I h, const KTokens<T>& x, int i, I s[T]) {
    const I q = v.load(b.q[j] + 32 * C);
    const I low = V::and_(H ? V::template srli16<4>(q) : q, V::bytes(0x0F));
    const I u = V::or_(low, bit_to<V, 2 * C, 4, 2>(h));
    for (int t = 0; t < T; ++t) s[t] = V::dot(s[t], u, V::bcast4(x.a[t][i].qs, 32 * j + 16 * H + 4 * C));
  }
  template <int T, int H>
  static void half(const V& v, const Block& b, int j, const KTokens<T>& x, int i, I isum[T]) {
    const I h = v.load(b.qh[j] + 32 * H);
    I s[T];
    for (int t = 0; t < T; ++t) s[t] = V::set1(-kPackOffsetQ6_K * x.a[t][i].bsums[2 * j + H]);
    chunk<T, H, 0>(v, b, j, h, x, i, s);
    chunk<T, H, 1>(v, b, j, h, x, i, s);
    chunk<T, H, 2>(v, b, j, h, x, i, s);
    chunk<T, H, 3>(v, b, j, h, x, i, s);
    const I sc = v.rows_s8(b.sc[2 * j + H]);
    for (int t = 0; t < T; ++t) isum[t] = V::add(isum[t], V::mullo(s[t], sc));
  }
  template <int T>
  static void dots(const V& v, const Block& b, const KTokens<T>& x, int i, I isum[T], I*) {
    for (int t = 0; t < T; ++t) isum[t] = V::zero();
    for (int j = 0; j < QK_K / 32; ++j) {
      half<T, 0>(v, b, j, x, i, isum);
      half<T, 1>(v, b, j, x, i, isum);
    }
  }
};

// The lines of the next block (of this group, or the next group's first). A block is several
// streams (quants, high bits, scales) that the hardware prefetcher follows late: measured, Q6_K's
// one-token GEMV from memory (4864 x 16384) took 4.7 ms without this and 2.1 with it (the GGUF
// rows: 2.5), Q5_K's 2.2 and 1.9.
template <class Block>
inline void prefetch_block(const Block* b) {
  const char* p = reinterpret_cast<const char*>(b);
  for (size_t q = 0; q < sizeof(Block); q += 64) __builtin_prefetch(p + q);
}

// The Groups of packed_driver.h for KDots (V::kGroups row groups at a time): per super-block,
// float(isum) x (row d x token d), minus float(msum) x (row dmin x token d) for the types with mins.
template <class V, template <class> class KDots>
struct KGroupsOf {
  using D = KDots<V>;
  using Block = typename D::Block;
  using Act = block_q8_K;
  static constexpr int kGroups = V::kGroups;
  template <int T>
  static void run(int nb, const Block* w, const KTokens<T>& x, float* out, int64_t os) {
    using I = typename V::I;
    using F = typename V::F;
    const V v(ptrdiff_t(nb) * ptrdiff_t(sizeof(Block)));  // the next group's blocks follow this one's
    F acc[T];
    for (int t = 0; t < T; ++t) acc[t] = V::fzero();
    for (int i = 0; i < nb; ++i) {
      prefetch_block(w + i + 1);
      I isum[T], msum[T];
      D::template dots<T>(v, w[i], x, i, isum, msum);
      const F dw = v.rows_f16(w[i].d);
      for (int t = 0; t < T; ++t) acc[t] = V::fmadd(isum[t], V::scaled(dw, x.a[t][i].d), acc[t]);
      if constexpr (D::kMins) {
        const F dm = v.rows_f16(w[i].dmin);
        for (int t = 0; t < T; ++t) acc[t] = V::fnmadd(msum[t], V::scaled(dm, x.a[t][i].d), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) V::store(out + t * os, acc[t]);
  }
};

template <class V>
using KDotsQ4_K = KDotsQ45_K<V, false>;
template <class V>
using KDotsQ5_K = KDotsQ45_K<V, true>;

// One row group at a time (256-bit registers), Dot the dot instruction.
template <class Dot, template <class> class KDots>
using KGroups = KGroupsOf<Ymm<Dot>, KDots>;

}  // namespace
}  // namespace el::kernels
