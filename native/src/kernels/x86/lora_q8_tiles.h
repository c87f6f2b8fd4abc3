// Private to kernels/x86: the register tiles of the 8-bit LoRA kernels (kernels.h:
// lora_shrink_q8 / lora_expand_q8; drivers in lora_driver.h), shared by avx2.cpp and
// avx2_vnni.cpp, which differ only in how 4 bytes are dotted. Header-only with internal
// linkage: each translation unit compiles its own copy with its own ISA flags.
//
// Both layouts put 4 consecutive int8 weights of one rank (A) or one output (B) in a 4-byte
// lane, 8 lanes a vector, so a 4-byte dot against the activation's matching 4 bytes,
// broadcast to every lane, adds 4 products into each lane's int32: 8 ranks or 8 outputs come
// out in 8 lanes, with no horizontal sums. Integer sums are exact; the float operations are
// scalar.cpp's, in its order (mul, then one fma), so every path gives the same bits.
//
// A Dot policy supplies
//   static __m256i dot(__m256i acc, __m256i u, __m256i s)   acc + 4-byte dots of u (unsigned) x s
// and is given u = |w| (once per weight vector) and s = sign(x, w) (per token): u . s = w . x,
// and u <= 127 since quants are never -128.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../lora_driver.h"
#include "avx2_common.h"

