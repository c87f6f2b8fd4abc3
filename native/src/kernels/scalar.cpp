// Scalar reference kernels: the definition every SIMD path is tested against.
// Quantized dot products are integer within a block (as ggml), float across blocks.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "block_scales.h"
#include "lora_q8.h"
#include "paths.h"

namespace el::kernels {
namespace {

// Round half to even (the FPU's default mode), like ggml's nearest_int.
inline int nearest(float x) { return int(std::nearbyint(x)); }

// ---- F32 / F16 / BF16 ------------------------------------------------------

void f32_to_float(const void* x, float* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }
void f32_from_float(const float* x, void* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }

void f16_to_float(const void* vx, float* y, int64_t n) {
  const fp16_t* x = static_cast<const fp16_t*>(vx);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void f16_from_float(const float* x, void* vy, int64_t n) {
  fp16_t* y = static_cast<fp16_t*>(vy);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void bf16_to_float(const void* vx, float* y, int64_t n) {
  const bf16_t* x = static_cast<const bf16_t*>(vx);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}
void bf16_from_float(const float* x, void* vy, int64_t n) {
  bf16_t* y = static_cast<bf16_t*>(vy);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

float dot_f32(int n, const float* a, const float* b) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return float(s);
}

float dot_f16_f32(int n, const fp16_t* a, const float* b) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(fp16_to_fp32(a[i])) * b[i];
  return float(s);
}

void axpy_f32(int n, float alpha, const float* x, float* y) {
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16(int n, float alpha, const fp16_t* x, float* y) {
  for (int i = 0; i < n; ++i) y[i] += alpha * fp16_to_fp32(x[i]);
}

void attn_scores_f16(int hd, int n, const fp16_t* k, int64_t stride, const float* q, float scale, float* scores) {
  for (int j = 0; j < n; ++j) scores[j] = dot_f16_f32(hd, k + j * stride, q) * scale;
}

void attn_values_f16(int hd, int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
  for (int j = 0; j < n; ++j) axpy_f16(hd, w[j], v + j * stride, out);
}

void softmax_f32(int n, float* x) {
  float max_x = -INFINITY;
  for (int j = 0; j < n; ++j) max_x = std::max(max_x, x[j]);
  double sum = 0;
  for (int j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - max_x);
    sum += x[j];
  }
  const float inv = float(1.0 / sum);
  for (int j = 0; j < n; ++j) x[j] *= inv;
}

void silu_mul(int64_t n, float* g, const float* u) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// ---- LoRA (layouts in kernels.h / lora/lora_pool.h) ------------------------
// These fix the order of every float operation, and the SIMD paths follow it exactly, so
// every path gives the same bits: shrink sums even and odd inputs in two fused
// multiply-add chains and adds them at the end; expand adds rank j = 0, 1, ... to y with
// one fused multiply-add each.

void lora_shrink_f16(int n_in, int R, const fp16_t* at, int n_tok, const float* const* x, const float* coeff,
                     float* const* t) {
  for (int k = 0; k < n_tok; ++k)
    for (int j = 0; j < R; ++j) {
      float acc[2] = {0.0f, 0.0f};
      for (int i = 0; i < n_in; ++i) acc[i & 1] = std::fma(fp16_to_fp32(at[int64_t(i) * R + j]), x[k][i], acc[i & 1]);
      t[k][j] = coeff[k] * (acc[0] + acc[1]);
    }
}

void lora_expand_f16(int64_t o0, int64_t o1, int R, const fp16_t* const* b, int n_tok, const float* const* t,
                     float* const* y) {
  for (int k = 0; k < n_tok; ++k)
    for (int64_t o = o0; o < o1; ++o) {
      const fp16_t* chunk = b[k] + (o / kLoraOutChunk) * R * kLoraOutChunk + o % kLoraOutChunk;
      float acc = y[k][o];
      for (int j = 0; j < R; ++j) acc = std::fma(t[k][j], fp16_to_fp32(chunk[j * kLoraOutChunk]), acc);
      y[k][o] = acc;
    }
}

// 8-bit and 4-bit pools (layouts and operation order in kernels.h; quant positions in lora_q8.h).
template <int Bits>
void lora_shrink_int(int n_in, int R, const uint8_t* a, int n_tok, const block_q8_0* const* x, const float* coeff,
                     float* const* t) {
  constexpr int QB = kLoraQ8Block;
  const int nb = (n_in + QB - 1) / QB;
  for (int k = 0; k < n_tok; ++k)
    for (int j = 0; j < R; ++j) {
      float acc = 0.0f;
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = a + b * lora_a_block_bytes<Bits>(R);
        fp16_t d;
        std::memcpy(&d, blk + 2 * j, sizeof d);
        int32_t sum = 0;
        for (int i = 0; i < QB; ++i)
          sum += lora_quant_value<Bits>(blk[lora_a_quant_byte<Bits>(R, j, i)], i / 4) * x[k][b].qs[i];
        acc = std::fma(fp16_to_fp32(x[k][b].d) * fp16_to_fp32(d), float(sum), acc);
      }
      t[k][j] = coeff[k] * acc;
    }
}

template <int Bits>
void lora_expand_int(int64_t o0, int64_t o1, int R, const uint8_t* const* b, int n_tok, const int8_t* const* tq,
                     const float* td, float* const* y) {
  constexpr int C = kLoraOutChunk;
  for (int k = 0; k < n_tok; ++k) {
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* chunk = b[k] + (o / C) * lora_b_chunk_bytes<Bits>(R);
      fp16_t d;
      std::memcpy(&d, chunk + 2 * (o % C), sizeof d);
      int32_t sum = 0;
      for (int j = 0; j < R; ++j)
        sum += lora_quant_value<Bits>(chunk[lora_b_quant_byte<Bits>(int(o % C), j)], j / 4) * tq[k][j];
      y[k][o] = std::fma(td[k] * fp16_to_fp32(d), float(sum), y[k][o]);
    }
  }
}

void vec_dot_f32(int n, float* s, const void* w, const void* a) {
  *s = dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(a));
}

