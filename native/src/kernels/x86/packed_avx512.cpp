// AVX-512 VNNI kernels over Packed8 weights (packed.h), Q4_0 and Q8_0 (and the K-quants of
// packed_k.h, through packed_k_tiles.h's kernels on ZmmPair below), for CPUs with full-width
// 512-bit units (Zen 5, Sapphire Rapids): one zmm holds the same chunk of two row groups, so one
// vpdpbusd adds 4 products to each of 16 rows, twice the work of packed_vnni.cpp's per
// instruction, and the 32 vector registers hold a tile of 8 tokens. The arithmetic is
// packed_vnni.cpp's lane by lane (exact integer dots, the same float steps in the same order),
// so the results are the same bits. The AVX-VNNI kernel takes a group left over (odd group
// count) and every tile of fewer than 5 tokens, decode included: measured on Zen 5, the wide
// registers are slower there (2 tokens: 116 against 82 us for 4864 Q4_0 rows of 896) and
// faster from 5 on (8 tokens: 156 against 271 us). Compiled with AVX-512 F/BW/VL/DQ/VNNI, and
// only called after dispatch.cpp has seen those features.
#if defined(__x86_64__)
// gcc 12's 512-bit intrinsics start from _mm512_undefined_*, which it then reports as
// "may be used uninitialized" wherever they are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cstring>

#include "../paths.h"
#include "packed_vnni_dots.h"

namespace el::kernels {
namespace {

// The same 32 bytes of two row groups' blocks (lower half: first group).
inline __m512i load_pair(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(hi), 1);
}

// Activation bytes j .. j + 3 of a token's block, in every lane (the K-quant kernels' ZmmPair).
inline __m512i bcast4_512(const int8_t* qs, int j) {
  int32_t v;
  std::memcpy(&v, qs + j, 4);
  return _mm512_set1_epi32(v);
}

// The 16 row scales of two groups' blocks as floats.
inline __m512 row_scales_pair(const fp16_t* lo, const fp16_t* hi) {
  const __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
  return _mm512_cvtph_ps(h);
}

// vpdpbusd acc, w, {4 bytes at p, in every lane}: the activation bytes as an embedded broadcast
// operand. gcc emits a separate vpbroadcastd for _mm512_set1_epi32 of a load: two instructions
// where one suffices, in the loop whose front end is the limit (64 of them per block and tile).
inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t*>(p)));
  return acc;
}

// isum[t] = -Offset x the token's quant sum of block i, in the vector unit: one broadcast load
// and one shift (Offset is a power of two) into a register that then starts at 0 - that.
template <int Shift>
inline __m512i offset_start(const int32_t* s) {
  __m512i v = _mm512_set1_epi32(*s);
  asm("" : "+v"(v));  // keeps gcc from folding the shift back into scalar code (store, reload)
  return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(v, Shift));
}

// The integer dots of two groups' block i (b0, b1) with T tokens' blocks i, as BlockQ4_0 /
// BlockQ8_0 of packed_vnni_dots.h do for one group.
struct PairQ4_0 {
  using Block = block_q4_0x8;
  template <int T>
  static void dots(const Block& b0, const Block& b1, const PackedTokens<T>& x, int i, __m512i isum[T]) {
    static_assert(kPackOffsetQ4_0 == 1 << 3, "offset_start shifts by 3");
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int t = 0; t < T; ++t) isum[t] = offset_start<3>(x.s[t] + i);
    for (int c = 0; c < 4; ++c) {
      const __m512i q = load_pair(b0.q + 32 * c, b1.q + 32 * c);
      const __m512i lo = _mm512_and_si512(q, m4);                         // elements 4c + e
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);  // elements 16 + 4c + e
      for (int t = 0; t < T; ++t) {
        isum[t] = dpbusd_bcast(isum[t], lo, x.a[t][i].qs + 4 * c);
        isum[t] = dpbusd_bcast(isum[t], hi, x.a[t][i].qs + 16 + 4 * c);
      }
    }
  }
};

struct PairQ8_0 {
  using Block = block_q8_0x8;
  template <int T>
  static void dots(const Block& b0, const Block& b1, const PackedTokens<T>& x, int i, __m512i isum[T]) {
    static_assert(kPackOffsetQ8_0 == 1 << 7, "offset_start shifts by 7");
    for (int t = 0; t < T; ++t) isum[t] = offset_start<7>(x.s[t] + i);
    for (int c = 0; c < 8; ++c) {
      const __m512i q = load_pair(b0.q + 32 * c, b1.q + 32 * c);
      for (int t = 0; t < T; ++t) isum[t] = dpbusd_bcast(isum[t], q, x.a[t][i].qs + 4 * c);
    }
  }
};

