// Private to kernels/: the dot products of Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K and Q5_K written
// once, over a small per-ISA set of 32-byte vector primitives. x86/avx2_quant_ops.h supplies them
// with AVX2, arm/neon_quant_ops.h with NEON (two 16-byte halves, sdot or a widening multiply).
// Header-only with internal linkage: each ISA's translation unit compiles its own copy.
//
// Ops supplies (V: 32 bytes, I: int32 partial sums, F: float partial sums):
//   V load(const uint8_t* p)              32 bytes
//   V nibbles(const uint8_t* qs)           16 bytes' low nibbles, then their high nibbles
//   V bits(const uint8_t* p4)              byte j = 0xFF where bit j of the 4 bytes is set, else 0
//   V field(V v, int shift, uint8_t mask)  each byte (b >> shift) & mask
//   V flag(V v, int bit, uint8_t value)    each byte value where bit `bit` is set, else 0
//   V set1(uint8_t), V and_(V, V), V or_(V, V), V sub(V, V)   bytewise
//   V lookup(V table, V idx)               table[idx] for idx 0..15 (the table: 16 bytes, twice)
//   I zero()
//   I dot(I acc, V u, V s)                 acc + u . s, u unsigned <= 127, s signed
//   I dot_ss(I acc, V a, V s)              acc + a . s, both signed, |a| <= 127
//   I dot_scaled(I acc, V u, V s, int sc)  acc + sc * (u . s), u <= 63, |sc| <= 127
//   I dot_scaled2(I acc, V u, V s, int sc0, int sc1)  the same with sc0 on bytes 0..15, sc1 on 16..31
//   F fzero(), F fma(F acc, I isum, float scale), float hsum(F)
// Integer sums are exact (as the scalar reference's), so a path differs from scalar.cpp only in
// the order of its float additions.
#pragma once
#include <cstring>

#include "../tensor_types.h"
#include "block_scales.h"
#include "kernels.h"

namespace el::kernels {
namespace {

template <class O>
struct QuantDots {
  using V = typename O::V;

  static float fp(fp16_t h) { return fp16_to_fp32(h); }

  // ---- 32-element blocks against Q8_0 / Q8_1 ----

  // Q4_1 . Q8_1: unsigned nibbles, the offset m meeting the activations' s once per block.
  static void q4_1(int n, float* s, const void* vw, const void* va) {
    const block_q4_1* w = static_cast<const block_q4_1*>(vw);
    const block_q8_1* a = static_cast<const block_q8_1*>(va);
    typename O::F acc = O::fzero();
    float summs = 0;
    for (int i = 0; i < n / QK4_1; ++i) {
      summs += fp(w[i].m) * fp(a[i].s);
      acc = O::fma(acc, O::dot(O::zero(), O::nibbles(w[i].qs), O::load(reinterpret_cast<const uint8_t*>(a[i].qs))),
                   fp(w[i].d) * fp(a[i].d));
    }
    *s = O::hsum(acc) + summs;
  }

  // The 5-bit quants of a Q5_0 / Q5_1 block, unsigned (0..31).
  static V q5(const uint8_t* qs, const uint8_t* qh) {
    return O::or_(O::nibbles(qs), O::and_(O::bits(qh), O::set1(0x10)));
  }

  static void q5_0(int n, float* s, const void* vw, const void* va) {
    const block_q5_0* w = static_cast<const block_q5_0*>(vw);
    const block_q8_0* a = static_cast<const block_q8_0*>(va);
    typename O::F acc = O::fzero();
    for (int i = 0; i < n / QK5_0; ++i) {
      const V q = O::sub(q5(w[i].qs, w[i].qh), O::set1(16));  // signed -16..15
      acc = O::fma(acc, O::dot_ss(O::zero(), q, O::load(reinterpret_cast<const uint8_t*>(a[i].qs))),
                   fp(w[i].d) * fp(a[i].d));
    }
    *s = O::hsum(acc);
  }

  static void q5_1(int n, float* s, const void* vw, const void* va) {
    const block_q5_1* w = static_cast<const block_q5_1*>(vw);
    const block_q8_1* a = static_cast<const block_q8_1*>(va);
    typename O::F acc = O::fzero();
    float summs = 0;
    for (int i = 0; i < n / QK5_1; ++i) {
      summs += fp(w[i].m) * fp(a[i].s);
      acc = O::fma(acc, O::dot(O::zero(), q5(w[i].qs, w[i].qh), O::load(reinterpret_cast<const uint8_t*>(a[i].qs))),
                   fp(w[i].d) * fp(a[i].d));
    }
    *s = O::hsum(acc) + summs;
  }

  static void iq4_nl(int n, float* s, const void* vw, const void* va) {
    const block_iq4_nl* w = static_cast<const block_iq4_nl*>(vw);
    const block_q8_0* a = static_cast<const block_q8_0*>(va);
    uint8_t table[32];
    std::memcpy(table, kIq4nlValues, 16);
    std::memcpy(table + 16, kIq4nlValues, 16);
    const V values = O::load(table);
    typename O::F acc = O::fzero();
    for (int i = 0; i < n / QK4_NL; ++i) {
      const V q = O::lookup(values, O::nibbles(w[i].qs));
      acc = O::fma(acc, O::dot_ss(O::zero(), q, O::load(reinterpret_cast<const uint8_t*>(a[i].qs))),
                   fp(w[i].d) * fp(a[i].d));
    }
    *s = O::hsum(acc);
  }

  // ---- K-quants against Q8_K ----

  static const uint8_t* act(const block_q8_K& a, int e) { return reinterpret_cast<const uint8_t*>(a.qs + e); }

