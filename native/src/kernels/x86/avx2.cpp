// AVX2 + FMA + F16C kernels. Compiled with -mavx2 -mfma -mf16c and only called after
// dispatch.cpp has seen those features on this CPU. Integer dots follow ggml's scheme:
// bytes multiplied with maddubs (unsigned x signed), widened with madd, scaled per block.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../block_scales.h"
#include "../lora_driver.h"
#include "avx2_common.h"
#include "lora_q8_tiles.h"

namespace el::kernels {
namespace {

inline __m256 load_f16x8(const fp16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m256 load_bf16x8(const bf16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// ---- float ops -------------------------------------------------------------

// Sum of a[i]*b[i] where load_a / load_b give 8 floats at element i and get_a / get_b one.
template <typename LA, typename LB, typename GA, typename GB>
inline float dot_generic(int n, LA load_a, LB load_b, GA get_a, GB get_b) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(load_a(i), load_b(i), acc0);
    acc1 = _mm256_fmadd_ps(load_a(i + 8), load_b(i + 8), acc1);
    acc2 = _mm256_fmadd_ps(load_a(i + 16), load_b(i + 16), acc2);
    acc3 = _mm256_fmadd_ps(load_a(i + 24), load_b(i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_a(i), load_b(i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += get_a(i) * get_b(i);
  return s;
}

float dot_f32(int n, const float* a, const float* b) {
  return dot_generic(
      n, [a](int i) { return _mm256_loadu_ps(a + i); }, [b](int i) { return _mm256_loadu_ps(b + i); },
      [a](int i) { return a[i]; }, [b](int i) { return b[i]; });
}

float dot_f16_f32(int n, const fp16_t* a, const float* b) {
  return dot_generic(
      n, [a](int i) { return load_f16x8(a + i); }, [b](int i) { return _mm256_loadu_ps(b + i); },
      [a](int i) { return h2f(a[i]); }, [b](int i) { return b[i]; });
}

void vec_dot_f32(int n, float* s, const void* w, const void* a) {
  *s = dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(a));
}

void vec_dot_f16(int n, float* s, const void* vw, const void* va) {
  const fp16_t* w = static_cast<const fp16_t*>(vw);
  const fp16_t* a = static_cast<const fp16_t*>(va);
  *s = dot_generic(
      n, [w](int i) { return load_f16x8(w + i); }, [a](int i) { return load_f16x8(a + i); },
      [w](int i) { return h2f(w[i]); }, [a](int i) { return h2f(a[i]); });
}

void vec_dot_bf16(int n, float* s, const void* vw, const void* va) {
  const bf16_t* w = static_cast<const bf16_t*>(vw);
  const bf16_t* a = static_cast<const bf16_t*>(va);
  *s = dot_generic(
      n, [w](int i) { return load_bf16x8(w + i); }, [a](int i) { return load_bf16x8(a + i); },
      [w](int i) { return bf16_to_fp32(w[i]); }, [a](int i) { return bf16_to_fp32(a[i]); });
}

void axpy_f32(int n, float alpha, const float* x, float* y) {
  const __m256 va = _mm256_set1_ps(alpha);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16(int n, float alpha, const fp16_t* x, float* y) {
  const __m256 va = _mm256_set1_ps(alpha);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * h2f(x[i]);
}

// Four positions at a time, each with its own accumulator; one reduction gives their four
// sums side by side. Positions past a multiple of 4 go through dot_f16_f32.
void attn_scores_f16(int hd, int n, const fp16_t* k, int64_t stride, const float* q, float scale, float* scores) {
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const fp16_t* r[4] = {k + j * stride, k + (j + 1) * stride, k + (j + 2) * stride, k + (j + 3) * stride};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int i = 0;
    for (; i + 8 <= hd; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      for (int c = 0; c < 4; ++c) acc[c] = _mm256_fmadd_ps(load_f16x8(r[c] + i), qv, acc[c]);
    }
    // hadd twice leaves, per 128-bit half, the four rows' partial sums; the halves then add.
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    if (i < hd) {
      alignas(16) float tail[4] = {};
      for (int c = 0; c < 4; ++c)
        for (int e = i; e < hd; ++e) tail[c] += h2f(r[c][e]) * q[e];
      sum = _mm_add_ps(sum, _mm_load_ps(tail));
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(sum, _mm_set1_ps(scale)));
  }
  for (; j < n; ++j) scores[j] = dot_f16_f32(hd, k + j * stride, q) * scale;
}

// V columns in blocks of up to 64 held in registers across all n positions: out is loaded
// and stored once per block instead of once per position. Each element adds w[j] * v_j in
// order of j with one fused multiply-add, as axpy_f16 does.
template <int V>
inline void attn_values_block(int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
  __m256 acc[V];
  for (int c = 0; c < V; ++c) acc[c] = _mm256_loadu_ps(out + 8 * c);
  for (int j = 0; j < n; ++j) {
    const __m256 wj = _mm256_set1_ps(w[j]);
    const fp16_t* row = v + j * stride;
    for (int c = 0; c < V; ++c) acc[c] = _mm256_fmadd_ps(wj, load_f16x8(row + 8 * c), acc[c]);
  }
  for (int c = 0; c < V; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

void attn_values_f16(int hd, int n, const float* w, const fp16_t* v, int64_t stride, float* out) {
  int i = 0;
  for (; i + 64 <= hd; i += 64) attn_values_block<8>(n, w, v + i, stride, out + i);
  for (; i + 8 <= hd; i += 8) attn_values_block<1>(n, w, v + i, stride, out + i);
  for (; i < hd; ++i)
    for (int j = 0; j < n; ++j) out[i] += w[j] * h2f(v[j * stride + i]);
}

// e^x for 8 floats, Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r
// is exact), e^r = 1 + r + r^2 p(r) with p of degree 5, and 2^n added into the exponent.
// Inputs are clamped to where neither e^x nor 2^n leaves the normal floats, and above that
// range the result is +inf, as expf overflows (so silu(-1e30) is -0); a NaN stays NaN.
inline __m256 exp_f32x8(__m256 x_in) {
  const __m256 x = _mm256_max_ps(_mm256_set1_ps(-87.3f), _mm256_min_ps(_mm256_set1_ps(88.3f), x_in));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  const __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x_in, _mm256_set1_ps(88.3f), _CMP_GT_OQ));
}

void softmax_f32(int n, float* x) {
  int j = 0;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (; j + 8 <= n; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + j));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  float max_x = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  for (; j < n; ++j) max_x = std::max(max_x, x[j]);
  const __m256 vm = _mm256_set1_ps(max_x);
  __m256 vsum = _mm256_setzero_ps();
  j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_f32x8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
    _mm256_storeu_ps(x + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  double sum = hsum(vsum);
  for (; j < n; ++j) sum += (x[j] = std::exp(x[j] - max_x));
  const float inv = float(1.0 / sum);
  j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), _mm256_set1_ps(inv)));
  for (; j < n; ++j) x[j] *= inv;
}

void silu_mul(int64_t n, float* g, const float* u) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = exp_f32x8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void f16_to_float(const void* vx, float* y, int64_t n) {
  const fp16_t* x = static_cast<const fp16_t*>(vx);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
  for (; i < n; ++i) y[i] = h2f(x[i]);
}

void f16_from_float(const float* x, void* vy, int64_t n) {
  fp16_t* y = static_cast<fp16_t*>(vy);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

void bf16_to_float(const void* vx, float* y, int64_t n) {
  const bf16_t* x = static_cast<const bf16_t*>(vx);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16x8(x + i));
  for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

// ---- activation quantizers ---------------------------------------------------

void q8_0_from_float(const float* x, void* vy, int64_t n) {
  block_q8_0* y = static_cast<block_q8_0*>(vy);
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    const __m256i q = quantize_32_q8(x, &y[i].d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
  }
}

// Sum of 16 signed bytes.
inline int sum16_i8(const int8_t* q) {
  const __m128i u = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), _mm_set1_epi8(char(0x80)));
  const __m128i s = _mm_sad_epu8(u, _mm_setzero_si128());  // sums of (q + 128) per 8 bytes
  return _mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128;
}

void q8_K_from_float(const float* x, void* vy, int64_t n) {
  block_q8_K* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) vmax = _mm256_max_ps(vmax, abs_ps(_mm256_loadu_ps(x + j)));
    const float amax = hmax(vmax);
    if (amax == 0.f) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    // The reference keeps the sign of the first element reaching amax.
    float max = 0;
    const __m256 va = _mm256_set1_ps(amax);
    for (int j = 0; j < QK_K; j += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
      if (mask) {
        max = x[j + __builtin_ctz(unsigned(mask))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 32) {
      const __m256i q = round_pack_32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j)), _mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8)),
                                      _mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16)),
                                      _mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), q);
    }
    for (int g = 0; g < QK_K / 16; ++g) y[i].bsums[g] = int16_t(sum16_i8(y[i].qs + 16 * g));
    y[i].d = 1.f / iscale;
  }
}

