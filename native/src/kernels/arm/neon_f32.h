// Private to kernels/arm: float_ops.h's vector of floats with NEON (4 lanes).
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "../../tensor_types.h"

namespace el::kernels {
namespace {

struct NeonF32 {
  using V = float32x4_t;
  static constexpr int W = 4;

  static V zero() { return vdupq_n_f32(0); }
  static V set1(float x) { return vdupq_n_f32(x); }
  static V load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  static V load_f16(const fp16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  // The FPU converts with round-to-nearest-even, like the scalar fp32_to_fp16.
  static void store_f16(fp16_t* p, V v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
  static V load_bf16(const bf16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static V fma(V acc, V a, V b) { return vfmaq_f32(acc, a, b); }
  static V fnma(V acc, V a, V b) { return vfmsq_f32(acc, a, b); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  static V min(V a, V b) { return vminq_f32(a, b); }
  static V max(V a, V b) { return vmaxq_f32(a, b); }
  static V abs(V v) { return vabsq_f32(v); }
  static V round(V v) { return vrndnq_f32(v); }
  static V scale2n(V p, V n) {
    const int32x4_t e = vshlq_n_s32(vcvtq_s32_f32(n), 23);
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
  }
  static V inf_where_above(V y, V x, float limit) {
    return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(limit)), vdupq_n_f32(INFINITY), y);
  }
  static float hsum(V v) { return vaddvq_f32(v); }
  static float hmax(V v) { return vmaxvq_f32(v); }
  static float f16(fp16_t h) {
    __fp16 x;
    std::memcpy(&x, &h, 2);
    return float(x);
  }
  // Pairwise adds leave the four vectors' sums side by side.
  static void hsum4(const V (&v)[4], float out[4]) {
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3])));
  }
};

}  // namespace
}  // namespace el::kernels
#endif  // __aarch64__
