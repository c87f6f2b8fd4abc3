// Private to kernels/x86: the 32-byte primitives of quant_dots.h with AVX2. Bytes multiply
// with maddubs (unsigned x signed) and widen with madd, as in avx2.cpp's other integer dots.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "avx2_common.h"

namespace el::kernels {
namespace {

struct Avx2QuantOps {
  using V = __m256i;
  using I = __m256i;
  using F = __m256;

  static V load(const uint8_t* p) { return load256(p); }
  static V nibbles(const uint8_t* qs) { return nibbles_32(qs); }
  // Byte j holds byte j / 8 of the bits; OR-ing every bit but j % 8 leaves 0xFF exactly where it is set.
  static V bits(const uint8_t* p4) {
    uint32_t x;
    std::memcpy(&x, p4, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(int(x)), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
  }
  static V field(V v, int shift, uint8_t mask) {
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(char(mask)));
  }
  static V field_up(V v, int shift, uint8_t mask) {
    return _mm256_and_si256(_mm256_sll_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(char(mask)));
  }
  static V flag(V v, int bit, uint8_t value) {
    const __m256i b = _mm256_set1_epi8(char(1 << bit));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, b), b), _mm256_set1_epi8(char(value)));
  }
  static V set1(uint8_t x) { return _mm256_set1_epi8(char(x)); }
  static V and_(V a, V b) { return _mm256_and_si256(a, b); }
  static V or_(V a, V b) { return _mm256_or_si256(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi8(a, b); }
  static V lookup(V table, V idx) { return _mm256_shuffle_epi8(table, idx); }

  static I zero() { return _mm256_setzero_si256(); }
  static I dot(I acc, V u, V s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
  // |a| . sign(s, a): maddubs needs its first operand unsigned.
  static I dot_ss(I acc, V a, V s) { return dot(acc, _mm256_sign_epi8(a, a), _mm256_sign_epi8(s, a)); }
  static I dot_scaled(I acc, V u, V s, int sc) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(short(sc))));
  }
  static I dot_scaled2(I acc, V u, V s, int sc0, int sc1) {
    const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(short(sc1)), _mm_set1_epi16(short(sc0)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale));
  }

  // Sixteen int16 scales: all of them, and the first / last eight in both 128-bit lanes.
  struct S {
    __m256i all, lo, hi;
  };
  static S scales16(__m128i bytes) {
    const __m256i all = _mm256_cvtepi8_epi16(bytes);
    const __m128i l = _mm256_castsi256_si128(all), h = _mm256_extracti128_si256(all, 1);
    return {all, _mm256_set_m128i(l, l), _mm256_set_m128i(h, h)};
  }
  static S scales16(const int8_t* sc) { return scales16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))); }
  static S scales16_words(const uint32_t* w, int sub) {
    const __m128i v = _mm_set_epi32(int(w[3]), int(w[2]), int(w[1]), int(w[0]));
    return scales16(_mm_sub_epi8(v, _mm_set1_epi8(char(sub))));
  }
  // Scales 2r and 2r + 1 spread over the low and the high lane's 16-bit words by one pshufb.
  static I dot_run(I acc, V u, V s, const S& sc, int r) {
    const int j = 2 * (r % 4);  // the pair's word within its eight
    const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(short(((2 * j + 3) << 8) | (2 * j + 2))),
                                          _mm_set1_epi16(short(((2 * j + 1) << 8) | (2 * j))));
    const __m256i scale = _mm256_shuffle_epi8(r < 4 ? sc.lo : sc.hi, pick);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale));
  }
  static int dot16(const int16_t* b, const S& sc) {
    return el::kernels::hsum(_mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), sc.all));
  }

  static F fzero() { return _mm256_setzero_ps(); }
  static F add(F x, F y) { return _mm256_add_ps(x, y); }
  static F fma(F acc, I isum, float scale) { return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(isum), acc); }
  static float hsum(F v) { return el::kernels::hsum(v); }
  static float f16(fp16_t h) { return h2f(h); }
};

}  // namespace
}  // namespace el::kernels