// ---- quantized dot products --------------------------------------------------

// Signed x signed bytes through maddubs (unsigned x signed): |x| . sign(y, x) (|x| <= 127).
inline __m256i dot_q8_q8(const block_q8_0& w, const block_q8_0& a) {
  const __m256i x = load256(w.qs), y = load256(a.qs);
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// The nibbles q stay unsigned (maddubs' unsigned operand): (q - 8).y = q.y - 8 * sum(y),
// subtracted exactly in the 16-bit pair sums (|(q - 8).y pair| <= 2 * 8 * 127).
inline __m256i dot_q4_q8(const block_q4_0& w, const block_q8_0& a) {
  const __m256i y = load256(a.qs);
  const __m256i y8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), y);
  const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles_32(w.qs), y), y8);
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

void vec_dot_q4_K(int n, float* s, const void* vw, const void* va) {
  const block_q4_K* w = static_cast<const block_q4_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float acc_min = 0;
  for (int i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    q4k_scales_mins(w[i].scales, sc, m);
    // min term: bsums (16 groups of 16) times the min of their 32-wide sub-block
    const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].bsums));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].bsums + 8));
    __m128i pm = _mm_add_epi32(_mm_madd_epi16(b0, _mm_unpacklo_epi16(mins, mins)),
                               _mm_madd_epi16(b1, _mm_unpackhi_epi16(mins, mins)));
    pm = _mm_add_epi32(pm, _mm_unpackhi_epi64(pm, pm));
    pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 1));
    acc_min += fp16_to_fp32(w[i].dmin) * a[i].d * float(_mm_cvtsi128_si32(pm));

    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < QK_K / 64; ++j) {
      const __m256i q4 = load256(w[i].qs + 32 * j);
      const __m256i lo = _mm256_and_si256(q4, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
      const __m256i pl = _mm256_maddubs_epi16(lo, load256(a[i].qs + 64 * j));
      const __m256i ph = _mm256_maddubs_epi16(hi, load256(a[i].qs + 64 * j + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * j])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * j + 1])));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * a[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc) - acc_min;
}

