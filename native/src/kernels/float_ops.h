// Private to kernels/: the float kernels of every SIMD path (kernels.h: dot products, axpy,
// attention, softmax, SiLU, F16 / BF16 conversion, the F16 register tile and the F16 LoRA
// tiles), written once over a per-ISA vector of W floats. x86/avx2_f32.h supplies it with
// AVX2 (W = 8), arm/neon_f32.h with NEON (W = 4). Header-only with internal linkage: each ISA's
// translation unit compiles its own copy with its own flags.
//
// O supplies (V: W floats):
//   static constexpr int W
//   V zero(), V set1(float), V load(const float*), void store(float*, V)
//   V load_f16(const fp16_t*), void store_f16(fp16_t*, V) (round to nearest even), V load_bf16(const bf16_t*)
//   V fma(V acc, V a, V b)   acc + a * b, fused;   V fnma(V acc, V a, V b)   acc - a * b, fused
//   V add, sub, mul, div, min, max (V, V); V abs(V); V round(V) (to nearest even)
//   V scale2n(V p, V n)      p * 2^n for integral n (n added into the exponent bits)
//   V inf_where_above(V y, V x, float limit)   +inf in the lanes where x > limit, else y
//   float hsum(V), float hmax(V), float f16(fp16_t)
//   void hsum4(const V (&v)[4], float out[4])   the four vectors' sums
// The operation order per element is fixed here, so paths differ only where W changes it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../tensor_types.h"
#include "kernels.h"
#include "lora_driver.h"
#include "tiles.h"

namespace el::kernels {
namespace {

template <class O>
struct FloatOps {
  using V = typename O::V;
  static constexpr int W = O::W;

  // Sum of a[i]*b[i] where load_a / load_b give W floats at element i and get_a / get_b one.
  template <typename LA, typename LB, typename GA, typename GB>
  static float dot_generic(int n, LA load_a, LB load_b, GA get_a, GB get_b) {
    V acc0 = O::zero(), acc1 = O::zero(), acc2 = O::zero(), acc3 = O::zero();
    int i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = O::fma(acc0, load_a(i), load_b(i));
      acc1 = O::fma(acc1, load_a(i + W), load_b(i + W));
      acc2 = O::fma(acc2, load_a(i + 2 * W), load_b(i + 2 * W));
      acc3 = O::fma(acc3, load_a(i + 3 * W), load_b(i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 = O::fma(acc0, load_a(i), load_b(i));
    float s = O::hsum(O::add(O::add(acc0, acc1), O::add(acc2, acc3)));
    for (; i < n; ++i) s += get_a(i) * get_b(i);
    return s;
  }

  static float dot_f32(int n, const float* a, const float* b) {
    return dot_generic(
        n, [a](int i) { return O::load(a + i); }, [b](int i) { return O::load(b + i); }, [a](int i) { return a[i]; },
        [b](int i) { return b[i]; });
  }

  static float dot_f16_f32(int n, const fp16_t* a, const float* b) {
    return dot_generic(
        n, [a](int i) { return O::load_f16(a + i); }, [b](int i) { return O::load(b + i); },
        [a](int i) { return O::f16(a[i]); }, [b](int i) { return b[i]; });
  }

  static void vec_dot_f32(int n, float* s, const void* w, const void* a) {
    *s = dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(a));
  }

  static void vec_dot_f16(int n, float* s, const void* vw, const void* va) {
    const fp16_t* w = static_cast<const fp16_t*>(vw);
    const fp16_t* a = static_cast<const fp16_t*>(va);
    *s = dot_generic(
        n, [w](int i) { return O::load_f16(w + i); }, [a](int i) { return O::load_f16(a + i); },
        [w](int i) { return O::f16(w[i]); }, [a](int i) { return O::f16(a[i]); });
  }

  static void vec_dot_bf16(int n, float* s, const void* vw, const void* va) {
    const bf16_t* w = static_cast<const bf16_t*>(vw);
    const bf16_t* a = static_cast<const bf16_t*>(va);
    *s = dot_generic(
        n, [w](int i) { return O::load_bf16(w + i); }, [a](int i) { return O::load_bf16(a + i); },
        [w](int i) { return bf16_to_fp32(w[i]); }, [a](int i) { return bf16_to_fp32(a[i]); });
  }

  static void axpy_f32(int n, float alpha, const float* x, float* y) {
    const V va = O::set1(alpha);
    int i = 0;
    for (; i + W <= n; i += W) O::store(y + i, O::fma(O::load(y + i), va, O::load(x + i)));
    for (; i < n; ++i) y[i] += alpha * x[i];
  }

  static void axpy_f16(int n, float alpha, const fp16_t* x, float* y) {
    const V va = O::set1(alpha);
    int i = 0;
    for (; i + W <= n; i += W) O::store(y + i, O::fma(O::load(y + i), va, O::load_f16(x + i)));
    for (; i < n; ++i) y[i] += alpha * O::f16(x[i]);
  }

  // Four positions at a time, each with its own accumulator, reduced side by side; positions
  // past a multiple of 4 go through dot_f16_f32.
  static void attn_scores_f16(int hd, int n, const fp16_t* k, int64_t stride, const float* q, float scale,
                              float* scores) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      const fp16_t* r[4] = {k + j * stride, k + (j + 1) * stride, k + (j + 2) * stride, k + (j + 3) * stride};
      V acc[4] = {O::zero(), O::zero(), O::zero(), O::zero()};
      int i = 0;
      for (; i + W <= hd; i += W) {
        const V qv = O::load(q + i);
        for (int c = 0; c < 4; ++c) acc[c] = O::fma(acc[c], O::load_f16(r[c] + i), qv);
      }
      float sum[4];
      O::hsum4(acc, sum);
      for (int c = 0; c < 4; ++c) {
        float tail = 0;
        for (int e = i; e < hd; ++e) tail += O::f16(r[c][e]) * q[e];
        scores[j + c] = (sum[c] + tail) * scale;
      }
    }
    for (; j < n; ++j) scores[j] = dot_f16_f32(hd, k + j * stride, q) * scale;
  }

