// Private to kernels/arm: the int8 kernels of the NEON paths, over an int8 dot primitive:
// neon.cpp instantiates them with a widening-multiply emulation (armv8-a), neon_dotprod.cpp
// with vdotq_s32 (ASIMDDP). Everything here has internal linkage so the two instantiations,
// compiled with different -march flags, can never be mixed up.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../block_scales.h"
#include "../lora_driver.h"
#include "../paths.h"
#include "../quant_dots.h"
#include "lora_q8_tiles.h"
#include "neon_quant_ops.h"

namespace el::kernels {
namespace {

inline float h2f(fp16_t h) {
  __fp16 x;
  std::memcpy(&x, &h, 2);
  return float(x);
}

// acc + 4 lane sums of a[i]*b[i] over 16 signed bytes (which lanes get which products
// differs between implementations; only the total matters).
struct DotWidening {
  static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t p1 = vmull_high_s8(a, b);
    return vaddq_s32(acc, vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
  }
};

template <class D>
void vec_dot_q4_K_t(int n, float* s, const void* vw, const void* va) {
  const block_q4_K* w = static_cast<const block_q4_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    q4k_scales_mins(w[i].scales, sc, m);
    // min term: bsums (16 groups of 16) times the min of their 32-wide sub-block
    const int16x8_t b0 = vld1q_s16(a[i].bsums), b1 = vld1q_s16(a[i].bsums + 8);
    const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
    const int16x8_t m_lo = vzip1q_s16(mins, mins), m_hi = vzip2q_s16(mins, mins);
    int32x4_t pm = vmull_s16(vget_low_s16(b0), vget_low_s16(m_lo));
    pm = vmlal_high_s16(pm, b0, m_lo);
    pm = vmlal_s16(pm, vget_low_s16(b1), vget_low_s16(m_hi));
    pm = vmlal_high_s16(pm, b1, m_hi);
    const int summ = vaddvq_s32(pm);

    int sumi = 0;
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = a[i].qs;
    for (int j = 0; j < QK_K / 64; ++j, q4 += 32, q8 += 64) {
      const uint8x16_t x0 = vld1q_u8(q4), x1 = vld1q_u8(q4 + 16);
      int32x4_t pl = D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(x0, low4)), vld1q_s8(q8));
      pl = D::dot(pl, vreinterpretq_s8_u8(vandq_u8(x1, low4)), vld1q_s8(q8 + 16));
      int32x4_t ph = D::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(x0, 4)), vld1q_s8(q8 + 32));
      ph = D::dot(ph, vreinterpretq_s8_u8(vshrq_n_u8(x1, 4)), vld1q_s8(q8 + 48));
      sumi += vaddvq_s32(pl) * sc[2 * j] + vaddvq_s32(ph) * sc[2 * j + 1];
    }
    const float d = h2f(w[i].d) * a[i].d, dmin = h2f(w[i].dmin) * a[i].d;
    sum += d * float(sumi) - dmin * float(summ);
  }
  *s = sum;
}

template <class D>
void vec_dot_q6_K_t(int n, float* s, const void* vw, const void* va) {
  const block_q6_K* w = static_cast<const block_q6_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  const uint8x16_t low4 = vdupq_n_u8(0x0F), top2 = vdupq_n_u8(0x30);
  const int8x16_t bias = vdupq_n_s8(32);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = w[i].scales;
    int sumi = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[i].ql + 64 * h;
      const uint8_t* qh = w[i].qh + 32 * h;
      const int8_t* q8 = a[i].qs + 128 * h;
      for (int half = 0; half < 2; ++half) {  // l in [0,16) then [16,32): one sub-block each
        const uint8x16_t l0 = vld1q_u8(ql + 16 * half), l1 = vld1q_u8(ql + 32 + 16 * half);
        const uint8x16_t hb = vld1q_u8(qh + 16 * half);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(l0, low4), vandq_u8(vshlq_n_u8(hb, 4), top2)),
            vorrq_u8(vandq_u8(l1, low4), vandq_u8(vshlq_n_u8(hb, 2), top2)),
            vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, top2)),
            vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), top2)),
        };
        for (int k = 0; k < 4; ++k) {
          const int8x16_t qs = vsubq_s8(vreinterpretq_s8_u8(q[k]), bias);
          const int p = vaddvq_s32(D::dot(vdupq_n_s32(0), qs, vld1q_s8(q8 + 32 * k + 16 * half)));
          sumi += p * sc[8 * h + 2 * k + half];
        }
      }
    }
    sum += h2f(w[i].d) * a[i].d * float(sumi);
  }
  *s = sum;
}

// The int8 kernels of a NEON path over its dot D (and LoraDot, the LoRA tiles' 4-byte dot):
// Q8_0 / Q4_0 and the other quantized types (quant_dots.h), Q4_K / Q6_K's vec_dots, the LoRA pools.
template <class D, class LoraDot>
void install_neon_int8(KernelSet& ks) {
  using O = NeonQuantOps<D>;
  install_q8_q4_dots<O, SignedDecode<O, block_q8_0>, SignedDecode<O, block_q4_0>, 4>(ks);
  install_quant_dots<O>(ks);  // Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K; Q4_K / Q6_K tiles
  ks.by_type[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K_t<D>;
  ks.by_type[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K_t<D>;
  install_lora_int<LoraQ8Tiles, LoraDot>(ks);
}

}  // namespace
}  // namespace el::kernels
#endif  // __aarch64__