// The Groups of packed_driver.h: two row groups (16 rows) x T tokens; Tail does one group.
// Both groups' streams are prefetched (packed_tiles.h): the second's runs on into the next pair.
template <class Pair, class Single>
struct PairGroups {
  using Block = typename Pair::Block;
  using Tail = Groups<Single>;
  static constexpr int kGroups = 2;
  static constexpr int kTileTokens = 8;
  static constexpr int kMinWideTokens = 5;
  template <int T>
  static void run(int nb, const Block* w, const PackedTokens<T>& x, float* out, int64_t os) {
    const Block* w1 = w + nb;  // the second group's blocks follow the first's
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < nb; ++i) {
      if (i + kPrefetchBlocks < nb) prefetch_block<kPrefetchBlocks>(w, i);
      prefetch_block<kPrefetchBlocks>(w1, i);
      __m512i isum[T];
      Pair::template dots<T>(w[i], w1[i], x, i, isum);
      const __m512 dw = row_scales_pair(w[i].d, w1[i].d);
      for (int t = 0; t < T; ++t)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(x.d[t][i])), acc[t]);
    }
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + t * os, acc[t]);
  }
};

// The registers of packed_k_tiles.h's K-quant kernels for two consecutive row groups (16 rows):
// the same bytes of both groups' blocks in one zmm, the second group's `delta` bytes after the first's.
struct ZmmPair {
  using I = __m512i;
  using F = __m512;
  static constexpr int kGroups = 2;
  ptrdiff_t delta;
  explicit ZmmPair(ptrdiff_t d) : delta(d) {}
  // 8 bytes at p and the same 8 of the second group.
  __m128i pair8(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)),
                              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + delta)));
  }
  I load(const uint8_t* p) const { return load_pair(p, p + delta); }
  I rows_u8(const uint8_t* p) const { return _mm512_cvtepu8_epi32(pair8(p)); }
  I rows_s8(const int8_t* p) const { return _mm512_cvtepi8_epi32(pair8(p)); }
  F rows_f16(const fp16_t* p) const {
    return row_scales_pair(p, reinterpret_cast<const fp16_t*>(reinterpret_cast<const uint8_t*>(p) + delta));
  }
  static I bcast4(const int8_t* qs, int j) { return bcast4_512(qs, j); }
  static I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I lane(__m256i v, int k) { return _mm512_permutexvar_epi32(_mm512_set1_epi32(k), _mm512_castsi256_si512(v)); }
  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t x) { return _mm512_set1_epi32(x); }
  static I bytes(char x) { return _mm512_set1_epi8(x); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I mullo(I a, I b) { return _mm512_mullo_epi32(a, b); }
  template <int N>
  static I srli16(I a) { return _mm512_srli_epi16(a, N); }
  template <int N>
  static I slli16(I a) { return _mm512_slli_epi16(a, N); }
  static I srli32(I a, int n) { return _mm512_srli_epi32(a, unsigned(n)); }
  static F fzero() { return _mm512_setzero_ps(); }
  static F fmadd(I isum, F scale, F acc) { return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc); }
  static F fnmadd(I isum, F scale, F acc) { return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc); }
  static F scaled(F rows, float x) { return _mm512_mul_ps(rows, _mm512_set1_ps(x)); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
};

// Two row groups x up to 8 tokens; as PairGroups, the 256-bit kernel takes a group left over
// and every tile of fewer than 5 tokens.
template <template <class> class KDots>
struct KPairGroups : KGroupsOf<ZmmPair, KDots> {
  using Tail = KGroups<DotVnni, KDots>;
  static constexpr int kTileTokens = 8;
  static constexpr int kMinWideTokens = 5;
};

}  // namespace

namespace detail {

void install_packed_avx512(KernelSet& ks) {
  ks.by_type[uint32_t(TensorType::Q4_0)].packed = packed_matmul<PairGroups<PairQ4_0, BlockQ4_0>>;
  ks.by_type[uint32_t(TensorType::Q8_0)].packed = packed_matmul<PairGroups<PairQ8_0, BlockQ8_0>>;
  // One row group at a time (256-bit, EVEX-encoded), as packed_vnni.cpp.
  ks.by_type[uint32_t(TensorType::Q5_0)].packed = packed_matmul<Groups<BlockQ5_0>>;
  ks.by_type[uint32_t(TensorType::IQ4_NL)].packed = packed_matmul<Groups<BlockIQ4_NL>>;
  ks.by_type[uint32_t(TensorType::Q4_1)].packed = packed_matmul<Groups<BlockQ4_1>>;
  ks.by_type[uint32_t(TensorType::Q5_1)].packed = packed_matmul<Groups<BlockQ5_1>>;
  ks.by_type[uint32_t(TensorType::Q4_K)].packed = packed_matmul<KPairGroups<KDotsQ4_K>>;
  ks.by_type[uint32_t(TensorType::Q3_K)].packed = packed_matmul<KPairGroups<KDotsQ3_K>>;
  ks.by_type[uint32_t(TensorType::Q5_K)].packed = packed_matmul<KPairGroups<KDotsQ5_K>>;
  ks.by_type[uint32_t(TensorType::Q2_K)].packed = packed_matmul<KPairGroups<KDotsQ2_K>>;
  ks.by_type[uint32_t(TensorType::Q6_K)].packed = packed_matmul<KPairGroups<KDotsQ6_K>>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
