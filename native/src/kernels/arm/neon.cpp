// Baseline NEON kernels (armv8-a, e.g. Cortex-A72 in the Raspberry Pi 4): float ops, fp16 /
// bf16 conversion, the activation quantizers, the F16 register tile, and the int8 dots and
// tiles through widening multiplies.
#if defined(__aarch64__)
#include <algorithm>
#include <cmath>

#include "lora_q8_tiles.h"
#include "neon_int8.h"
#include "neon_quant_ops.h"
#include "../lora_driver.h"
#include "../paths.h"
#include "../quant_dots.h"

namespace el::kernels {
namespace {

inline float32x4_t load_f16x4(const fp16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float32x4_t load_bf16x4(const bf16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

// Sum of a[i]*b[i] where load_a / load_b give 4 floats at element i and get_a / get_b one.
template <typename LA, typename LB, typename GA, typename GB>
inline float dot_generic(int n, LA load_a, LB load_b, GA get_a, GB get_b) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = vfmaq_f32(acc0, load_a(i), load_b(i));
    acc1 = vfmaq_f32(acc1, load_a(i + 4), load_b(i + 4));
    acc2 = vfmaq_f32(acc2, load_a(i + 8), load_b(i + 8));
    acc3 = vfmaq_f32(acc3, load_a(i + 12), load_b(i + 12));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, load_a(i), load_b(i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < n; ++i) s += get_a(i) * get_b(i);
  return s;
}

float dot_f32(int n, const float* a, const float* b) {
  return dot_generic(
      n, [a](int i) { return vld1q_f32(a + i); }, [b](int i) { return vld1q_f32(b + i); },
      [a](int i) { return a[i]; }, [b](int i) { return b[i]; });
}

float dot_f16_f32(int n, const fp16_t* a, const float* b) {
  return dot_generic(
      n, [a](int i) { return load_f16x4(a + i); }, [b](int i) { return vld1q_f32(b + i); },
      [a](int i) { return h2f(a[i]); }, [b](int i) { return b[i]; });
}

void vec_dot_f32(int n, float* s, const void* w, const void* a) {
  *s = dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(a));
}

void vec_dot_f16(int n, float* s, const void* vw, const void* va) {
  const fp16_t* w = static_cast<const fp16_t*>(vw);
  const fp16_t* a = static_cast<const fp16_t*>(va);
  *s = dot_generic(
      n, [w](int i) { return load_f16x4(w + i); }, [a](int i) { return load_f16x4(a + i); },
      [w](int i) { return h2f(w[i]); }, [a](int i) { return h2f(a[i]); });
}

void vec_dot_bf16(int n, float* s, const void* vw, const void* va) {
  const bf16_t* w = static_cast<const bf16_t*>(vw);
  const bf16_t* a = static_cast<const bf16_t*>(va);
  *s = dot_generic(
      n, [w](int i) { return load_bf16x4(w + i); }, [a](int i) { return load_bf16x4(a + i); },
      [w](int i) { return bf16_to_fp32(w[i]); }, [a](int i) { return bf16_to_fp32(a[i]); });
}

void axpy_f32(int n, float alpha, const float* x, float* y) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16(int n, float alpha, const fp16_t* x, float* y) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_f16x4(x + i), alpha));
  for (; i < n; ++i) y[i] += alpha * h2f(x[i]);
}

// As x86/avx2.cpp: four positions at a time, then dot_f16_f32 for the rest.
void attn_scores_f16(int hd, int n, const fp16_t* k, int64_t stride, const float* q, float scale, float* scores) {
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const fp16_t* r[4] = {k + j * stride, k + (j + 1) * stride, k + (j + 2) * stride, k + (j + 3) * stride};
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int i = 0;
    for (; i + 4 <= hd; i += 4) {
      const float32x4_t qv = vld1q_f32(q + i);
      for (int c = 0; c < 4; ++c) acc[c] = vfmaq_f32(acc[c], load_f16x4(r[c] + i), qv);
    }
    // Pairwise adds leave the four rows' sums side by side.
    float32x4_t sum = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
    if (i < hd) {
      float tail[4] = {};
      for (int c = 0; c < 4; ++c)
        for (int e = i; e < hd; ++e) tail[c] += h2f(r[c][e]) * q[e];
      sum = vaddq_f32(sum, vld1q_f32(tail));
    }
    vst1q_f32(scores + j, vmulq_n_f32(sum, scale));
  }
  for (; j < n; ++j) scores[j] = dot_f16_f32(hd, k + j * stride, q) * scale;
}

// As x86/avx2.cpp: V columns in blocks of up to 32 held in registers across the positions.
template <int V>
inline void attn_values_block(int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
  float32x4_t acc[V];
  for (int c = 0; c < V; ++c) acc[c] = vld1q_f32(out + 4 * c);
  for (int j = 0; j < n; ++j) {
    const fp16_t* row = v + j * stride;
    for (int c = 0; c < V; ++c) acc[c] = vfmaq_n_f32(acc[c], load_f16x4(row + 4 * c), w[j]);
  }
  for (int c = 0; c < V; ++c) vst1q_f32(out + 4 * c, acc[c]);
}