void vec_dot_f16(int n, float* s, const void* vw, const void* va) {
  const fp16_t* w = static_cast<const fp16_t*>(vw);
  const fp16_t* a = static_cast<const fp16_t*>(va);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += double(fp16_to_fp32(w[i])) * fp16_to_fp32(a[i]);
  *s = float(sum);
}

void vec_dot_bf16(int n, float* s, const void* vw, const void* va) {
  const bf16_t* w = static_cast<const bf16_t*>(vw);
  const bf16_t* a = static_cast<const bf16_t*>(va);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += double(bf16_to_fp32(w[i])) * bf16_to_fp32(a[i]);
  *s = float(sum);
}

// ---- Q8_0 ------------------------------------------------------------------

void q8_0_to_float(const void* vx, float* y, int64_t n) {
  const block_q8_0* x = static_cast<const block_q8_0*>(vx);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = d * x[i].qs[j];
  }
}

// ggml's x86 activation quantizer: d = amax/127, q = round-half-even(x * 127/amax).
void q8_0_from_float(const float* x, void* vy, int64_t n) {
  block_q8_0* y = static_cast<block_q8_0*>(vy);
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = int8_t(nearest(x[j] * id));
  }
}

void vec_dot_q8_0(int n, float* s, const void* vw, const void* va) {
  const block_q8_0* w = static_cast<const block_q8_0*>(vw);
  const block_q8_0* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += w[i].qs[j] * a[i].qs[j];
    sum += float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d));
  }
  *s = sum;
}

// ---- Q4_0 ------------------------------------------------------------------

void q4_0_to_float(const void* vx, float* y, int64_t n) {
  const block_q4_0* x = static_cast<const block_q4_0*>(vx);
  for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * ((x[i].qs[j] & 0xF) - 8);
      y[j + QK4_0 / 2] = d * ((x[i].qs[j] >> 4) - 8);
    }
  }
}

// ggml's reference quantizer: the value of largest magnitude maps to -8.
void q4_0_from_float(const float* x, void* vy, int64_t n) {
  block_q4_0* y = static_cast<block_q4_0*>(vy);
  for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_0; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int q1 = std::min(15, int(int8_t(x[j + QK4_0 / 2] * id + 8.5f)));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void vec_dot_q4_0(int n, float* s, const void* vw, const void* va) {
  const block_q4_0* w = static_cast<const block_q4_0*>(vw);
  const block_q8_0* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK4_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((w[i].qs[j] & 0xF) - 8) * a[i].qs[j];
      sumi += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + QK4_0 / 2];
    }
    sum += float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d));
  }
  *s = sum;
}

