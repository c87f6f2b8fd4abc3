// Private to kernels/arm: the sdot kernels over the K-quants' Packed8 blocks (packed_k.h), one
// row group (8 rows) x T tokens, for the walk of packed_driver.h; included by packed_dotprod.cpp.
// As there, a chunk's two 16-byte halves are rows 0..3 and 4..7, and vdotq_laneq_s32 multiplies
// each row's 4 bytes by one 4-byte lane of the token's quants. The quants (0..63 at most) are
// valid signed bytes as they are. Each sub-block's lanes are then multiplied by the rows'
// sub-block scales (vmlaq) into the super-block's sums: the integers of packed_k.h, exact; the
// float steps come once per 256 elements, as on x86 (packed_k_tiles.h).
#pragma once
#include <arm_neon.h>

#include <type_traits>

#include "../packed_driver.h"
#include "../packed_k.h"

namespace el::kernels {
namespace {

template <int T>
using KTokens = PackedTokens<T, block_q8_K>;

// 8 rows' bytes of one sub-block's scales (or mins) as two int32x4 (rows 0..3, 4..7).
inline void rows_u8(const uint8_t* p, int32x4_t out[2]) {
  const uint16x8_t w = vmovl_u8(vld1_u8(p));
  out[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w)));
  out[1] = vreinterpretq_s32_u32(vmovl_high_u16(w));
}
inline void rows_s8(const int8_t* p, int32x4_t out[2]) {
  const int16x8_t w = vmovl_s8(vld1_s8(p));
  out[0] = vmovl_s16(vget_low_s16(w));
  out[1] = vmovl_high_s16(w);
}
inline void rows_f16(const fp16_t* p, float32x4_t out[2]) {
  const uint16x8_t h = vld1q_u16(p);
  out[0] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
  out[1] = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
}

// Bits B .. B + W - 1 of every byte of h, at bits P .. P + W - 1.
template <int B, int P, int W = 1>
inline uint8x16_t bit_to(uint8x16_t h) {
  const uint8x16_t m = vdupq_n_u8(uint8_t(((1 << W) - 1) << P));
  if constexpr (B < P) return vandq_u8(vshlq_n_u8(h, P - B), m);
  else if constexpr (B == P) return vandq_u8(h, m);
  else return vandq_u8(vshrq_n_u8(h, B - P), m);
}

// Q4_K / Q5_K: sub-block j's chunk C (low nibbles: elements 4C + e, lane C of the token's first
// 16 quants; high nibbles: 16 + 4C + e, lane C of the next 16; Q5_K: fifth bits at bit 4).
template <bool Fifth>
struct KWeightsQ45_K {
  using Block = std::conditional_t<Fifth, block_q5_Kx8, block_q4_Kx8>;
  static constexpr bool kMins = true;
  template <int T, int C>
  static void chunk(const Block& b, int j, const int8x16_t (&x)[T][2], int32x4_t (&s)[T][2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q[j] + 32 * C + 16 * h);
      uint8x16_t lo = vandq_u8(q, m4), hi = vshrq_n_u8(q, 4);
      if constexpr (Fifth) {
        const uint8x16_t hb = vld1q_u8(b.qh[j] + 16 * h);
        lo = vorrq_u8(lo, bit_to<C, 4>(hb));
        hi = vorrq_u8(hi, bit_to<4 + C, 4>(hb));
      }
      for (int t = 0; t < T; ++t) {
        s[t][h] = vdotq_laneq_s32(s[t][h], vreinterpretq_s8_u8(lo), x[t][0], C);
        s[t][h] = vdotq_laneq_s32(s[t][h], vreinterpretq_s8_u8(hi), x[t][1], C);
      }
    }
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2], int32x4_t (&msum)[T][2]) {
    for (int t = 0; t < T; ++t) isum[t][0] = isum[t][1] = msum[t][0] = msum[t][1] = vdupq_n_s32(0);
    for (int j = 0; j < QK_K / 32; ++j) {
      int8x16_t x[T][2];
      int32x4_t s[T][2];
      for (int t = 0; t < T; ++t) {
        x[t][0] = vld1q_s8(tok.a[t][i].qs + 32 * j);
        x[t][1] = vld1q_s8(tok.a[t][i].qs + 32 * j + 16);
        s[t][0] = s[t][1] = vdupq_n_s32(0);
      }
      chunk<T, 0>(b, j, x, s);
      chunk<T, 1>(b, j, x, s);
      chunk<T, 2>(b, j, x, s);
      chunk<T, 3>(b, j, x, s);
      int32x4_t sc[2], mn[2];
      rows_u8(b.sc[j], sc);
      rows_u8(b.m[j], mn);
      for (int t = 0; t < T; ++t) {
        const int32_t bsum32 = tok.a[t][i].bsums[2 * j] + tok.a[t][i].bsums[2 * j + 1];
        for (int h = 0; h < 2; ++h) {
          isum[t][h] = vmlaq_s32(isum[t][h], s[t][h], sc[h]);
          msum[t][h] = vmlaq_n_s32(msum[t][h], mn[h], bsum32);
        }
      }
    }
  }
};

