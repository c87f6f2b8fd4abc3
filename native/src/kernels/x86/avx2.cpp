// AVX2 + FMA + F16C path: the shared kernels (float_ops.h, quant_dots.h, lora_driver.h) over
// the AVX2 primitives, plus what is AVX2's own: the activation quantizers, the Q4_K / Q6_K
// vec_dots, and how Q8_0 / Q4_0 / LoRA bytes multiply (maddubs, unsigned x signed, widened
// with madd, as ggml). Compiled with -mavx2 -mfma -mf16c and only called after dispatch.cpp
// has seen those features on this CPU.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../block_scales.h"
#include "../float_ops.h"
#include "../lora_driver.h"
#include "../paths.h"
#include "../quant_dots.h"
#include "avx2_common.h"
#include "avx2_f32.h"
#include "avx2_quant_ops.h"
#include "lora_q8_tiles.h"

namespace el::kernels {
namespace {

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

// ---- Q8_0 / Q4_0 decoders -----------------------------------------------------

// How Q8_0 / Q4_0 bytes multiply for quant_dots.h's vec_dot_blocks and MicroQ: with maddubs
// (unsigned x signed), as ggml does.
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

// 4-byte dots for the 8-bit LoRA tiles (lora_q8_tiles.h) with maddubs: the pair sums of
// |w| x sign(x, w) stay within 2 * 127 * 127, so maddubs never saturates.
struct LoraDotAvx2 {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

}  // namespace

namespace detail {

void install_avx2(KernelSet& ks) {
  install_float_ops<Avx2F32, 3>(ks);
  auto& t = ks.by_type;
  t[uint32_t(TensorType::Q8_0)].from_float = q8_0_from_float;
  t[uint32_t(TensorType::Q8_K)].from_float = q8_K_from_float;
  install_q8_q4_dots<Avx2QuantOps, DecodeQ8_0, DecodeQ4_0, 2>(ks);
  install_quant_dots<Avx2QuantOps>(ks);  // Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K; Q4_K / Q6_K tiles
  t[uint32_t(TensorType::Q4_K)].vec_dot = vec_dot_q4_K;
  t[uint32_t(TensorType::Q6_K)].vec_dot = vec_dot_q6_K;
  install_avx2_quants(ks);  // Q8_1 activations
  install_lora_int<LoraQ8Tiles, LoraDotAvx2>(ks);
}

}  // namespace detail
}  // namespace el::kernels
#endif  // __x86_64__