void attn_values_f16(int hd, int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
  int i = 0;
  for (; i + 32 <= hd; i += 32) attn_values_block<8>(n, w, v + i, stride, out + i);
  for (; i + 4 <= hd; i += 4) attn_values_block<1>(n, w, v + i, stride, out + i);
  for (; i < hd; ++i)
    for (int j = 0; j < n; ++j) out[i] += w[j] * h2f(v[j * stride + i]);
}

// e^x for 4 floats, as exp_f32x8 in x86/avx2.cpp (Cephes' expf).
inline float32x4_t exp_f32x4(float32x4_t x_in) {
  const float32x4_t x = vmaxq_f32(vdupq_n_f32(-87.3f), vminq_f32(vdupq_n_f32(88.3f), x_in));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
  r = vfmsq_n_f32(r, n, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vcvtq_s32_f32(n), 23);
  const float32x4_t y = vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
  return vbslq_f32(vcgtq_f32(x_in, vdupq_n_f32(88.3f)), vdupq_n_f32(INFINITY), y);
}

// As x86/avx2.cpp.
void softmax_f32(int n, float* x) {
  int j = 0;
  float32x4_t vmax = vdupq_n_f32(-INFINITY);
  for (; j + 4 <= n; j += 4) vmax = vmaxq_f32(vmax, vld1q_f32(x + j));
  float max_x = vmaxvq_f32(vmax);
  for (; j < n; ++j) max_x = std::max(max_x, x[j]);
  float32x4_t vsum = vdupq_n_f32(0);
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t e = exp_f32x4(vsubq_f32(vld1q_f32(x + j), vdupq_n_f32(max_x)));
    vst1q_f32(x + j, e);
    vsum = vaddq_f32(vsum, e);
  }
  double sum = vaddvq_f32(vsum);
  for (; j < n; ++j) sum += (x[j] = std::exp(x[j] - max_x));
  const float inv = float(1.0 / sum);
  j = 0;
  for (; j + 4 <= n; j += 4) vst1q_f32(x + j, vmulq_n_f32(vld1q_f32(x + j), inv));
  for (; j < n; ++j) x[j] *= inv;
}

