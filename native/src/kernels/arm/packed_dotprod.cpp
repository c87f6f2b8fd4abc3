// NEON dot-product kernels over Packed8 weights (packed.h), Q4_0, Q8_0, Q5_0, IQ4_NL, Q4_1 and Q5_1
// (and the K-quants Q4_K, Q5_K, Q6_K, Q3_K, Q2_K: packed_k_dotprod.h), for the
// neon-dotprod path (Cortex-A76, Raspberry Pi 5). Compiled with -march=armv8.2-a+dotprod+fp16
// and installed by dispatch.cpp only when the CPU reports ASIMDDP.
//
// A packed chunk holds 4 consecutive elements of 8 rows (bytes 4r..4r+3 = row r), so its two
// 16-byte halves are rows 0..3 and 4..7, one row per int32 lane. sdot by lane
// (vdotq_laneq_s32) multiplies each lane's 4 bytes by the same 4 activation bytes, one 32-bit
// lane of the token's quant register: one instruction adds 4 products to 4 rows, with no
// broadcast and no horizontal sum. After a 32-element block the lanes are the rows' exact
// integer dots; one convert and one FMA per 4 rows apply row scale x token scale.
//
// sdot is s8 x s8, so the weights are turned signed: Q4_0 nibbles 0..15 already are (the
// accumulator starts at -8 x the token's block quant sum for the "- 8"), Q8_0's stored
// q + 128 is flipped back to q by XOR 0x80 (accumulator starts at 0).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <type_traits>

#include "../matmul.h"
#include "../packed.h"
#include "../packed_driver.h"
#include "../paths.h"
#include "packed_k_dotprod.h"

namespace el::kernels {
namespace {

// A token's block is two registers: x[0] = elements 0..15, x[1] = 16..31, so lane L of x[k]
// holds elements 16k + 4L .. 16k + 4L + 3. Each type says which signed weight vectors pair
// with lane L of x[0] and of x[1] (index h: rows 0..3, 4..7), and where its accumulator starts.
struct WeightsQ4_0 {
  using Block = block_q4_0x8;
  static int32_t start(int32_t qsum) { return -kPackOffsetQ4_0 * qsum; }
  // Chunk L: low nibbles are elements 4L + e, high nibbles 16 + 4L + e.
  template <int L>
  static void at(const Block& b, int8x16_t w0[2], int8x16_t w1[2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q + 32 * L + 16 * h);
      w0[h] = vreinterpretq_s8_u8(vandq_u8(q, m4));
      w1[h] = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
    }
  }
};

struct WeightsQ8_0 {
  using Block = block_q8_0x8;
  static int32_t start(int32_t) { return 0; }
  // Chunk L holds elements 4L + e, chunk L + 4 elements 16 + 4L + e.
  template <int L>
  static void at(const Block& b, int8x16_t w0[2], int8x16_t w1[2]) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int h = 0; h < 2; ++h) {
      w0[h] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(b.q + 32 * L + 16 * h), flip));
      w1[h] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(b.q + 32 * (L + 4) + 16 * h), flip));
    }
  }
};

// Q5_0: Q4_0's nibbles with their fifth bits (packed.h: bit 4h + c of each byte, chunk c, half h)
// shifted to bit 4: the unsigned 5-bit quants; the accumulator starts at -16 x the quant sum.
template <int K>
inline uint8x16_t fifth_bits(uint8x16_t h) {
  const uint8x16_t m = vdupq_n_u8(0x10);
  if constexpr (K < 4) return vandq_u8(vshlq_n_u8(h, 4 - K), m);
  else if constexpr (K == 4) return vandq_u8(h, m);
  else return vandq_u8(vshrq_n_u8(h, K - 4), m);
}

struct WeightsQ5_0 {
  using Block = block_q5_0x8;
  static int32_t start(int32_t qsum) { return -kPackOffsetQ5_0 * qsum; }
  template <int L>
  static void at(const Block& b, int8x16_t w0[2], int8x16_t w1[2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q + 32 * L + 16 * h), hb = vld1q_u8(b.qh + 16 * h);
      w0[h] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, m4), fifth_bits<L>(hb)));
      w1[h] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), fifth_bits<4 + L>(hb)));
    }
  }
};

// Q4_1 / Q5_1 (Q8_1 activations): the unsigned quants as they are; Groups adds the mins' share.
template <bool Fifth>
struct WeightsQx_1 {
  using Block = std::conditional_t<Fifth, block_q5_1x8, block_q4_1x8>;
  using Act = block_q8_1;
  static int32_t start(int32_t) { return 0; }
  template <int L>
  static void at(const Block& b, int8x16_t w0[2], int8x16_t w1[2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q + 32 * L + 16 * h);
      uint8x16_t lo = vandq_u8(q, m4), hi = vshrq_n_u8(q, 4);
      if constexpr (Fifth) {
        const uint8x16_t hb = vld1q_u8(b.qh + 16 * h);
        lo = vorrq_u8(lo, fifth_bits<L>(hb));
        hi = vorrq_u8(hi, fifth_bits<4 + L>(hb));
      }
      w0[h] = vreinterpretq_s8_u8(lo);
      w1[h] = vreinterpretq_s8_u8(hi);
    }
  }
};

