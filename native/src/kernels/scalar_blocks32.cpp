// Scalar reference kernels of the 32-element block types beyond Q8_0 / Q4_0: Q4_1, Q5_0,
// Q5_1, IQ4_NL, and Q8_1, the activation type Q4_1 and Q5_1 pair with (as in ggml: the
// weights' offset m meets the activations' s = d * sum(q) once per block). Each dot product
// is integer within a block and float across blocks, in ggml's order.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "block_scales.h"
#include "paths.h"

namespace el::kernels {
namespace {

inline int nearest(float x) { return int(std::nearbyint(x)); }  // half to even, like ggml's nearest_int

// Signed value of largest magnitude in x[0..n) (the first one, as ggml).
float signed_amax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// ---- Q8_1 (activations) -----------------------------------------------------

void q8_1_to_float(const void* vx, float* y, int64_t n) {
  const block_q8_1* x = static_cast<const block_q8_1*>(vx);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_1; ++j) y[i * QK8_1 + j] = d * x[i].qs[j];
  }
}

// ggml's x86 quantize_row_q8_1: Q8_0's rule (d = amax / 127, q = round-half-even(x * 127 / amax)),
// and s = fp16(d * sum of the quants).
void q8_1_from_float(const float* x, void* vy, int64_t n) {
  block_q8_1* y = static_cast<block_q8_1*>(vy);
  for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
    float amax = 0;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = int8_t(nearest(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].d = fp32_to_fp16(d);
    y[i].s = fp32_to_fp16(d * float(sum));
  }
}

// ---- Q4_1 ------------------------------------------------------------------

void q4_1_to_float(const void* vx, float* y, int64_t n) {
  const block_q4_1* x = static_cast<const block_q4_1*>(vx);
  for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = (x[i].qs[j] & 0xF) * d + m;
      y[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

// ggml's quantize_row_q4_1_ref: [min, max] in 15 steps.
void q4_1_from_float(const float* x, void* vy, int64_t n) {
  block_q4_1* y = static_cast<block_q4_1*>(vy);
  for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK4_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const int q0 = std::min(15, int(int8_t((x[j] - min) * id + 0.5f)));
      const int q1 = std::min(15, int(int8_t((x[j + QK4_1 / 2] - min) * id + 0.5f)));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void vec_dot_q4_1(int n, float* s, const void* vw, const void* va) {
  const block_q4_1* w = static_cast<const block_q4_1*>(vw);
  const block_q8_1* a = static_cast<const block_q8_1*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK4_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j)
      sumi += (w[i].qs[j] & 0xF) * a[i].qs[j] + (w[i].qs[j] >> 4) * a[i].qs[j + QK4_1 / 2];
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(sumi) + fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  *s = sum;
}

// ---- Q5_0 / Q5_1 -------------------------------------------------------------

void q5_0_to_float(const void* vx, float* y, int64_t n) {
  const block_q5_0* x = static_cast<const block_q5_0*>(vx);
  for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK5_0; ++j) y[j] = float(q5_quant(x[i].qs, x[i].qh, j) - 16) * d;
  }
}

void q5_1_to_float(const void* vx, float* y, int64_t n) {
  const block_q5_1* x = static_cast<const block_q5_1*>(vx);
  for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < QK5_1; ++j) y[j] = float(q5_quant(x[i].qs, x[i].qh, j)) * d + m;
  }
}