  // V columns in blocks of up to 8 vectors held in registers across all n positions: out is
  // loaded and stored once per block instead of once per position. Each element adds
  // w[j] * v_j in order of j with one fused multiply-add, as axpy_f16 does.
  template <int NV>
  static void attn_values_block(int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
    V acc[NV];
    for (int c = 0; c < NV; ++c) acc[c] = O::load(out + W * c);
    for (int j = 0; j < n; ++j) {
      const V wj = O::set1(w[j]);
      const fp16_t* row = v + j * stride;
      for (int c = 0; c < NV; ++c) acc[c] = O::fma(acc[c], wj, O::load_f16(row + W * c));
    }
    for (int c = 0; c < NV; ++c) O::store(out + W * c, acc[c]);
  }

  static void attn_values_f16(int hd, int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
    int i = 0;
    for (; i + 8 * W <= hd; i += 8 * W) attn_values_block<8>(n, w, v + i, stride, out + i);
    for (; i + W <= hd; i += W) attn_values_block<1>(n, w, v + i, stride, out + i);
    for (; i < hd; ++i)
      for (int j = 0; j < n; ++j) out[i] += w[j] * O::f16(v[j * stride + i]);
  }

  // e^x, Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r is exact),
  // e^r = 1 + r + r^2 p(r) with p of degree 5, and 2^n added into the exponent. Inputs are
  // clamped to where neither e^x nor 2^n leaves the normal floats, and above that range the
  // result is +inf, as expf overflows (so silu(-1e30) is -0); a NaN stays NaN.
  static V exp(V x_in) {
    const V x = O::max(O::set1(-87.3f), O::min(O::set1(88.3f), x_in));
    const V n = O::round(O::mul(x, O::set1(1.44269504088896341f)));
    V r = O::fnma(x, n, O::set1(0.693359375f));
    r = O::fnma(r, n, O::set1(-2.12194440e-4f));
    V p = O::set1(1.9875691500e-4f);
    p = O::fma(O::set1(1.3981999507e-3f), p, r);
    p = O::fma(O::set1(8.3334519073e-3f), p, r);
    p = O::fma(O::set1(4.1665795894e-2f), p, r);
    p = O::fma(O::set1(1.6666665459e-1f), p, r);
    p = O::fma(O::set1(5.0000001201e-1f), p, r);
    p = O::fma(O::add(r, O::set1(1.0f)), p, O::mul(r, r));
    return O::inf_where_above(O::scale2n(p, n), x_in, 88.3f);
  }