// ---- Q8_K ------------------------------------------------------------------

void q8_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q8_K* x = static_cast<const block_q8_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i)
    for (int j = 0; j < QK_K; ++j) y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

// ggml's quantize_row_q8_K_ref: the signed value of largest magnitude maps to -127
// (so d may be negative); bsums hold the sums of each group of 16 quants.
void q8_K_from_float(const float* x, void* vy, int64_t n) {
  block_q8_K* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.f) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = int8_t(std::min(127, nearest(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[i].qs[g * 16 + j];
      y[i].bsums[g] = int16_t(sum);
    }
    y[i].d = 1.f / iscale;
  }
}

// ---- Q4_K ------------------------------------------------------------------

void q4_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q4_K* x = static_cast<const block_q4_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    uint8_t sc[8], m[8];
    q4k_scales_mins(x[i].scales, sc, m);
    const uint8_t* q = x[i].qs;
    // Each 32 bytes of qs hold two sub-blocks: low nibbles first, then high nibbles.
    for (int j = 0; j < QK_K / 64; ++j, q += 32) {
      const float d1 = d * sc[2 * j], m1 = dmin * m[2 * j];
      const float d2 = d * sc[2 * j + 1], m2 = dmin * m[2 * j + 1];
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

// Simple reference quantizer (for test data): per sub-block min/max, 6-bit scales and mins.
void q4_K_from_float(const float* x, void* vy, int64_t n) {
  block_q4_K* y = static_cast<block_q4_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scale[8], minv[8];
    for (int j = 0; j < 8; ++j) {
      const float* xs = x + 32 * j;
      const float lo = std::min(0.f, *std::min_element(xs, xs + 32));
      const float hi = *std::max_element(xs, xs + 32);
      scale[j] = (hi - lo) / 15.f;
      minv[j] = -lo;
    }
    q4k_set_scales_mins(y[i], scale, minv);
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    uint8_t L[QK_K];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      q4k_scale_min(j, y[i].scales, &sc, &m);
      const float dd = d * sc, dm = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const int q = dd != 0.f ? nearest((x[32 * j + l] + dm) / dd) : 0;
        L[32 * j + l] = uint8_t(std::clamp(q, 0, 15));
      }
    }
    for (int j = 0; j < QK_K; j += 64)
      for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

void vec_dot_q4_K(int n, float* s, const void* vw, const void* va) {
  const block_q4_K* w = static_cast<const block_q4_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    q4k_scales_mins(w[i].scales, sc, m);
    // The min term needs only the activation group sums: sum_j m_j * sum(q8 in sub-block j).
    int summ = 0;
    for (int g = 0; g < QK_K / 16; ++g) summ += a[i].bsums[g] * m[g / 2];
    int sumi = 0;
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = a[i].qs;
    for (int j = 0; j < QK_K / 64; ++j, q4 += 32, q8 += 64) {
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += (q4[l] & 0xF) * q8[l];
        s2 += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += s1 * sc[2 * j] + s2 * sc[2 * j + 1];
    }
    sum += fp16_to_fp32(w[i].d) * a[i].d * float(sumi) - fp16_to_fp32(w[i].dmin) * a[i].d * float(summ);
  }
  *s = sum;
}

// ---- Q6_K ------------------------------------------------------------------

// Element e of a Q6_K super-block, as an unsigned 6-bit value (0..63; value = q - 32).
// Per 128 elements: 64 bytes of low nibbles (two runs of 32 sharing bytes, low then high
// nibble) and 32 bytes holding four 2-bit high parts.
inline int q6k_quant(const block_q6_K& b, int e) {
  const int half = e / 128, r = e % 128, l = r % 32, quarter = r / 32;
  const uint8_t* ql = b.ql + 64 * half;
  const uint8_t* qh = b.qh + 32 * half;
  const int lo = (quarter & 1) ? ql[l + 32] : ql[l];
  const int low4 = quarter < 2 ? (lo & 0xF) : (lo >> 4);
  return low4 | (((qh[l] >> (2 * quarter)) & 3) << 4);
}

void q6_K_to_float(const void* vx, float* y, int64_t n) {
  const block_q6_K* x = static_cast<const block_q6_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int e = 0; e < QK_K; ++e) *y++ = d * x[i].scales[e / 16] * (q6k_quant(x[i], e) - 32);
  }
}