// Stores 32 five-bit quants q[j] as Q5_0 / Q5_1 do.
void pack_q5(const int* q, uint8_t* qs, uint8_t* qh4) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = uint8_t((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
    qh |= uint32_t((q[j] >> 4) & 1) << j;
    qh |= uint32_t((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh4, &qh, 4);
}

// ggml's quantize_row_q5_0_ref: the value of largest magnitude maps to -16.
void q5_0_from_float(const float* x, void* vy, int64_t n) {
  block_q5_0* y = static_cast<block_q5_0*>(vy);
  for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
    const float d = signed_amax(x, QK5_0) / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[i].d = fp32_to_fp16(d);
    int q[QK5_0];
    for (int j = 0; j < QK5_0; ++j) q[j] = std::min(31, int(int8_t(x[j] * id + 16.5f)));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

// ggml's quantize_row_q5_1_ref: [min, max] in 31 steps.
void q5_1_from_float(const float* x, void* vy, int64_t n) {
  block_q5_1* y = static_cast<block_q5_1*>(vy);
  for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK5_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    int q[QK5_1];
    for (int j = 0; j < QK5_1; ++j) q[j] = int(uint8_t((x[j] - min) * id + 0.5f));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void vec_dot_q5_0(int n, float* s, const void* vw, const void* va) {
  const block_q5_0* w = static_cast<const block_q5_0*>(vw);
  const block_q8_0* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK5_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK5_0; ++j) sumi += (q5_quant(w[i].qs, w[i].qh, j) - 16) * a[i].qs[j];
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(sumi);
  }
  *s = sum;
}

void vec_dot_q5_1(int n, float* s, const void* vw, const void* va) {
  const block_q5_1* w = static_cast<const block_q5_1*>(vw);
  const block_q8_1* a = static_cast<const block_q8_1*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK5_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK5_1; ++j) sumi += q5_quant(w[i].qs, w[i].qh, j) * a[i].qs[j];
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(sumi) + fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  *s = sum;
}

// ---- IQ4_NL ------------------------------------------------------------------

void iq4_nl_to_float(const void* vx, float* y, int64_t n) {
  const block_iq4_nl* x = static_cast<const block_iq4_nl*>(vx);
  for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[j] = d * kIq4nlValues[x[i].qs[j] & 0xF];
      y[j + QK4_NL / 2] = d * kIq4nlValues[x[i].qs[j] >> 4];
    }
  }
}

// The index of the table value nearest to v (the lower one on a tie).
int iq4_nl_index(float v) {
  int best = 0;
  for (int k = 1; k < 16; ++k)
    if (std::fabs(v - kIq4nlValues[k]) < std::fabs(v - kIq4nlValues[best])) best = k;
  return best;
}

// Simple quantizer (for test data; ggml also searches nearby scales): the value of largest
// magnitude maps to the table's -127, every value to its nearest table entry.
void iq4_nl_from_float(const float* x, void* vy, int64_t n) {
  block_iq4_nl* y = static_cast<block_iq4_nl*>(vy);
  for (int64_t i = 0; i < n / QK4_NL; ++i, x += QK4_NL) {
    y[i].d = fp32_to_fp16(signed_amax(x, QK4_NL) / -127.f);
    const float d = fp16_to_fp32(y[i].d);
    const float id = d != 0.f ? 1.f / d : 0.f;
    for (int j = 0; j < QK4_NL / 2; ++j)
      y[i].qs[j] = uint8_t(iq4_nl_index(x[j] * id) | (iq4_nl_index(x[j + QK4_NL / 2] * id) << 4));
  }
}

void vec_dot_iq4_nl(int n, float* s, const void* vw, const void* va) {
  const block_iq4_nl* w = static_cast<const block_iq4_nl*>(vw);
  const block_q8_0* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK4_NL; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_NL / 2; ++j)
      sumi += kIq4nlValues[w[i].qs[j] & 0xF] * a[i].qs[j] + kIq4nlValues[w[i].qs[j] >> 4] * a[i].qs[j + QK4_NL / 2];
    sum += fp16_to_fp32(a[i].d) * fp16_to_fp32(w[i].d) * float(sumi);
  }
  *s = sum;
}

}  // namespace

namespace detail {

void fill_scalar_blocks32(KernelSet& ks) {
  auto set = [&](TensorType t, ToFloatFn to, FromFloatFn from, VecDotFn dot) {
    ks.by_type[static_cast<uint32_t>(t)] = TypeKernels{to, from, dot};
  };
  set(TensorType::Q8_1, q8_1_to_float, q8_1_from_float, nullptr);
  set(TensorType::Q4_1, q4_1_to_float, q4_1_from_float, vec_dot_q4_1);
  set(TensorType::Q5_0, q5_0_to_float, q5_0_from_float, vec_dot_q5_0);
  set(TensorType::Q5_1, q5_1_to_float, q5_1_from_float, vec_dot_q5_1);
  set(TensorType::IQ4_NL, iq4_nl_to_float, iq4_nl_from_float, vec_dot_iq4_nl);
}

}  // namespace detail
}  // namespace el::kernels