  // Q2_K: per 128 elements, 32 bytes of qs hold four runs of 32 (2 bits each); a run covers two
  // sub-blocks of 16 with their own 4-bit scales. Mins: sum over sub-blocks of min * bsum.
  static void q2_K(int n, float* s, const void* vw, const void* va) {
    const block_q2_K* w = static_cast<const block_q2_K*>(vw);
    const block_q8_K* a = static_cast<const block_q8_K*>(va);
    typename O::F acc = O::fzero();
    float acc_min = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      const uint8_t* sc = w[i].scales;
      int summ = 0;
      for (int g = 0; g < QK_K / 16; ++g) summ += a[i].bsums[g] * (sc[g] >> 4);
      acc_min += a[i].d * fp(w[i].dmin) * float(summ);
      typename O::I isum = O::zero();
      for (int h = 0; h < 2; ++h) {
        const V q = O::load(w[i].qs + 32 * h);
        for (int k = 0; k < 4; ++k) {
          const int g = 8 * h + 2 * k;  // the run's two sub-blocks
          isum = O::dot_scaled2(isum, O::field(q, 2 * k, 3), O::load(act(a[i], 128 * h + 32 * k)), sc[g] & 0xF,
                                sc[g + 1] & 0xF);
        }
      }
      acc = O::fma(acc, isum, a[i].d * fp(w[i].d));
    }
    *s = O::hsum(acc) - acc_min;
  }

  // Q3_K: Q2_K's 2-bit runs plus a high bit (hmask: bit 4h + k of byte l for run k of half h);
  // the quant is (2 bits | high bit << 2) - 4, so the dot takes the unsigned 0..7 and subtracts
  // 4 * scale * bsum per sub-block.
  static void q3_K(int n, float* s, const void* vw, const void* va) {
    const block_q3_K* w = static_cast<const block_q3_K*>(vw);
    const block_q8_K* a = static_cast<const block_q8_K*>(va);
    typename O::F acc = O::fzero();
    float acc_off = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      int8_t sc[16];
      q3k_scales(w[i].scales, sc);
      int bias = 0;
      for (int g = 0; g < QK_K / 16; ++g) bias += sc[g] * a[i].bsums[g];
      const V hm = O::load(w[i].hmask);
      typename O::I isum = O::zero();
      for (int h = 0; h < 2; ++h) {
        const V q = O::load(w[i].qs + 32 * h);
        for (int k = 0; k < 4; ++k) {
          const int g = 8 * h + 2 * k;
          const V u = O::or_(O::field(q, 2 * k, 3), O::flag(hm, 4 * h + k, 4));
          isum = O::dot_scaled2(isum, u, O::load(act(a[i], 128 * h + 32 * k)), sc[g], sc[g + 1]);
        }
      }
      const float d = a[i].d * fp(w[i].d);
      acc = O::fma(acc, isum, d);
      acc_off += d * float(4 * bias);  // the offset -4 of every quant
    }
    *s = O::hsum(acc) - acc_off;
  }

  // Q5_K: Q4_K's nibbles (32 bytes per 64 elements, low nibbles first) plus a fifth bit (qh:
  // bit 2j for the low run of chunk j, 2j + 1 for the high run); 6-bit scales and mins per 32.
  static void q5_K(int n, float* s, const void* vw, const void* va) {
    const block_q5_K* w = static_cast<const block_q5_K*>(vw);
    const block_q8_K* a = static_cast<const block_q8_K*>(va);
    typename O::F acc = O::fzero();
    float acc_min = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], m[8];
      q4k_scales_mins(w[i].scales, sc, m);
      int summ = 0;
      for (int g = 0; g < QK_K / 16; ++g) summ += a[i].bsums[g] * m[g / 2];
      acc_min += a[i].d * fp(w[i].dmin) * float(summ);
      const V qh = O::load(w[i].qh);
      typename O::I isum = O::zero();
      for (int j = 0; j < QK_K / 64; ++j) {
        const V q = O::load(w[i].qs + 32 * j);
        const V lo = O::or_(O::field(q, 0, 0xF), O::flag(qh, 2 * j, 0x10));
        const V hi = O::or_(O::field(q, 4, 0xF), O::flag(qh, 2 * j + 1, 0x10));
        isum = O::dot_scaled(isum, lo, O::load(act(a[i], 64 * j)), sc[2 * j]);
        isum = O::dot_scaled(isum, hi, O::load(act(a[i], 64 * j + 32)), sc[2 * j + 1]);
      }
      acc = O::fma(acc, isum, a[i].d * fp(w[i].d));
    }
    *s = O::hsum(acc) - acc_min;
  }
};

// Installs the dot products above into a path's table.
template <class O>
void install_quant_dots(KernelSet& ks) {
  auto& t = ks.by_type;
  t[uint32_t(TensorType::Q4_1)].vec_dot = QuantDots<O>::q4_1;
  t[uint32_t(TensorType::Q5_0)].vec_dot = QuantDots<O>::q5_0;
  t[uint32_t(TensorType::Q5_1)].vec_dot = QuantDots<O>::q5_1;
  t[uint32_t(TensorType::IQ4_NL)].vec_dot = QuantDots<O>::iq4_nl;
  t[uint32_t(TensorType::Q2_K)].vec_dot = QuantDots<O>::q2_K;
  t[uint32_t(TensorType::Q3_K)].vec_dot = QuantDots<O>::q3_K;
  t[uint32_t(TensorType::Q5_K)].vec_dot = QuantDots<O>::q5_K;
}

}  // namespace
}  // namespace el::kernels