namespace el::kernels {
namespace {

// The shrink's A stream (one token, one projection) is read whole by one tile: it asks for
// the lines kLoraPrefetchBytes ahead itself, up to the stream's end (lora_prefetch). The
// expand's prefetch is in the drivers, which know the slice of rows a call reads. Used by the
// F16 tiles in avx2.cpp too.
inline void prefetch_ahead(const void* at, int64_t bytes, const void* end) {
  lora_prefetch(static_cast<const char*>(at) + kLoraPrefetchBytes, end, bytes);
}

// 8 fp16 scales as floats.
inline __m256 load_f16x8_bytes(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 4 activation bytes in every 4-byte lane.
inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// The weight vector of 4-byte group g (8 lanes of 4 bytes), at byte `off` of the group's 8-bit
// region of `stride` bytes: the int8 quants, or for the 4-bit layout, which holds groups 2p and
// 2p + 1 in the nibbles of one region p (kernels.h), the nibbles n themselves. Those stand for
// n - 8, but the 4-bit tiles dot them as they are (unsigned, as the Dot policies want: u = n,
// s = x) and take 8 x (the sum of the activation bytes) off each integer sum once per block or
// chunk: the same exact sum of (n - 8) x, with no sign tricks.
template <int Bits>
inline __m256i lora_weights(const uint8_t* q, int g, int64_t stride, int64_t off) {
  if constexpr (Bits == 8) {
    return load256(q + g * stride + off);
  } else {
    const __m256i p = load256(q + (g / 2) * stride + off);
    return _mm256_and_si256(g % 2 ? _mm256_srli_epi16(p, 4) : p, _mm256_set1_epi8(15));
  }
}

// Bits 8: the 8-bit pool; 4: the 4-bit pool, whose B chunks the drivers address as LoraQ4Byte.
template <class Dot, int Bits = 8>
struct LoraQ8Tiles {
  using BElem = std::conditional_t<Bits == 8, uint8_t, LoraQ4Byte>;

  // One token's 4 bytes xb (in every lane) dotted with N weight vectors w (u = |w|, 8-bit only)
  // into sum; 4-bit: also xb's byte sum into s, for remove_nibble_offset.
  template <int N>
  static void dot_group(__m256i (&sum)[N], const __m256i (&w)[N], const __m256i (&u)[N], __m256i xb, __m256i& s) {
    if constexpr (Bits == 8) {
      for (int n = 0; n < N; ++n) sum[n] = Dot::dot(sum[n], u[n], _mm256_sign_epi8(xb, w[n]));
    } else {
      s = Dot::dot(s, _mm256_set1_epi8(1), xb);
      for (int n = 0; n < N; ++n) sum[n] = Dot::dot(sum[n], w[n], xb);
    }
  }
  // 4-bit: the nibbles n were dotted for n - 8, so take 8 x the activation byte sum off.
  template <int N>
  static void remove_nibble_offset(__m256i (&sum)[N], __m256i s) {
    if constexpr (Bits == 4)
      for (int n = 0; n < N; ++n) sum[n] = _mm256_sub_epi32(sum[n], _mm256_slli_epi32(s, 3));
  }

  // T tokens x V groups of 8 ranks from rank 8 * v0. Per A block, each group of 4 inputs g
  // is one weight vector per rank group (32 bytes at 2R + 4R * g + 32 * rank group), made
  // unsigned once and dotted with every token's 4 inputs; the block's integer sums are then
  // scaled by (token scale x rank scales) into one float accumulator per token and group.
  template <int T, int V>
  struct Shrink {
    static void run(int n_in, int R, const uint8_t* a, int v0, const block_q8_0* const* x, const float* coeff,
                    float* const* t) {
      const int nb = (n_in + kLoraQ8Block - 1) / kLoraQ8Block;
      const int64_t block_bytes = lora_a_block_bytes<Bits>(R);
      const int64_t group_bytes = 4 * int64_t(R);
      __m256 acc[T][V];
      for (int k = 0; k < T; ++k)
        for (int v = 0; v < V; ++v) acc[k][v] = _mm256_setzero_ps();
      const uint8_t* end = a + nb * block_bytes;
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = a + b * block_bytes;
        prefetch_ahead(blk, block_bytes, end);
        const uint8_t* q = blk + 2 * int64_t(R) + v0 * 32;
        __m256i sum[T][V];
        for (int k = 0; k < T; ++k)
          for (int v = 0; v < V; ++v) sum[k][v] = _mm256_setzero_si256();
        __m256i sx[T];  // 4-bit: each token's activation byte sum, in every lane
        for (int k = 0; k < T; ++k) sx[k] = _mm256_setzero_si256();
        for (int g = 0; g < kLoraQ8Block / 4; ++g) {
          __m256i w[V], u[V];
          for (int v = 0; v < V; ++v) {
            w[v] = lora_weights<Bits>(q, g, group_bytes, v * 32);
            if constexpr (Bits == 8) u[v] = _mm256_sign_epi8(w[v], w[v]);
          }
          for (int k = 0; k < T; ++k) dot_group(sum[k], w, u, bcast4(x[k][b].qs + 4 * g), sx[k]);
        }
        for (int k = 0; k < T; ++k) remove_nibble_offset(sum[k], sx[k]);
        __m256 d[V];
        for (int v = 0; v < V; ++v) d[v] = load_f16x8_bytes(blk + 16 * (v0 + v));
        for (int k = 0; k < T; ++k) {
          const __m256 dx = _mm256_set1_ps(h2f(x[k][b].d));
          for (int v = 0; v < V; ++v)
            acc[k][v] = _mm256_fmadd_ps(_mm256_mul_ps(dx, d[v]), _mm256_cvtepi32_ps(sum[k][v]), acc[k][v]);
        }
      }
      for (int k = 0; k < T; ++k) {
        const __m256 ck = _mm256_set1_ps(coeff[k]);
        for (int v = 0; v < V; ++v) _mm256_storeu_ps(t[k] + (v0 + v) * 8, _mm256_mul_ps(ck, acc[k][v]));
      }
    }
  };

  // T tokens x C chunks of 8 outputs from output o (chunk data from b). Per chunk, each group
  // of 4 ranks g is one weight vector (32 bytes at 16 + 32 * g), made unsigned once and
  // dotted with every token's 4 quantized ranks; then y = fma(t.d[k] * scales, sum, y).
  template <int T, int C>
  struct Expand {
    static void run(int R, const BElem* chunk, LoraQ8T t, float* const* y, int64_t o) {
      const uint8_t* b = reinterpret_cast<const uint8_t*>(chunk);
      const int64_t chunk_bytes = lora_b_chunk_bytes<Bits>(R);
      __m256i sum[T][C];
      for (int k = 0; k < T; ++k)
        for (int c = 0; c < C; ++c) sum[k][c] = _mm256_setzero_si256();
      const uint8_t* q = b + 2 * kLoraOutChunk;
      __m256i st[T];  // 4-bit: each token's quantized t byte sum, in every lane
      for (int k = 0; k < T; ++k) st[k] = _mm256_setzero_si256();
      for (int g = 0; g < R / 4; ++g) {
        __m256i w[C], u[C];
        for (int c = 0; c < C; ++c) {
          w[c] = lora_weights<Bits>(q + c * chunk_bytes, g, 32, 0);
          if constexpr (Bits == 8) u[c] = _mm256_sign_epi8(w[c], w[c]);
        }
        for (int k = 0; k < T; ++k) dot_group(sum[k], w, u, bcast4(t.q[k] + 4 * g), st[k]);
      }
      for (int k = 0; k < T; ++k) remove_nibble_offset(sum[k], st[k]);
      __m256 d[C];
      for (int c = 0; c < C; ++c) d[c] = load_f16x8_bytes(b + c * chunk_bytes);
      for (int k = 0; k < T; ++k) {
        const __m256 dt = _mm256_set1_ps(t.d[k]);
        for (int c = 0; c < C; ++c) {
          float* yk = y[k] + o + c * 8;
          _mm256_storeu_ps(yk, _mm256_fmadd_ps(_mm256_mul_ps(dt, d[c]), _mm256_cvtepi32_ps(sum[k][c]),
                                               _mm256_loadu_ps(yk)));
        }
      }
    }
  };
};

}  // namespace
}  // namespace el::kernels