  static void softmax_f32(int n, float* x) {
    int j = 0;
    V vmax = O::set1(-INFINITY);
    for (; j + W <= n; j += W) vmax = O::max(vmax, O::load(x + j));
    float max_x = O::hmax(vmax);
    for (; j < n; ++j) max_x = std::max(max_x, x[j]);
    const V vm = O::set1(max_x);
    V vsum = O::zero();
    j = 0;
    for (; j + W <= n; j += W) {
      const V e = exp(O::sub(O::load(x + j), vm));
      O::store(x + j, e);
      vsum = O::add(vsum, e);
    }
    double sum = O::hsum(vsum);
    for (; j < n; ++j) sum += (x[j] = std::exp(x[j] - max_x));
    const float inv = float(1.0 / sum);
    j = 0;
    for (; j + W <= n; j += W) O::store(x + j, O::mul(O::load(x + j), O::set1(inv)));
    for (; j < n; ++j) x[j] *= inv;
  }

  static void silu_mul(int64_t n, float* g, const float* u) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const V x = O::load(g + i);
      const V s = O::div(x, O::add(O::set1(1.0f), exp(O::sub(O::zero(), x))));
      O::store(g + i, O::mul(s, O::load(u + i)));
    }
    for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }

  static void f16_to_float(const void* vx, float* y, int64_t n) {
    const fp16_t* x = static_cast<const fp16_t*>(vx);
    int64_t i = 0;
    for (; i + W <= n; i += W) O::store(y + i, O::load_f16(x + i));
    for (; i < n; ++i) y[i] = O::f16(x[i]);
  }

  static void f16_from_float(const float* x, void* vy, int64_t n) {
    fp16_t* y = static_cast<fp16_t*>(vy);
    int64_t i = 0;
    for (; i + W <= n; i += W) O::store_f16(y + i, O::load(x + i));
    for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
  }

  static void bf16_to_float(const void* vx, float* y, int64_t n) {
    const bf16_t* x = static_cast<const bf16_t*>(vx);
    int64_t i = 0;
    for (; i + W <= n; i += W) O::store(y + i, O::load_bf16(x + i));
    for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
  }

  // F16 weights against the activations' float side array (values already rounded to F16, as
  // the reference's F16 activation row): each weight vector is converted once per tile and
  // used for T tokens.
  template <int R, int T>
  struct MicroF16 {
    // Not inlined: inside a caller, the compiler spends a register the tile needs.
    __attribute__((noinline)) static void run(const TileArgs& g, int r0, int tt) {
      const TileOperands<fp16_t, fp16_t, R, T> op(g, r0, tt);  // reads the activations as floats (op.f)
      const fp16_t* const* w = op.w;
      const float* const* a = op.f;
      V acc[R][T];
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = O::zero();
      int i = 0;
      for (; i + W <= g.n; i += W) {
        if (i % 8 == 0) op.prefetch_next(size_t(i) * sizeof(fp16_t), 8 * sizeof(fp16_t));
        V x[R];
        for (int r = 0; r < R; ++r) x[r] = O::load_f16(w[r] + i);
        for (int t = 0; t < T; ++t) {
          const V y = O::load(a[t] + i);
          for (int r = 0; r < R; ++r) acc[r][t] = O::fma(acc[r][t], x[r], y);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
          float s = O::hsum(acc[r][t]);
          for (int j = i; j < g.n; ++j) s += O::f16(w[r][j]) * a[t][j];
          g.out[(tt + t) * g.os + r0 + r] = s;
        }
    }
  };

  // ---- LoRA over the F16 pool (same operation order as scalar.cpp, so the same bits) ----
  static constexpr int kPer8 = 8 / W;  // vectors per group of 8 ranks or outputs

  // T tokens x V8 groups of 8 ranks (from rank 8 * v0): two FMA chains over the inputs (even,
  // odd), added at the end. Each input broadcasts x once per token against the vectors of At's
  // row i, so no horizontal sums are needed. The A stream asks for its lines kLoraPrefetchBytes
  // ahead itself, up to its end.
  template <int T, int V8>
  struct LoraShrink {
    static void run(int n_in, int R, const fp16_t* at, int v0, const float* const* x, const float* coeff,
                    float* const* t) {
      constexpr int N = V8 * kPer8;
      V acc[2][T][N];
      for (int c = 0; c < 2; ++c)
        for (int k = 0; k < T; ++k)
          for (int v = 0; v < N; ++v) acc[c][k][v] = O::zero();
      const fp16_t* a = at + v0 * 8;
      const fp16_t* end = at + int64_t(n_in) * R;
      auto step = [&](int i, int c) {
        V w[N];
        for (int v = 0; v < N; ++v) w[v] = O::load_f16(a + int64_t(i) * R + v * W);
        for (int k = 0; k < T; ++k) {
          const V xb = O::set1(x[k][i]);
          for (int v = 0; v < N; ++v) acc[c][k][v] = O::fma(acc[c][k][v], w[v], xb);
        }
      };
      int i = 0;
      for (; i + 2 <= n_in; i += 2) {
        if ((i & 7) == 0)
          lora_prefetch(a + int64_t(i) * R + kLoraPrefetchBytes / int64_t(sizeof(fp16_t)), end,
                        8 * R * int64_t(sizeof(fp16_t)));
        step(i, 0);
        step(i + 1, 1);
      }
      if (i < n_in) step(i, 0);
      for (int k = 0; k < T; ++k) {
        const V ck = O::set1(coeff[k]);
        for (int v = 0; v < N; ++v) O::store(t[k] + v0 * 8 + v * W, O::mul(ck, O::add(acc[0][k][v], acc[1][k][v])));
      }
    }
  };

  // T tokens x C chunks of 8 outputs from output o (chunk data from b): one FMA chain per
  // output over the ranks, y loaded and stored once.
  template <int T, int C>
  struct LoraExpand {
    static void run(int R, const fp16_t* b, const float* const* t, float* const* y, int64_t o) {
      constexpr int N = C * kPer8;
      V acc[T][N];
      for (int k = 0; k < T; ++k)
        for (int c = 0; c < N; ++c) acc[k][c] = O::load(y[k] + o + c * W);
      for (int j = 0; j < R; ++j) {
        V w[N];
        for (int c = 0; c < N; ++c) w[c] = O::load_f16(b + int64_t(c / kPer8) * R * 8 + j * 8 + (c % kPer8) * W);
        for (int k = 0; k < T; ++k) {
          const V tb = O::set1(t[k][j]);
          for (int c = 0; c < N; ++c) acc[k][c] = O::fma(acc[k][c], tb, w[c]);
        }
      }
      for (int k = 0; k < T; ++k)
        for (int c = 0; c < N; ++c) O::store(y[k] + o + c * W, acc[k][c]);
    }
  };
};

