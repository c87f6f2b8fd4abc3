// Private to kernels/x86: the register-tile skeleton of the Packed8 kernels (packed.h),
// shared by packed_vnni.cpp and packed_avx2.cpp, which differ only in how a block's bytes
// are multiplied. Header-only with internal linkage: each translation unit compiles its own
// copy with its own ISA flags.
//
// A packed chunk holds 4 consecutive elements of 8 rows (lane r = bytes 4r..4r+3), so a
// 4-byte dot against the token's 4 matching activation bytes, broadcast to every lane, adds
// 4 products of each row into that row's int32 lane. After a 32-element block the 8 lanes
// are the 8 rows' exact integer dots (starting from -offset x the token's quant sum undoes
// the unsigned storage); one convert and one FMA scale them by row scale x token scale into
// 8 float lanes, which are the 8 outputs: no horizontal sums.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../matmul.h"
#include "../packed.h"
#include "../packed_driver.h"

namespace el::kernels {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Activation bytes j .. j + 3 of a token's block, in every lane.
inline __m256i bcast4(const int8_t* qs, int j) {
  int32_t v;
  std::memcpy(&v, qs + j, 4);
  return _mm256_set1_epi32(v);
}

// The 8 row scales of a packed block as floats.
inline __m256 row_scales(const fp16_t* d) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)));
}

// Dots, the multiply policy (one per ISA and weight type):
//   using Block = block_q4_0x8, ...; (using Act = block_q8_1; for blocks with mins)
//   template <int T> static void dots(const Block& b, const PackedTokens<T, Act>& x, int i, __m256i isum[T])
//     sets isum[t] to the 8 rows' exact integer dots of block b with block i of token t.

// Weights are prefetched this many blocks ahead in tiles of at least kPrefetchMinTokens tokens:
// the groups of a matrix are one stream, and measured with weights from memory (bench:peak,
// Q4_0 on Zen 5), the hardware prefetcher alone left the kernels waiting on loads (without the
// prefetch: this kernel at 4 tokens 12%, packed_avx512.cpp's at 8 tokens 20-25% more CPU time);
// with 1 or 2 tokens (memory-bound) it kept up, and the prefetches cost more than they saved.
constexpr int kPrefetchBlocks = 8;
constexpr int kPrefetchMinTokens = 4;

// Prefetches block i + Ahead of the stream at w into L1. Past the last group it touches the
// bytes after the matrix, which a prefetch may (it never faults).
template <int Ahead, class Block>
inline void prefetch_block(const Block* w, int i) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(w) + uintptr_t(i + Ahead) * sizeof(Block);
  for (uintptr_t o = 0; o < sizeof(Block); o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

// The Groups of packed_driver.h for a Dots policy: one row group (8 rows) x T tokens. Blocks
// with mins (Q4_1 / Q5_1, Q8_1 activations) add the 8 rows' m x the token block's sd.
template <class Dots>
struct Groups {
  using Block = typename Dots::Block;
  using Act = act_of<Dots>;
  template <int T>
  static void run(int nb, const Block* w, const PackedTokens<T, Act>& x, float* out, int64_t os) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; ++i) {
      if constexpr (T >= kPrefetchMinTokens) prefetch_block<kPrefetchBlocks>(w, i);
      __m256i isum[T];
      Dots::template dots<T>(w[i], x, i, isum);
      const __m256 dw = row_scales(w[i].d);
      for (int t = 0; t < T; ++t)
        acc[t] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_broadcast_ss(x.d[t] + i)), acc[t]);
      if constexpr (std::is_same_v<Act, block_q8_1>) {
        const __m256 m = row_scales(w[i].m);
        for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(x.sd[t] + i), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * os, acc[t]);
  }
};

}  // namespace
}  // namespace el::kernels
