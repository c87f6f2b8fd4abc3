// Baseline NEON path (armv8-a, e.g. Cortex-A72 in the Raspberry Pi 4): the float kernels
// (float_ops.h over neon_f32.h), the activation quantizers, and the int8 kernels of neon_int8.h
// with dots through widening multiplies.
#if defined(__aarch64__)
#include <cmath>

#include "../float_ops.h"
#include "neon_f32.h"
#include "neon_int8.h"

namespace el::kernels {
namespace {

// 16 floats scaled by s, rounded half-to-even, saturated to int8.
inline int8x16_t round_pack_16(const float* x, float s) {
  const int32x4_t i0 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x), s));
  const int32x4_t i1 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4), s));
  const int32x4_t i2 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 8), s));
  const int32x4_t i3 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 12), s));
  const int16x8_t h0 = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
  const int16x8_t h1 = vcombine_s16(vqmovn_s32(i2), vqmovn_s32(i3));
  return vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
}

inline float amax_of(const float* x, int n) {
  float32x4_t m = vdupq_n_f32(0);
  for (int j = 0; j < n; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
  return vmaxvq_f32(m);
}

void q8_0_from_float(const float* x, void* vy, int64_t n) {
  block_q8_0* y = static_cast<block_q8_0*>(vy);
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    const float amax = amax_of(x, QK8_0);
    y[i].d = fp32_to_fp16(amax / 127.f);
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    vst1q_s8(y[i].qs, round_pack_16(x, id));
    vst1q_s8(y[i].qs + 16, round_pack_16(x + 16, id));
  }
}

void q8_K_from_float(const float* x, void* vy, int64_t n) {
  block_q8_K* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    const float amax = amax_of(x, QK_K);
    if (amax == 0.f) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    int first = 0;  // the reference keeps the sign of the first element reaching amax
    while (std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.f / x[first];
    for (int g = 0; g < QK_K / 16; ++g) {
      const int8x16_t q = round_pack_16(x + 16 * g, iscale);
      vst1q_s8(y[i].qs + 16 * g, q);
      y[i].bsums[g] = int16_t(vaddlvq_s8(q));
    }
    y[i].d = 1.f / iscale;
  }
}

}  // namespace

namespace detail {

void install_neon(KernelSet& ks) {
  install_float_ops<NeonF32, 4>(ks);
  ks.by_type[uint32_t(TensorType::Q8_0)].from_float = q8_0_from_float;
  ks.by_type[uint32_t(TensorType::Q8_K)].from_float = q8_K_from_float;
  install_neon_int8<DotWidening, LoraDot4Widening>(ks);
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