// Installs the kernels above into a path's table; F16 weights get register tiles of at most
// F16Rows rows x 4 tokens.
template <class O, int F16Rows>
void install_float_ops(KernelSet& ks) {
  using F = FloatOps<O>;
  auto& f32 = ks.by_type[uint32_t(TensorType::F32)];
  auto& f16 = ks.by_type[uint32_t(TensorType::F16)];
  auto& bf16 = ks.by_type[uint32_t(TensorType::BF16)];
  f32.vec_dot = F::vec_dot_f32;
  f16.to_float = F::f16_to_float;
  f16.from_float = F::f16_from_float;
  f16.vec_dot = F::vec_dot_f16;
  f16.tile = tile_entry<F::template MicroF16, F16Rows, 4>;
  bf16.to_float = F::bf16_to_float;
  bf16.vec_dot = F::vec_dot_bf16;
  ks.dot_f32 = F::dot_f32;
  ks.dot_f16_f32 = F::dot_f16_f32;
  ks.axpy_f32 = F::axpy_f32;
  ks.axpy_f16 = F::axpy_f16;
  ks.attn_scores_f16 = F::attn_scores_f16;
  ks.attn_values_f16 = F::attn_values_f16;
  ks.softmax_f32 = F::softmax_f32;
  ks.silu_mul = F::silu_mul;
  ks.lora_shrink_f16 = lora_shrink_by_tiles<F::template LoraShrink>;
  ks.lora_expand_f16 = lora_expand_by_tiles<F::template LoraExpand>;
}

}  // namespace
}  // namespace el::kernels