void silu_mul(int64_t n, float* g, const float* u) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x = vld1q_f32(g + i);
    const float32x4_t s = vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp_f32x4(vnegq_f32(x))));
    vst1q_f32(g + i, vmulq_f32(s, vld1q_f32(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void f16_to_float(const void* vx, float* y, int64_t n) {
  const fp16_t* x = static_cast<const fp16_t*>(vx);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load_f16x4(x + i));
  for (; i < n; ++i) y[i] = h2f(x[i]);
}

// The FPU converts with round-to-nearest-even, like the scalar fp32_to_fp16.
void f16_from_float(const float* x, void* vy, int64_t n) {
  fp16_t* y = static_cast<fp16_t*>(vy);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void bf16_to_float(const void* vx, float* y, int64_t n) {
  const bf16_t* x = static_cast<const bf16_t*>(vx);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load_bf16x4(x + i));
  for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

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

// F16 weights against the activations' float side array (values already rounded to F16,
// as the reference's F16 activation row): each weight vector is converted once per tile
// and used for T tokens.
template <int R, int T>
struct MicroF16 {
  static void run(const TileArgs& g, int r0, int tt) {
    const TileOperands<fp16_t, fp16_t, R, T> op(g, r0, tt);  // reads the activations as floats (op.f)
    const fp16_t* const* w = op.w;
    const float* const* a = op.f;
    float32x4_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= g.n; i += 4) {
      if ((i & 7) == 0) op.prefetch_next(size_t(i) * sizeof(fp16_t), 8 * sizeof(fp16_t));
      float32x4_t x[R];
      for (int r = 0; r < R; ++r) x[r] = load_f16x4(w[r] + i);
      for (int t = 0; t < T; ++t) {
        const float32x4_t y = vld1q_f32(a[t] + i);
        for (int r = 0; r < R; ++r) acc[r][t] = vfmaq_f32(acc[r][t], x[r], y);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = vaddvq_f32(acc[r][t]);
        for (int j = i; j < g.n; ++j) s += h2f(w[r][j]) * a[t][j];
        g.out[(tt + t) * g.os + r0 + r] = s;
      }
  }
};

// ---- LoRA (same operation order as scalar.cpp, so the same bits) --------------
// As the AVX2 kernels, with each 8-wide rank or output group held in two 4-lane registers.

// T tokens x V groups of 8 ranks (from rank 8 * v0); two FMA chains over the inputs.
template <int T, int V>
struct LoraShrinkTile {
  static void run(int n_in, int R, const fp16_t* at, int v0, const float* const* x, const float* coeff,
                  float* const* t) {
    float32x4_t acc[2][T][2 * V];
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < T; ++k)
        for (int v = 0; v < 2 * V; ++v) acc[c][k][v] = vdupq_n_f32(0);
    const fp16_t* a = at + v0 * 8;
    auto step = [&](int i, int c) {
      float32x4_t w[2 * V];
      for (int v = 0; v < 2 * V; ++v) w[v] = load_f16x4(a + int64_t(i) * R + v * 4);
      for (int k = 0; k < T; ++k) {
        const float xi = x[k][i];
        for (int v = 0; v < 2 * V; ++v) acc[c][k][v] = vfmaq_n_f32(acc[c][k][v], w[v], xi);
      }
    };
    int i = 0;
    for (; i + 2 <= n_in; i += 2) {
      step(i, 0);
      step(i + 1, 1);
    }
    if (i < n_in) step(i, 0);
    for (int k = 0; k < T; ++k)
      for (int v = 0; v < 2 * V; ++v)
        vst1q_f32(t[k] + v0 * 8 + v * 4, vmulq_n_f32(vaddq_f32(acc[0][k][v], acc[1][k][v]), coeff[k]));
  }
};

// T tokens x C chunks of 8 outputs from output o: one FMA chain per output over the ranks.
template <int T, int C>
struct LoraExpandTile {
  static void run(int R, const fp16_t* b, const float* const* t, float* const* y, int64_t o) {
    float32x4_t acc[T][2 * C];
    for (int k = 0; k < T; ++k)
      for (int c = 0; c < 2 * C; ++c) acc[k][c] = vld1q_f32(y[k] + o + c * 4);
    for (int j = 0; j < R; ++j) {
      float32x4_t w[2 * C];
      for (int c = 0; c < 2 * C; ++c) w[c] = load_f16x4(b + int64_t(c / 2) * R * 8 + j * 8 + (c % 2) * 4);
      for (int k = 0; k < T; ++k) {
        const float tj = t[k][j];
        for (int c = 0; c < 2 * C; ++c) acc[k][c] = vfmaq_n_f32(acc[k][c], w[c], tj);
      }
    }
    for (int k = 0; k < T; ++k)
      for (int c = 0; c < 2 * C; ++c) vst1q_f32(y[k] + o + c * 4, acc[k][c]);
  }
};

}  // namespace

namespace detail {

void install_neon(KernelSet& ks, TileKernels& tk) {
  auto& t = ks.by_type;
  t[uint32_t(TensorType::F32)].vec_dot = vec_dot_f32;
  t[uint32_t(TensorType::F16)] = TypeKernels{f16_to_float, f16_from_float, vec_dot_f16};
  t[uint32_t(TensorType::BF16)].to_float = bf16_to_float;
  t[uint32_t(TensorType::BF16)].vec_dot = vec_dot_bf16;
  t[uint32_t(TensorType::Q8_0)].from_float = q8_0_from_float;
  t[uint32_t(TensorType::Q8_0)].vec_dot = vec_dot_q8_0_t<DotWidening>;
  t[uint32_t(TensorType::Q4_0)].vec_dot = vec_dot_q4_0_t<DotWidening>;
  t[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K_t<DotWidening>;
  t[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K_t<DotWidening>;
  t[uint32_t(TensorType::Q8_K)].from_float = q8_K_from_float;
  install_quant_dots<NeonQuantOps<DotWidening>>(ks, tk);  // Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K
  tk.by_type[uint32_t(TensorType::F16)] = tile_entry<MicroF16, 4, 4>;
  tk.by_type[uint32_t(TensorType::Q8_0)] = tile_entry<MicroQ<DotWidening, DecodeQ8_0>::K, 4, 4>;
  tk.by_type[uint32_t(TensorType::Q4_0)] = tile_entry<MicroQ<DotWidening, DecodeQ4_0>::K, 4, 4>;
  ks.dot_f32 = dot_f32;
  ks.dot_f16_f32 = dot_f16_f32;
  ks.axpy_f32 = axpy_f32;
  ks.axpy_f16 = axpy_f16;
  ks.attn_scores_f16 = attn_scores_f16;
  ks.attn_values_f16 = attn_values_f16;
  ks.softmax_f32 = softmax_f32;
  ks.silu_mul = silu_mul;
  ks.lora_shrink_f16 = lora_shrink_by_tiles<LoraShrinkTile>;
  ks.lora_expand_f16 = lora_expand_by_tiles<LoraExpandTile>;
  ks.lora_shrink_q8 = lora_shrink_by_tiles<LoraShrinkQ8<LoraDot4Widening>::Tile>;
  ks.lora_expand_q8 = lora_expand_q8_by_tiles<LoraExpandQ8<LoraDot4Widening>::Tile>;
  ks.lora_shrink_q4 = lora_shrink_by_tiles<LoraShrinkQ8<LoraDot4Widening, 4>::Tile>;
  ks.lora_expand_q4 = lora_expand_q4_by_tiles<LoraExpandQ8<LoraDot4Widening, 4>::Tile>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __aarch64__
