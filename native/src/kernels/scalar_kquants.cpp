// Scalar reference kernels of the K-quants beyond Q4_K / Q6_K: Q2_K, Q3_K and Q5_K, against
// Q8_K activations. Per super-block the dot product is an exact integer sum (the min terms of
// Q2_K / Q5_K from the activations' group sums, as ggml), scaled once by d x the activation scale.
// The quantizers are simple (per sub-block range, no scale search) and exist for test data.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_scales.h"
#include "paths.h"

namespace el::kernels {
namespace {

inline int nearest(float x) { return int(std::nearbyint(x)); }  // half to even, like ggml's nearest_int

// Q2_K / Q3_K: the 2-bit part of element e (0..255) of a super-block: per 128 elements, 32
// bytes of qs hold four runs of 32, in bits 0-1, 2-3, 4-5, 6-7.
inline int q2_bits(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// Q3_K / Q5_K: the element's bit in a 32-byte high-bit mask (element e: bit e / 32 of byte e % 32).
inline int high_bit(const uint8_t* mask, int e) { return (mask[e % 32] >> (e / 32)) & 1; }

inline void put_q2_bits(uint8_t* qs, int e, int q) { qs[32 * (e / 128) + e % 32] |= uint8_t(q << (2 * ((e % 128) / 32))); }

// ---- Q2_K ------------------------------------------------------------------

inline int q2k_quant(const block_q2_K& b, int e) { return q2_bits(b.qs, e); }

void q2_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q2_K* x = static_cast<const block_q2_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int e = 0; e < QK_K; ++e) {
      const uint8_t sc = x[i].scales[e / 16];
      *y++ = d * float(sc & 0xF) * float(q2k_quant(x[i], e)) - dmin * float(sc >> 4);
    }
  }
}

// Per sub-block of 16: [min(0, lo), hi] in 3 steps; 4-bit scales and mins under fp16 d and dmin.
void q2_K_from_float(const float* x, void* vy, int64_t n) {
  block_q2_K* y = static_cast<block_q2_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scale[16], minv[16], max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      const float lo = std::min(0.f, *std::min_element(x + 16 * j, x + 16 * j + 16));
      const float hi = *std::max_element(x + 16 * j, x + 16 * j + 16);
      scale[j] = (hi - lo) / 3.f;
      minv[j] = -lo;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, minv[j]);
    }
    std::memset(&y[i], 0, sizeof(block_q2_K));
    y[i].d = fp32_to_fp16(max_scale / 15.f);
    y[i].dmin = fp32_to_fp16(max_min / 15.f);
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    for (int j = 0; j < 16; ++j) {
      const int ls = d != 0.f ? std::clamp(nearest(scale[j] / d), 0, 15) : 0;
      const int lm = dmin != 0.f ? std::clamp(nearest(minv[j] / dmin), 0, 15) : 0;
      y[i].scales[j] = uint8_t(ls | (lm << 4));
      const float dd = d * float(ls), dm = dmin * float(lm);
      for (int l = 0; l < 16; ++l) {
        const int q = dd != 0.f ? std::clamp(nearest((x[16 * j + l] + dm) / dd), 0, 3) : 0;
        put_q2_bits(y[i].qs, 16 * j + l, q);
      }
    }
  }
}

void vec_dot_q2_K(int n, float* s, const void* vw, const void* va) {
  const block_q2_K* w = static_cast<const block_q2_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    int summ = 0;  // the min term needs only the activation group sums
    for (int g = 0; g < QK_K / 16; ++g) summ += a[i].bsums[g] * (w[i].scales[g] >> 4);
    int sumi = 0;
    for (int g = 0; g < QK_K / 16; ++g) {
      int sg = 0;
      for (int l = 0; l < 16; ++l) sg += q2k_quant(w[i], 16 * g + l) * a[i].qs[16 * g + l];
      sumi += sg * (w[i].scales[g] & 0xF);
    }
    const float dall = a[i].d * fp16_to_fp32(w[i].d), dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    sum += dall * float(sumi) - dmin * float(summ);
  }
  *s = sum;
}

// ---- Q3_K ------------------------------------------------------------------

// Signed quant (-4..3) of element e: the 2-bit part, minus 4 where the high bit is clear.
inline int q3k_quant(const block_q3_K& b, int e) { return q2_bits(b.qs, e) - (high_bit(b.hmask, e) ? 0 : 4); }

void q3_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q3_K* x = static_cast<const block_q3_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    int8_t sc[16];
    q3k_scales(x[i].scales, sc);
    for (int e = 0; e < QK_K; ++e) *y++ = d * float(sc[e / 16]) * float(q3k_quant(x[i], e));
  }
}