// IQ4_NL: each nibble looked up as its signed value (tbl); no offset.
struct WeightsIQ4_NL {
  using Block = block_iq4_nlx8;
  static int32_t start(int32_t) { return 0; }
  template <int L>
  static void at(const Block& b, int8x16_t w0[2], int8x16_t w1[2]) {
    const int8x16_t table = vld1q_s8(kIq4nlValues);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t q = vld1q_u8(b.q + 32 * L + 16 * h);
      w0[h] = vqtbl1q_s8(table, vandq_u8(q, m4));
      w1[h] = vqtbl1q_s8(table, vshrq_n_u8(q, 4));
    }
  }
};

// Adds the products of lane L's weights to every token's two row accumulators. One
// dependent chain per token and row half: for the one-token GEMV the next block's chains
// overlap with this one's, and the stream is bounded by DRAM on the Pi 5 anyway.
template <class W, int T, int L>
inline void lane_dots(const typename W::Block& b, const int8x16_t (&x)[T][2], int32x4_t (&isum)[T][2]) {
  int8x16_t w0[2], w1[2];
  W::template at<L>(b, w0, w1);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < 2; ++h) {
      isum[t][h] = vdotq_laneq_s32(isum[t][h], w0[h], x[t][0], L);
      isum[t][h] = vdotq_laneq_s32(isum[t][h], w1[h], x[t][1], L);
    }
}

// The Groups of packed_driver.h for a weight type W: one row group (8 rows) x T tokens.
// Four tokens use 8 accumulators, 8 quant and 8 float registers of the 32.
// Blocks with mins (Q4_1 / Q5_1, Q8_1 activations) add the 8 rows' m x the token block's sd.
template <class W>
struct Groups {
  using Block = typename W::Block;
  using Act = act_of<W>;
  template <int T>
  static void run(int nb, const Block* w, const PackedTokens<T, Act>& tok, float* out, int64_t os) {
    float32x4_t acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
    for (int i = 0; i < nb; ++i) {
      int8x16_t x[T][2];
      int32x4_t isum[T][2];
      for (int t = 0; t < T; ++t) {
        x[t][0] = vld1q_s8(tok.a[t][i].qs);
        x[t][1] = vld1q_s8(tok.a[t][i].qs + 16);
        isum[t][0] = isum[t][1] = vdupq_n_s32(W::start(tok.s[t][i]));
      }
      lane_dots<W, T, 0>(w[i], x, isum);
      lane_dots<W, T, 1>(w[i], x, isum);
      lane_dots<W, T, 2>(w[i], x, isum);
      lane_dots<W, T, 3>(w[i], x, isum);
      const uint16x8_t dh = vld1q_u16(w[i].d);  // the 8 row scales, fp16 bits
      const float32x4_t dw[2] = {vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(dh))),
                                 vcvt_high_f32_f16(vreinterpretq_f16_u16(dh))};
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < 2; ++h)
          acc[t][h] = vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), vmulq_n_f32(dw[h], tok.d[t][i]));
      if constexpr (std::is_same_v<Act, block_q8_1>) {
        const uint16x8_t mh = vld1q_u16(w[i].m);
        const float32x4_t m[2] = {vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(mh))),
                                  vcvt_high_f32_f16(vreinterpretq_f16_u16(mh))};
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < 2; ++h) acc[t][h] = vfmaq_n_f32(acc[t][h], m[h], tok.sd[t][i]);
      }
    }
    for (int t = 0; t < T; ++t) {
      vst1q_f32(out + t * os, acc[t][0]);
      vst1q_f32(out + t * os + 4, acc[t][1]);
    }
  }
};

}  // namespace

namespace detail {

void install_packed_neon_dotprod(KernelSet& ks) {
  ks.by_type[uint32_t(TensorType::Q4_0)].packed = packed_matmul<Groups<WeightsQ4_0>>;
  ks.by_type[uint32_t(TensorType::Q8_0)].packed = packed_matmul<Groups<WeightsQ8_0>>;
  ks.by_type[uint32_t(TensorType::Q5_0)].packed = packed_matmul<Groups<WeightsQ5_0>>;
  ks.by_type[uint32_t(TensorType::IQ4_NL)].packed = packed_matmul<Groups<WeightsIQ4_NL>>;
  ks.by_type[uint32_t(TensorType::Q4_1)].packed = packed_matmul<Groups<WeightsQx_1<false>>>;
  ks.by_type[uint32_t(TensorType::Q5_1)].packed = packed_matmul<Groups<WeightsQx_1<true>>>;
  ks.by_type[uint32_t(TensorType::Q4_K)].packed = packed_matmul<KGroups<KWeightsQ4_K>>;
  ks.by_type[uint32_t(TensorType::Q3_K)].packed = packed_matmul<KGroups<KWeightsQ3_K>>;
  ks.by_type[uint32_t(TensorType::Q5_K)].packed = packed_matmul<KGroups<KWeightsQ5_K>>;
  ks.by_type[uint32_t(TensorType::Q2_K)].packed = packed_matmul<KGroups<KWeightsQ2_K>>;
  ks.by_type[uint32_t(TensorType::Q6_K)].packed = packed_matmul<KGroups<KWeightsQ6_K>>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