void vec_dot_q6_K(int n, float* s, const void* vw, const void* va) {
  const block_q6_K* w = static_cast<const block_q6_K*>(vw);
  const block_q8_K* a = static_cast<const block_q8_K*>(va);
  const __m256i low4 = _mm256_set1_epi8(0x0F), top2 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = w[i].scales;
    // Quants are stored unsigned (q + 32): subtract 32 * sum_j scale_j * bsum_j at the end.
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i bias = _mm256_madd_epi16(load256(a[i].bsums), sc16);

    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(w[i].ql + 64 * h), ql1 = load256(w[i].ql + 64 * h + 32);
      const __m256i qh = load256(w[i].qh + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top2)),
          _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, top2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), top2)),
      };
      for (int k = 0; k < 4; ++k) {
        const int sb = 8 * h + 2 * k;  // sub-blocks of the low and high 16 bytes
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[sb + 1]), _mm_set1_epi16(sc[sb]));
        const __m256i p = _mm256_maddubs_epi16(q[k], load256(a[i].qs + 128 * h + 32 * k));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
      }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(bias, 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * a[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc);
}

// ---- rows x tokens register tiles ----------------------------------------------

// F16 weights against the activations' float side array (values already rounded to F16,
// as the reference's F16 activation row): each weight vector is converted once per tile
// and used for T tokens.
template <int R, int T>
struct MicroF16 {
  // Not inlined: inside a caller, the compiler spends a register the tile needs.
  __attribute__((noinline)) static void run(const TileArgs& g, int r0, int tt) {
    const TileOperands<fp16_t, fp16_t, R, T> op(g, r0, tt);  // reads the activations as floats (op.f)
    const fp16_t* const* w = op.w;
    const float* const* a = op.f;
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= g.n; i += 8) {
      op.prefetch_next(size_t(i) * sizeof(fp16_t), 8 * sizeof(fp16_t));
      __m256 x[R];
      for (int r = 0; r < R; ++r) x[r] = load_f16x8(w[r] + i);
      for (int t = 0; t < T; ++t) {
        const __m256 y = _mm256_loadu_ps(a[t] + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(x[r], y, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = hsum(acc[r][t]);
        for (int j = i; j < g.n; ++j) s += h2f(w[r][j]) * a[t][j];
        g.out[(tt + t) * g.os + r0 + r] = s;
      }
  }
};

// Bytes for MicroQ (avx2_common.h), multiplied with maddubs as in the vec_dots above.
struct DecodeQ8_0 {
  using Block = block_q8_0;
  // Weight operand for maddubs (unsigned): |x|, with x kept to carry the signs.
  struct W {
    __m256i abs, x;
  };
  using Tok = __m256i;
  static W weights(const Block& b) {
    const __m256i x = load256(b.qs);
    return {_mm256_sign_epi8(x, x), x};
  }
  static Tok token(__m256i y) { return y; }
  static __m256i dot(const W& w, Tok y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.abs, _mm256_sign_epi8(y, w.x)), _mm256_set1_epi16(1));
  }
};
struct DecodeQ4_0 {
  using Block = block_q4_0;
  // The nibbles q stay unsigned (maddubs' unsigned operand): w.y = q.y - 8 * sum(y), with
  // 8 * y's pair sums computed once per token block.
  struct W {
    __m256i q;
  };
  struct Tok {
    __m256i y, y8;
  };
  static W weights(const Block& b) { return {nibbles_32(b.qs)}; }
  static Tok token(__m256i y) { return {y, _mm256_maddubs_epi16(_mm256_set1_epi8(8), y)}; }
  static __m256i dot(const W& w, const Tok& t) {
    return _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w.q, t.y), t.y8), _mm256_set1_epi16(1));
  }
};