using KWeightsQ4_K = KWeightsQ45_K<false>;
using KWeightsQ5_K = KWeightsQ45_K<true>;

// Q2_K: sub-block S's chunk K is its 2-bit parts (bits 2K), lane K of the token's 16 quants;
// scales are the low nibbles of sm, mins the high ones.
struct KWeightsQ2_K {
  using Block = block_q2_Kx8;
  static constexpr bool kMins = true;
  template <int T, int S>
  static void sub_blocks(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2],
                         int32x4_t (&msum)[T][2]) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    int8x16_t x[T];
    int32x4_t s[T][2];
    for (int t = 0; t < T; ++t) {
      x[t] = vld1q_s8(tok.a[t][i].qs + 16 * S);
      s[t][0] = s[t][1] = vdupq_n_s32(0);
    }
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q2[S] + 16 * h);
      const int8x16_t u0 = vreinterpretq_s8_u8(vandq_u8(q, m3)), u1 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(q, 2), m3));
      const int8x16_t u2 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(q, 4), m3)), u3 = vreinterpretq_s8_u8(vshrq_n_u8(q, 6));
      for (int t = 0; t < T; ++t) {
        s[t][h] = vdotq_laneq_s32(s[t][h], u0, x[t], 0);
        s[t][h] = vdotq_laneq_s32(s[t][h], u1, x[t], 1);
        s[t][h] = vdotq_laneq_s32(s[t][h], u2, x[t], 2);
        s[t][h] = vdotq_laneq_s32(s[t][h], u3, x[t], 3);
      }
    }
    int32x4_t v[2];
    rows_u8(b.sm[S], v);
    const int32x4_t sc[2] = {vandq_s32(v[0], vdupq_n_s32(0xF)), vandq_s32(v[1], vdupq_n_s32(0xF))};
    const int32x4_t mn[2] = {vshrq_n_s32(v[0], 4), vshrq_n_s32(v[1], 4)};
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < 2; ++h) {
        isum[t][h] = vmlaq_s32(isum[t][h], s[t][h], sc[h]);
        msum[t][h] = vmlaq_n_s32(msum[t][h], mn[h], tok.a[t][i].bsums[S]);
      }
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(b, tok, i, isum, msum);
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2], int32x4_t (&msum)[T][2]) {
    for (int t = 0; t < T; ++t) isum[t][0] = isum[t][1] = msum[t][0] = msum[t][1] = vdupq_n_s32(0);
    sub_blocks<T, 0>(b, tok, i, isum, msum);
  }
};

// Q3_K: sub-block S's chunk K is its 2-bit parts (bits 2K) joined by their high bits (bit
// 4 (S % 2) + K of the pair's qh chunk, moved to bit 2); lane K of the token's 16 quants.
struct KWeightsQ3_K {
  using Block = block_q3_Kx8;
  static constexpr bool kMins = false;
  template <int K>
  static uint8x16_t low(uint8x16_t q) {
    if constexpr (K == 0) return vandq_u8(q, vdupq_n_u8(3));
    else return vandq_u8(vshrq_n_u8(q, 2 * K), vdupq_n_u8(3));
  }
  template <int T, int S, int K>
  static void chunk(const uint8x16_t (&q)[2], const uint8x16_t (&hb)[2], const int8x16_t (&x)[T],
                    int32x4_t (&s)[T][2]) {
    for (int h = 0; h < 2; ++h) {
      const int8x16_t u = vreinterpretq_s8_u8(vorrq_u8(low<K>(q[h]), bit_to<4 * (S % 2) + K, 2>(hb[h])));
      for (int t = 0; t < T; ++t) s[t][h] = vdotq_laneq_s32(s[t][h], u, x[t], K);
    }
  }
  template <int T, int S>
  static void sub_blocks(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2]) {
    const uint8x16_t q[2] = {vld1q_u8(b.q2[S]), vld1q_u8(b.q2[S] + 16)};
    const uint8x16_t hb[2] = {vld1q_u8(b.qh[S / 2]), vld1q_u8(b.qh[S / 2] + 16)};
    int8x16_t x[T];
    int32x4_t s[T][2];
    for (int t = 0; t < T; ++t) {
      x[t] = vld1q_s8(tok.a[t][i].qs + 16 * S);
      s[t][0] = s[t][1] = vdupq_n_s32(-kPackOffsetQ3_K * tok.a[t][i].bsums[S]);
    }
    chunk<T, S, 0>(q, hb, x, s);
    chunk<T, S, 1>(q, hb, x, s);
    chunk<T, S, 2>(q, hb, x, s);
    chunk<T, S, 3>(q, hb, x, s);
    int32x4_t sc[2];
    rows_s8(b.sc[S], sc);
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < 2; ++h) isum[t][h] = vmlaq_s32(isum[t][h], s[t][h], sc[h]);
    if constexpr (S + 1 < QK_K / 16) sub_blocks<T, S + 1>(b, tok, i, isum);
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2], int32x4_t (&)[T][2]) {
    for (int t = 0; t < T; ++t) isum[t][0] = isum[t][1] = vdupq_n_s32(0);
    sub_blocks<T, 0>(b, tok, i, isum);
  }
};