// Per sub-block of 16 the value of largest magnitude maps to -4; the signed 6-bit scales
// share one fp16 super-scale (the largest maps to -32, as ggml's reference).
void q3_K_from_float(const float* x, void* vy, int64_t n) {
  block_q3_K* y = static_cast<block_q3_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scale[16], amax = 0, max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float sub_amax = 0, sub_max = 0;
      for (int l = 0; l < 16; ++l)
        if (std::fabs(x[16 * j + l]) > sub_amax) {
          sub_amax = std::fabs(x[16 * j + l]);
          sub_max = x[16 * j + l];
        }
      scale[j] = sub_max / -4.f;
      if (std::fabs(scale[j]) > amax) {
        amax = std::fabs(scale[j]);
        max_scale = scale[j];
      }
    }
    std::memset(&y[i], 0, sizeof(block_q3_K));
    const float iscale = max_scale != 0.f ? -32.f / max_scale : 0.f;
    y[i].d = fp32_to_fp16(iscale != 0.f ? 1.f / iscale : 0.f);
    const float d = fp16_to_fp32(y[i].d);
    for (int j = 0; j < 16; ++j) {
      const int l = std::clamp(nearest(iscale * scale[j]), -32, 31) + 32;
      y[i].scales[j % 8] |= uint8_t((l & 0xF) << (j < 8 ? 0 : 4));
      y[i].scales[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
      const float dd = d * float(l - 32);
      for (int k = 0; k < 16; ++k) {
        const int e = 16 * j + k;
        const int q = (dd != 0.f ? std::clamp(nearest(x[e] / dd), -4, 3) : 0) + 4;  // 0..7
        put_q2_bits(y[i].qs, e, q & 3);
        y[i].hmask[e % 32] |= uint8_t((q >> 2) << (e / 32));
      }
    }
  }
}

void vec_dot_q3_K(int n, float* s, const void* vw, const void* va) {
  const block_q3_K* w = static_cast<const block_q3_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    int8_t sc[16];
    q3k_scales(w[i].scales, sc);
    int sumi = 0;
    for (int g = 0; g < QK_K / 16; ++g) {
      int sg = 0;
      for (int l = 0; l < 16; ++l) sg += q3k_quant(w[i], 16 * g + l) * a[i].qs[16 * g + l];
      sumi += sg * sc[g];
    }
    sum += fp16_to_fp32(w[i].d) * a[i].d * float(sumi);
  }
  *s = sum;
}

// ---- Q5_K ------------------------------------------------------------------

// Unsigned quant (0..31) of element e: Q4_K's nibble (32 bytes per 64 elements, low nibbles
// first) and the element's bit in qh as bit 4.
inline int q5k_quant(const block_q5_K& b, int e) {
  const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
  return ((e % 64) < 32 ? byte & 0xF : byte >> 4) | (high_bit(b.qh, e) << 4);
}

void q5_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q5_K* x = static_cast<const block_q5_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    uint8_t sc[8], m[8];
    q4k_scales_mins(x[i].scales, sc, m);
    for (int e = 0; e < QK_K; ++e) *y++ = d * float(sc[e / 32]) * float(q5k_quant(x[i], e)) - dmin * float(m[e / 32]);
  }
}

// As Q4_K's test quantizer (scalar.cpp), with 31 steps per sub-block.
void q5_K_from_float(const float* x, void* vy, int64_t n) {
  block_q5_K* y = static_cast<block_q5_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scale[8], minv[8];
    for (int j = 0; j < 8; ++j) {
      const float lo = std::min(0.f, *std::min_element(x + 32 * j, x + 32 * j + 32));
      const float hi = *std::max_element(x + 32 * j, x + 32 * j + 32);
      scale[j] = (hi - lo) / 31.f;
      minv[j] = -lo;
    }
    std::memset(&y[i], 0, sizeof(block_q5_K));
    q4k_set_scales_mins(y[i], scale, minv);
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    uint8_t sc[8], m[8];
    q4k_scales_mins(y[i].scales, sc, m);
    for (int e = 0; e < QK_K; ++e) {
      const float dd = d * sc[e / 32], dm = dmin * m[e / 32];
      const int q = dd != 0.f ? std::clamp(nearest((x[e] + dm) / dd), 0, 31) : 0;
      y[i].qs[32 * (e / 64) + e % 32] |= uint8_t((q & 0xF) << ((e % 64) < 32 ? 0 : 4));
      y[i].qh[e % 32] |= uint8_t((q >> 4) << (e / 32));
    }
  }
}

void vec_dot_q5_K(int n, float* s, const void* vw, const void* va) {
  const block_q5_K* w = static_cast<const block_q5_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    q4k_scales_mins(w[i].scales, sc, m);
    int summ = 0;
    for (int g = 0; g < QK_K / 16; ++g) summ += a[i].bsums[g] * m[g / 2];
    int sumi = 0;
    for (int j = 0; j < 8; ++j) {
      int sj = 0;
      for (int l = 0; l < 32; ++l) sj += q5k_quant(w[i], 32 * j + l) * a[i].qs[32 * j + l];
      sumi += sj * sc[j];
    }
    sum += fp16_to_fp32(w[i].d) * a[i].d * float(sumi) - fp16_to_fp32(w[i].dmin) * a[i].d * float(summ);
  }
  *s = sum;
}

}  // namespace

namespace detail {

void fill_scalar_kquants(KernelSet& ks) {
  auto set = [&](TensorType t, ToFloatFn to, FromFloatFn from, VecDotFn dot) {
    ks.by_type[static_cast<uint32_t>(t)] = TypeKernels{to, from, dot};
  };
  set(TensorType::Q2_K, q2_K_to_float, q2_K_from_float, vec_dot_q2_K);
  set(TensorType::Q3_K, q3_K_to_float, q3_K_from_float, vec_dot_q3_K);
  set(TensorType::Q5_K, q5_K_to_float, q5_K_from_float, vec_dot_q5_K);
}

}  // namespace detail
}  // namespace el::kernels