// ---- LoRA (same operation order as scalar.cpp, so the same bits) --------------

// prefetch_ahead (4 KiB ahead of the kernel) is in lora_q8_tiles.h, shared with the 8-bit tiles.

// T tokens x V rank vectors (8 ranks each, from rank 8 * v0): two FMA chains over the inputs
// (even, odd), added at the end. Each input broadcasts x once per token against V vectors of
// At's row i, so no horizontal sums are needed.
template <int T, int V>
struct LoraShrinkTile {
  static void run(int n_in, int R, const fp16_t* at, int v0, const float* const* x, const float* coeff,
                  float* const* t) {
    __m256 acc[2][T][V];
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < T; ++k)
        for (int v = 0; v < V; ++v) acc[c][k][v] = _mm256_setzero_ps();
    const fp16_t* a = at + v0 * 8;
    const fp16_t* end = at + int64_t(n_in) * R;
    auto step = [&](int i, int c) {
      __m256 w[V];
      for (int v = 0; v < V; ++v) w[v] = load_f16x8(a + int64_t(i) * R + v * 8);
      for (int k = 0; k < T; ++k) {
        const __m256 xb = _mm256_broadcast_ss(x[k] + i);
        for (int v = 0; v < V; ++v) acc[c][k][v] = _mm256_fmadd_ps(w[v], xb, acc[c][k][v]);
      }
    };
    int i = 0;
    for (; i + 2 <= n_in; i += 2) {
      if ((i & 7) == 0) prefetch_ahead(a + int64_t(i) * R, 8 * R * int64_t(sizeof(fp16_t)), end);
      step(i, 0);
      step(i + 1, 1);
    }
    if (i < n_in) step(i, 0);
    for (int k = 0; k < T; ++k) {
      const __m256 ck = _mm256_set1_ps(coeff[k]);
      for (int v = 0; v < V; ++v)
        _mm256_storeu_ps(t[k] + (v0 + v) * 8, _mm256_mul_ps(ck, _mm256_add_ps(acc[0][k][v], acc[1][k][v])));
    }
  }
};