// Simple reference quantizer (for test data): per sub-block of 16, the value of largest
// magnitude maps to -32; the 8-bit sub-block scales share one fp16 super-scale.
void q6_K_from_float(const float* x, void* vy, int64_t n) {
  block_q6_K* y = static_cast<block_q6_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scale[16], max_abs_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float amax = 0, max = 0;
      for (int l = 0; l < 16; ++l) {
        if (std::fabs(x[16 * j + l]) > amax) {
          amax = std::fabs(x[16 * j + l]);
          max = x[16 * j + l];
        }
      }
      scale[j] = max / -32.f;
      max_abs_scale = std::max(max_abs_scale, std::fabs(scale[j]));
    }
    y[i].d = fp32_to_fp16(max_abs_scale / 127.f);
    const float d = fp16_to_fp32(y[i].d);
    uint8_t L[QK_K];
    for (int j = 0; j < 16; ++j) {
      y[i].scales[j] = int8_t(d != 0.f ? std::clamp(nearest(scale[j] / d), -128, 127) : 0);
      const float dd = d * y[i].scales[j];
      for (int l = 0; l < 16; ++l) {
        const int q = dd != 0.f ? nearest(x[16 * j + l] / dd) : 0;
        L[16 * j + l] = uint8_t(std::clamp(q, -32, 31) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = y[i].ql + 64 * h;
      uint8_t* qh = y[i].qh + 32 * h;
      const uint8_t* q = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = uint8_t((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
        ql[l + 32] = uint8_t((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
        qh[l] = uint8_t((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                        ((q[l + 96] >> 4) << 6));
      }
    }
  }
}

void vec_dot_q6_K(int n, float* s, const void* vw, const void* va) {
  const block_q6_K* w = static_cast<const block_q6_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      int sj = 0;
      for (int l = 0; l < 16; ++l) sj += (q6k_quant(w[i], 16 * j + l) - 32) * a[i].qs[16 * j + l];
      sumi += sj * w[i].scales[j];
    }
    sum += fp16_to_fp32(w[i].d) * a[i].d * float(sumi);
  }
  *s = sum;
}

}  // namespace

namespace detail {

void fill_scalar(KernelSet& ks) {
  ks.name = "scalar";
  auto set = [&](TensorType t, ToFloatFn to, FromFloatFn from, VecDotFn dot) {
    ks.by_type[static_cast<uint32_t>(t)] = TypeKernels{to, from, dot};
  };
  set(TensorType::F32, f32_to_float, f32_from_float, vec_dot_f32);
  set(TensorType::F16, f16_to_float, f16_from_float, vec_dot_f16);
  set(TensorType::BF16, bf16_to_float, bf16_from_float, vec_dot_bf16);
  set(TensorType::Q8_0, q8_0_to_float, q8_0_from_float, vec_dot_q8_0);
  set(TensorType::Q4_0, q4_0_to_float, q4_0_from_float, vec_dot_q4_0);
  set(TensorType::Q4_K, q4_K_to_float, q4_K_from_float, vec_dot_q4_K);
  set(TensorType::Q6_K, q6_K_to_float, q6_K_from_float, vec_dot_q6_K);
  set(TensorType::Q8_K, q8_K_to_float, q8_K_from_float, nullptr);
  fill_scalar_blocks32(ks);
  fill_scalar_kquants(ks);
  ks.dot_f32 = dot_f32;
  ks.dot_f16_f32 = dot_f16_f32;
  ks.axpy_f32 = axpy_f32;
  ks.axpy_f16 = axpy_f16;
  ks.attn_scores_f16 = attn_scores_f16;
  ks.attn_values_f16 = attn_values_f16;
  ks.softmax_f32 = softmax_f32;
  ks.silu_mul = silu_mul;
  ks.lora_shrink_f16 = lora_shrink_f16;
  ks.lora_expand_f16 = lora_expand_f16;
  ks.lora_shrink_q8 = lora_shrink_int<8>;
  ks.lora_expand_q8 = lora_expand_int<8>;
  ks.lora_shrink_q4 = lora_shrink_int<4>;
  ks.lora_expand_q4 = lora_expand_int<4>;
}

}  // namespace detail
}  // namespace el::kernels
