// Private to kernels/arm: the 8-bit LoRA pool's register tiles (kernels.h: lora_shrink_q8 /
// lora_expand_q8, and the 4-bit pool's), written once over a 4-byte dot primitive. neon.cpp instantiates them with
// LoraDot4Widening (armv8-a), neon_dotprod.cpp with sdot. Internal linkage, as neon_int8.h.
//
// A policy D supplies
//   D::Acc                                   an int32 accumulator of 4 lanes (any representation)
//   D::zero()                                an Acc of zeros
//   D::dot<L>(Acc&, int8x16_t w, int8x16_t x) lane i += dot(w bytes 4i..4i+3, x bytes 4L..4L+3)
//   D::sum(const Acc&) -> int32x4_t          the 4 lane sums
// Integer sums are exact, so the policy may group them as it likes; the float operations are
// scalar.cpp's, in its order (one mul, then one fma), so every tile gives the scalar bits.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>
#include <type_traits>

#include "../lora_driver.h"

namespace el::kernels {
namespace {

// Widening multiplies: the products of bytes 0..7 and 8..15 are pair-summed into two int32
// vectors as they come (vpadalq), and one pairwise add per block gives the 4-byte lanes.
// Products fit int16: quants are in [-127, 127].
struct LoraDot4Widening {
  struct Acc {
    int32x4_t lo, hi;  // lo lane i: bytes 2i, 2i+1 of 0..7; hi: the same of 8..15
  };
  static inline Acc zero() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
  template <int L>
  static inline void dot(Acc& acc, int8x16_t w, int8x16_t x) {
    const int8x16_t xb = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), L));
    acc.lo = vpadalq_s16(acc.lo, vmull_s8(vget_low_s8(w), vget_low_s8(xb)));
    acc.hi = vpadalq_s16(acc.hi, vmull_high_s8(w, xb));
  }
  static inline int32x4_t sum(const Acc& acc) { return vpaddq_s32(acc.lo, acc.hi); }
};

// 4 fp16 scales at p (any alignment) as floats.
inline float32x4_t lora_q8_scales4(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); }

// Calls f(std::integral_constant<int, L>) for L = 0..N-1 (dot lanes must be compile-time).
template <int N, class F, int L = 0>
inline void lora_q8_each_lane(F&& f) {
  if constexpr (L < N) {
    f(std::integral_constant<int, L>{});
    lora_q8_each_lane<N, F, L + 1>(static_cast<F&&>(f));
  }
}

// The weight vector of 4-byte group g (4 lanes of 4 int8) at byte `off` of the group's 8-bit
// region of `stride` bytes; the 4-bit layout holds groups 2p and 2p + 1 in the nibbles of one
// region p (kernels.h), each nibble n standing for n - 8.
template <int Bits>
inline int8x16_t lora_weights(const int8_t* q, int g, int64_t stride, int64_t off) {
  if constexpr (Bits == 8) {
    return vld1q_s8(q + g * stride + off);
  } else {
    const uint8x16_t p = vld1q_u8(reinterpret_cast<const uint8_t*>(q + (g / 2) * stride + off));
    const uint8x16_t n = g % 2 ? vshrq_n_u8(p, 4) : vandq_u8(p, vdupq_n_u8(15));
    return vsubq_s8(vreinterpretq_s8_u8(n), vdupq_n_s8(8));
  }
}

// Bits 8: the 8-bit pool; 4: the 4-bit pool, whose B chunks the drivers address as LoraQ4Byte.
template <class D, int Bits = 8>
struct LoraQ8Tiles {
  using BElem = std::conditional_t<Bits == 8, uint8_t, LoraQ4Byte>;