// T tokens x C chunks of 8 outputs from output o (chunk data from b): one FMA chain per
// output over the ranks, y loaded and stored once.
template <int T, int C>
struct LoraExpandTile {
  static void run(int R, const fp16_t* b, const float* const* t, float* const* y, int64_t o) {
    __m256 acc[T][C];
    for (int k = 0; k < T; ++k)
      for (int c = 0; c < C; ++c) acc[k][c] = _mm256_loadu_ps(y[k] + o + c * 8);
    for (int j = 0; j < R; ++j) {
      __m256 w[C];
      for (int c = 0; c < C; ++c) w[c] = load_f16x8(b + int64_t(c) * R * 8 + j * 8);
      for (int k = 0; k < T; ++k) {
        const __m256 tb = _mm256_broadcast_ss(t[k] + j);
        for (int c = 0; c < C; ++c) acc[k][c] = _mm256_fmadd_ps(tb, w[c], acc[k][c]);
      }
    }
    for (int k = 0; k < T; ++k)
      for (int c = 0; c < C; ++c) _mm256_storeu_ps(y[k] + o + c * 8, acc[k][c]);
  }
};

// 4-byte dots for the 8-bit LoRA tiles (lora_q8_tiles.h) with maddubs: the pair sums of
// |w| x sign(x, w) stay within 2 * 127 * 127, so maddubs never saturates.
struct LoraDotAvx2 {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

}  // namespace

namespace detail {

void install_avx2(KernelSet& ks, TileKernels& tk) {
  auto& t = ks.by_type;
  t[uint32_t(TensorType::F32)].vec_dot = vec_dot_f32;
  t[uint32_t(TensorType::F16)] = TypeKernels{f16_to_float, f16_from_float, vec_dot_f16};
  t[uint32_t(TensorType::BF16)].to_float = bf16_to_float;
  t[uint32_t(TensorType::BF16)].vec_dot = vec_dot_bf16;
  t[uint32_t(TensorType::Q8_0)].from_float = q8_0_from_float;
  t[uint32_t(TensorType::Q8_0)].vec_dot = vec_dot_blocks<block_q8_0, dot_q8_q8>;
  t[uint32_t(TensorType::Q4_0)].vec_dot = vec_dot_blocks<block_q4_0, dot_q4_q8>;
  t[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K;
  t[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K;
  t[uint32_t(TensorType::Q8_K)].from_float = q8_K_from_float;
  install_avx2_quants(ks, tk);  // Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K
  tk.by_type[uint32_t(TensorType::F16)] = tile_entry<MicroF16, 3, 4>;
  tk.by_type[uint32_t(TensorType::Q8_0)] = tile_entry<MicroQ<DecodeQ8_0>::K, 2, 4>;
  tk.by_type[uint32_t(TensorType::Q4_0)] = tile_entry<MicroQ<DecodeQ4_0>::K, 2, 4>;
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
  ks.lora_shrink_q8 = lora_shrink_by_tiles<LoraQ8Tiles<LoraDotAvx2>::Shrink>;
  ks.lora_expand_q8 = lora_expand_q8_by_tiles<LoraQ8Tiles<LoraDotAvx2>::Expand>;
  ks.lora_shrink_q4 = lora_shrink_by_tiles<LoraQ8Tiles<LoraDotAvx2, 4>::Shrink>;
  ks.lora_expand_q4 = lora_expand_q4_by_tiles<LoraQ8Tiles<LoraDotAvx2, 4>::Expand>;
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
