// Private to kernels/x86: the 256-bit vpdpbusd (4-byte dot products, unsigned x signed, added
// into int32 lanes) in the encoding its translation unit is compiled for: EVEX with AVX-512
// VNNI + VL (Ice Lake, Zen 4, Zen 5), else VEX (AVX-VNNI: Alder Lake, N100, Zen 5). Same result.
#pragma once
#include <immintrin.h>

namespace el::kernels {
namespace {

inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#endif
}

}  // namespace
}  // namespace el::kernels