  // T tokens x V groups of 8 ranks from rank 8 * v0. Per A block each weight vector (4 ranks x
  // 4 inputs) is loaded once and used for all T tokens; 2V x T integer accumulators per block.
  template <int T, int V>
  struct Shrink {
    static void run(int n_in, int R, const uint8_t* a, int v0, const block_q8_0* const* x, const float* coeff,
                    float* const* t) {
      constexpr int QB = kLoraQ8Block;
      const int nb = (n_in + QB - 1) / QB;
      const int64_t block_bytes = lora_a_block_bytes<Bits>(R);
      float32x4_t acc[T][2 * V];
      for (int k = 0; k < T; ++k)
        for (int v = 0; v < 2 * V; ++v) acc[k][v] = vdupq_n_f32(0);
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = a + b * block_bytes;
        const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2 * R) + v0 * 32;
        typename D::Acc isum[T][2 * V];
        for (int k = 0; k < T; ++k)
          for (int v = 0; v < 2 * V; ++v) isum[k][v] = D::zero();
        for (int h = 0; h < 2; ++h) {  // input groups 4h..4h+3: one 16-byte activation load
          int8x16_t xv[T];
          for (int k = 0; k < T; ++k) xv[k] = vld1q_s8(x[k][b].qs + 16 * h);
          lora_q8_each_lane<4>([&](auto lane) {
            constexpr int L = decltype(lane)::value;
            int8x16_t w[2 * V];
            for (int v = 0; v < 2 * V; ++v) w[v] = lora_weights<Bits>(q, 4 * h + L, 4 * int64_t(R), 16 * v);
            for (int k = 0; k < T; ++k)
              for (int v = 0; v < 2 * V; ++v) D::template dot<L>(isum[k][v], w[v], xv[k]);
          });
        }
        float32x4_t d[2 * V];
        for (int v = 0; v < 2 * V; ++v) d[v] = lora_q8_scales4(blk + 2 * (8 * v0 + 4 * v));
        for (int k = 0; k < T; ++k) {
          const float32x4_t xd = vdupq_n_f32(fp16_to_fp32(x[k][b].d));
          for (int v = 0; v < 2 * V; ++v)
            acc[k][v] = vfmaq_f32(acc[k][v], vmulq_f32(xd, d[v]), vcvtq_f32_s32(D::sum(isum[k][v])));
        }
      }
      for (int k = 0; k < T; ++k)
        for (int v = 0; v < 2 * V; ++v) vst1q_f32(t[k] + 8 * v0 + 4 * v, vmulq_n_f32(acc[k][v], coeff[k]));
    }
  };

  // T tokens x C chunks of 8 outputs from output o. Per rank group each weight vector (4 outputs
  // x 4 ranks) is loaded once and used for all T tokens; 2C x T integer accumulators.
  template <int T, int C>
  struct Expand {
    static void run(int R, const BElem* chunk_elems, LoraQ8T t, float* const* y, int64_t o) {
      const uint8_t* b = reinterpret_cast<const uint8_t*>(chunk_elems);
      const int64_t chunk = lora_b_chunk_bytes<Bits>(R);
      typename D::Acc isum[T][2 * C];
      for (int k = 0; k < T; ++k)
        for (int c = 0; c < 2 * C; ++c) isum[k][c] = D::zero();
      // Ranks 4L..4L+3 of the 16 from rank j: weights at group j / 4 + L, t bytes at lane L.
      auto ranks = [&](int j, const int8x16_t (&xv)[T], auto lane) {
        constexpr int L = decltype(lane)::value;
        int8x16_t w[2 * C];
        for (int c = 0; c < 2 * C; ++c)
          w[c] = lora_weights<Bits>(reinterpret_cast<const int8_t*>(b + (c / 2) * chunk + 16), j / 4 + L, 32,
                                    (c % 2) * 16);
        for (int k = 0; k < T; ++k)
          for (int c = 0; c < 2 * C; ++c) D::template dot<L>(isum[k][c], w[c], xv[k]);
      };
      int j = 0;
      for (; j + 16 <= R; j += 16) {
        int8x16_t xv[T];
        for (int k = 0; k < T; ++k) xv[k] = vld1q_s8(t.q[k] + j);
        lora_q8_each_lane<4>([&](auto lane) { ranks(j, xv, lane); });
      }
      if (j < R) {  // R is a multiple of 8: 8 ranks left, loaded without reading past R
        int8x16_t xv[T];
        for (int k = 0; k < T; ++k) xv[k] = vcombine_s8(vld1_s8(t.q[k] + j), vdup_n_s8(0));
        lora_q8_each_lane<2>([&](auto lane) { ranks(j, xv, lane); });
      }
      for (int c = 0; c < 2 * C; ++c) {
        const float32x4_t d = lora_q8_scales4(b + (c / 2) * chunk + (c % 2) * 8);
        for (int k = 0; k < T; ++k) {
          float* yp = y[k] + o + 4 * c;
          vst1q_f32(yp, vfmaq_f32(vld1q_f32(yp), vmulq_n_f32(d, t.d[k]), vcvtq_f32_s32(D::sum(isum[k][c]))));
        }
      }
    }
  };
};

}  // namespace
}  // namespace el::kernels
#endif  // __aarch64__
