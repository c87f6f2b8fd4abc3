// AVX2 kernel over Packed8 Q4_0 weights (packed.h) for CPUs without AVX-VNNI: vpmaddubsw
// multiplies the unsigned nibbles by the token's bytes and adds pairs into int16 lanes, and
// one vpmaddwd per block adds the pairs into the 8 rows' int32 lanes (see packed_tiles.h).
// A pair is at most 2 x 15 x 128 = 3840 in size, so the 8 pair sums of a block (4 chunks x
// 2 nibble halves) stay below 32767: int16 never saturates, and the block's dot is exact.
// Q8_0 + 128 would overflow those pairs (2 x 255 x 127), so this path packs Q4_0 (and the K-quants
// of packed_k_tiles.h, whose quants are small enough) only.
// Compiled with -mavx2 -mfma -mf16c and only called after dispatch.cpp has seen those features.
#if defined(__x86_64__)
#include "../paths.h"
#include "packed_k_tiles.h"
#include "packed_tiles.h"

namespace el::kernels {
namespace {

struct BlockQ4_0 {
  using Block = block_q4_0x8;
  template <int T>
  static void dots(const Block& b, const PackedTokens<T>& x, int i, __m256i isum[T]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i pairs[T];  // int16: per row, two lanes of pair sums
    for (int t = 0; t < T; ++t) pairs[t] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(b.q + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4);                         // elements 4c + e
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);  // elements 16 + 4c + e
      for (int t = 0; t < T; ++t) {
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(x.a[t][i].qs, 4 * c)),
                                           _mm256_maddubs_epi16(hi, bcast4(x.a[t][i].qs, 16 + 4 * c)));
        pairs[t] = _mm256_add_epi16(pairs[t], p);
      }
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < T; ++t)
      isum[t] = _mm256_add_epi32(_mm256_madd_epi16(pairs[t], ones), _mm256_set1_epi32(-kPackOffsetQ4_0 * x.s[t][i]));
  }
};

}  // namespace

namespace detail {

void install_packed_avx2(KernelSet& ks) {
  ks.by_type[uint32_t(TensorType::Q4_0)].packed = packed_matmul<Groups<BlockQ4_0>>;
  // The K-quants' quants are at most 63: their int16 pairs never saturate either.
  ks.by_type[uint32_t(TensorType::Q4_K)].packed = packed_matmul<KGroups<DotAvx2, KDotsQ4_K>>;
  ks.by_type[uint32_t(TensorType::Q3_K)].packed = packed_matmul<KGroups<DotAvx2, KDotsQ3_K>>;
  ks.by_type[uint32_t(TensorType::Q5_K)].packed = packed_matmul<KGroups<DotAvx2, KDotsQ5_K>>;
  ks.by_type[uint32_t(TensorType::Q2_K)].packed = packed_matmul<KGroups<DotAvx2, KDotsQ2_K>>;
  ks.by_type[uint32_t(TensorType::Q6_K)].packed = packed_matmul<KGroups<DotAvx2, KDotsQ6_K>>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