// Q6_K: sub-block 2j + H is half H's nibbles of four chunks joined by their high 2 bits (bits 2C
// of qh[j][32H ..], moved to bits 4, 5), lane C of the token's 16 quants of the sub-block.
struct KWeightsQ6_K {
  using Block = block_q6_Kx8;
  static constexpr bool kMins = false;
  template <int T, int H, int C>
  static void chunk(const Block& b, int j, const int8x16_t (&x)[T], int32x4_t (&s)[T][2]) {
    for (int g = 0; g < 2; ++g) {
      const uint8x16_t q = vld1q_u8(b.q[j] + 32 * C + 16 * g), hb = vld1q_u8(b.qh[j] + 32 * H + 16 * g);
      const uint8x16_t low = H ? vshrq_n_u8(q, 4) : vandq_u8(q, vdupq_n_u8(0x0F));
      const int8x16_t u = vreinterpretq_s8_u8(vorrq_u8(low, bit_to<2 * C, 4, 2>(hb)));
      for (int t = 0; t < T; ++t) s[t][g] = vdotq_laneq_s32(s[t][g], u, x[t], C);
    }
  }
  template <int T, int H>
  static void half(const Block& b, int j, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2]) {
    int8x16_t x[T];
    int32x4_t s[T][2];
    for (int t = 0; t < T; ++t) {
      x[t] = vld1q_s8(tok.a[t][i].qs + 32 * j + 16 * H);
      s[t][0] = s[t][1] = vdupq_n_s32(-kPackOffsetQ6_K * tok.a[t][i].bsums[2 * j + H]);
    }
    chunk<T, H, 0>(b, j, x, s);
    chunk<T, H, 1>(b, j, x, s);
    chunk<T, H, 2>(b, j, x, s);
    chunk<T, H, 3>(b, j, x, s);
    int32x4_t sc[2];
    rows_s8(b.sc[2 * j + H], sc);
    for (int t = 0; t < T; ++t)
      for (int g = 0; g < 2; ++g) isum[t][g] = vmlaq_s32(isum[t][g], s[t][g], sc[g]);
  }
  template <int T>
  static void dots(const Block& b, const KTokens<T>& tok, int i, int32x4_t (&isum)[T][2], int32x4_t (&)[T][2]) {
    for (int t = 0; t < T; ++t) isum[t][0] = isum[t][1] = vdupq_n_s32(0);
    for (int j = 0; j < QK_K / 32; ++j) {
      half<T, 0>(b, j, tok, i, isum);
      half<T, 1>(b, j, tok, i, isum);
    }
  }
};

// The Groups of packed_driver.h: per super-block, float(isum) x (row d x token d), minus
// float(msum) x (row dmin x token d) for the types with mins.
template <class W>
struct KGroups {
  using Block = typename W::Block;
  using Act = block_q8_K;
  template <int T>
  static void run(int nb, const Block* w, const KTokens<T>& tok, float* out, int64_t os) {
    float32x4_t acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
    for (int i = 0; i < nb; ++i) {
      // The next block's lines, as on x86 (packed_k_tiles.h: there the hardware prefetcher
      // followed a block's several streams late); not measured on a board yet.
      const char* next = reinterpret_cast<const char*>(w + i + 1);
      for (size_t q = 0; q < sizeof(Block); q += 64) __builtin_prefetch(next + q);
      int32x4_t isum[T][2], msum[T][2];
      W::template dots<T>(w[i], tok, i, isum, msum);
      float32x4_t dw[2];
      rows_f16(w[i].d, dw);
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < 2; ++h)
          acc[t][h] = vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), vmulq_n_f32(dw[h], tok.a[t][i].d));
      if constexpr (W::kMins) {
        float32x4_t dm[2];
        rows_f16(w[i].dmin, dm);
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < 2; ++h)
            acc[t][h] = vfmsq_f32(acc[t][h], vcvtq_f32_s32(msum[t][h]), vmulq_n_f32(dm[h], tok.a[t][i].d));
      }
    }
    for (int t = 0; t < T; ++t) {
      vst1q_f32(out + t * os, acc[t][0]);
      vst1q_f32(out + t * os + 4, acc[t][1]);
    }
  }
};

}  // namespace
}  // namespace el::kernels
