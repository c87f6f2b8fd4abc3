// Private to kernels/x86: small AVX2 helpers shared by the x86 kernels (sums, fp16, loads, the
// Q8_0 rounding). Header-only with internal linkage, so each translation unit compiles its own
// copy with its own ISA flags.
#pragma once
#include <immintrin.h>

#include "../../tensor_types.h"

namespace el::kernels {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

inline float h2f(fp16_t h) { return _cvtsh_ss(h); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Round 32 floats (already scaled) to int8, in order, saturating at +-127/128.
inline __m256i round_pack_32(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(v0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(v1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(v2, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(v3, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  // packs work per 128-bit lane; the final permute restores element order
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// 32 floats by Q8_0's rule (ggml's x86 activation quantizer): *d = fp16(amax / 127), and the
// quants round-half-even(x * 127 / amax), returned as 32 bytes in order; *amax_out gets amax.
inline __m256i quantize_32_q8(const float* x, fp16_t* d, float* amax_out = nullptr) {
  const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
  const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
  const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3))));
  *d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
  if (amax_out) *amax_out = amax;
  const __m256 id = _mm256_set1_ps(amax != 0.f ? 127.f / amax : 0.f);
  return round_pack_32(_mm256_mul_ps(v0, id), _mm256_mul_ps(v1, id), _mm256_mul_ps(v2, id), _mm256_mul_ps(v3, id));
}

// 32 nibbles of a Q4_0 block as bytes 0..15: low nibbles first, then high nibbles.
inline __m256i nibbles_32(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

}  // namespace
}  // namespace el::kernels
