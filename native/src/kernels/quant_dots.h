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
//   V field_up(V v, int shift, uint8_t mask)  each byte (b << shift) & mask
//   V flag(V v, int bit, uint8_t value)    each byte value where bit `bit` is set, else 0
//   V set1(uint8_t), V and_(V, V), V or_(V, V), V sub(V, V)   bytewise
//   V lookup(V table, V idx)               table[idx] for idx 0..15 (the table: 16 bytes, twice)
//   I zero()
//   I dot(I acc, V u, V s)                 acc + u . s, u unsigned <= 127, s signed
//   I dot_ss(I acc, V a, V s)              acc + a . s, both signed, |a| <= 127
//   I dot_scaled(I acc, V u, V s, int sc)  acc + sc * (u . s), u <= 63, |sc| <= 127
//   I dot_scaled2(I acc, V u, V s, int sc0, int sc1)  the same with sc0 on bytes 0..15, sc1 on 16..31
//   S scales16(const int8_t* sc)           sixteen signed scales (of the sub-blocks of 16), prepared
//   S scales16_words(const uint32_t* w, int sub)  the same from four words of bytes, each minus sub
//   I dot_run(I acc, V u, V s, const S& sc, int r)  dot_scaled2 with sc[2r], sc[2r + 1] (r = 0..7)
//   int dot16(const int16_t* b, const S& sc)        sum of b[g] * sc[g], g = 0..15
//   F fzero(), F add(F, F), F fma(F acc, I isum, float scale), float hsum(F), float f16(fp16_t) (a half as float)
// Integer sums are exact (as the scalar reference's), so a path differs from scalar.cpp only in
// the order of its float additions.
#pragma once
#include <cstring>

#include "../tensor_types.h"
#include "block_scales.h"
#include "kernels.h"
#include "tiles.h"

namespace el::kernels {
namespace {

// Q4_K and Q6_K keep their own vec_dots (x86/avx2.cpp, arm/neon_int8.h); from here they take
// only the tiles for several tokens.
// Each type's dot product runs over T tokens at once (T = 1: vec_dot; more: the rows x tokens
// tiles of matmul_rows), decoding each weight block once for all T: row<T>(n, w, a, out, os)
// writes out[t * os] = w . a[t] for t < T.
template <class O>
struct QuantDots {
  using V = typename O::V;
  using F = typename O::F;

  static float fp(fp16_t h) { return O::f16(h); }
  static const uint8_t* bytes(const int8_t* q) { return reinterpret_cast<const uint8_t*>(q); }

  template <int T, class A>
  static void tokens(const void* const* a, const A* (&at)[T]) {
    for (int t = 0; t < T; ++t) at[t] = static_cast<const A*>(a[t]);
  }
  template <int T>
  static void store(const F (&acc)[T], const float (&extra)[T], float* out, int64_t os) {
    for (int t = 0; t < T; ++t) out[t * os] = O::hsum(acc[t]) + extra[t];
  }

  // ---- 32-element blocks against Q8_0 / Q8_1 ----

  // Q4_1 / Q5_1 . Q8_1: unsigned quants; the offset m meets the activations' s once per block.
  // Blocks go in pairs with an accumulator each, so consecutive fused multiply-adds do not wait
  // on each other.
  template <int T, class B>
  static void offset_row(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const B* w = static_cast<const B*>(vw);
    const block_q8_1* at[T];
    tokens<T>(a, at);
    F acc[2][T];
    float summs[T];
    for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = O::fzero(), summs[t] = 0;
    auto block = [&](int i, F (&ac)[T]) {
      const V u = quants(w[i]);
      const float d = fp(w[i].d), m = fp(w[i].m);
      for (int t = 0; t < T; ++t) {
        summs[t] += m * fp(at[t][i].s);
        ac[t] = O::fma(ac[t], O::dot(O::zero(), u, O::load(bytes(at[t][i].qs))), d * fp(at[t][i].d));
      }
    };
    pairs<T>(n / QK8_1, block, acc);
    store<T>(acc[0], summs, out, os);
  }

  // Q5_0 / IQ4_NL . Q8_0: signed quants.
  template <int T, class B>
  static void signed_row(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const B* w = static_cast<const B*>(vw);
    const block_q8_0* at[T];
    tokens<T>(a, at);
    F acc[2][T];
    float none[T];
    for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = O::fzero(), none[t] = 0;
    auto block = [&](int i, F (&ac)[T]) {
      const V q = quants(w[i]);
      const float d = fp(w[i].d);
      for (int t = 0; t < T; ++t)
        ac[t] = O::fma(ac[t], O::dot_ss(O::zero(), q, O::load(bytes(at[t][i].qs))), d * fp(at[t][i].d));
    };
    pairs<T>(n / QK8_0, block, acc);
    store<T>(acc[0], none, out, os);
  }

  // Blocks 0..nb-1 in pairs, the second of each into acc[1], which is then added into acc[0].
  template <int T, class Block>
  static void pairs(int nb, Block& block, F (&acc)[2][T]) {
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
      block(i, acc[0]);
      block(i + 1, acc[1]);
    }
    if (i < nb) block(i, acc[0]);
    for (int t = 0; t < T; ++t) acc[0][t] = O::add(acc[0][t], acc[1][t]);
  }

  // The 5-bit quants of a Q5_0 / Q5_1 block, unsigned (0..31).
  static V q5(const uint8_t* qs, const uint8_t* qh) {
    return O::or_(O::nibbles(qs), O::and_(O::bits(qh), O::set1(0x10)));
  }
  static V quants(const block_q4_1& b) { return O::nibbles(b.qs); }
  static V quants(const block_q5_1& b) { return q5(b.qs, b.qh); }
  static V quants(const block_q5_0& b) { return O::sub(q5(b.qs, b.qh), O::set1(16)); }  // -16..15
  static V quants(const block_iq4_nl& b) {
    static const struct Table {
      uint8_t v[32];
      Table() {
        std::memcpy(v, kIq4nlValues, 16);
        std::memcpy(v + 16, kIq4nlValues, 16);
      }
    } table;
    return O::lookup(O::load(table.v), O::nibbles(b.qs));
  }

  // ---- K-quants against Q8_K ----

  static const uint8_t* act(const block_q8_K& a, int e) { return bytes(a.qs + e); }

  // Q2_K: per 128 elements, 32 bytes of qs hold four runs of 32 (2 bits each); a run covers two
  // sub-blocks of 16 with their own 4-bit scales. Mins: sum over sub-blocks of min * bsum.
  template <int T>
  static void q2_K(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const block_q2_K* w = static_cast<const block_q2_K*>(vw);
    const block_q8_K* at[T];
    tokens<T>(a, at);
    F acc[T];
    float acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = O::fzero(), acc_min[t] = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      int8_t sc[16], mn[16];
      for (int g = 0; g < 16; ++g) sc[g] = int8_t(w[i].scales[g] & 0xF), mn[g] = int8_t(w[i].scales[g] >> 4);
      const typename O::S scales = O::scales16(sc), mins = O::scales16(mn);
      V u[8];
      for (int h = 0; h < 2; ++h) {
        const V q = O::load(w[i].qs + 32 * h);
        for (int k = 0; k < 4; ++k) u[4 * h + k] = O::field(q, 2 * k, 3);
      }
      const float d = fp(w[i].d), dmin = fp(w[i].dmin);
      for (int t = 0; t < T; ++t) {
        acc_min[t] -= at[t][i].d * dmin * float(O::dot16(at[t][i].bsums, mins));
        typename O::I isum = O::zero();
        for (int r = 0; r < 8; ++r)  // run r: elements 32 r.., sub-blocks 2 r and 2 r + 1
          isum = O::dot_run(isum, u[r], O::load(act(at[t][i], 32 * r)), scales, r);
        acc[t] = O::fma(acc[t], isum, at[t][i].d * d);
      }
    }
    store<T>(acc, acc_min, out, os);
  }

  // Q3_K: Q2_K's 2-bit runs plus a high bit (hmask: bit 4h + k of byte l for run k of half h);
  // the quant is (2 bits | high bit << 2) - 4, so the dot takes the unsigned 0..7 and subtracts
  // 4 * scale * bsum per sub-block.
  template <int T>
  static void q3_K(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const block_q3_K* w = static_cast<const block_q3_K*>(vw);
    const block_q8_K* at[T];
    tokens<T>(a, at);
    F acc[T];
    float acc_off[T];
    for (int t = 0; t < T; ++t) acc[t] = O::fzero(), acc_off[t] = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      uint32_t words[4];
      q3k_scale_words(w[i].scales, words);  // kept in registers: no byte stores to reload
      const typename O::S scales = O::scales16_words(words, 32);
      const V hm = O::load(w[i].hmask);
      V u[8];
      for (int h = 0; h < 2; ++h) {
        const V q = O::load(w[i].qs + 32 * h);
        for (int k = 0; k < 4; ++k) u[4 * h + k] = O::or_(O::field(q, 2 * k, 3), O::flag(hm, 4 * h + k, 4));
      }
      const float dw = fp(w[i].d);
      for (int t = 0; t < T; ++t) {
        typename O::I isum = O::zero();
        for (int r = 0; r < 8; ++r) isum = O::dot_run(isum, u[r], O::load(act(at[t][i], 32 * r)), scales, r);
        const float d = at[t][i].d * dw;
        acc[t] = O::fma(acc[t], isum, d);
        acc_off[t] -= d * float(4 * O::dot16(at[t][i].bsums, scales));  // the offset -4 of every quant
      }
    }
    store<T>(acc, acc_off, out, os);
  }

  // Q4_K: 32 bytes of nibbles per 64 elements (low nibbles first); 6-bit scales and mins per 32.
  template <int T>
  static void q4_K(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const block_q4_K* w = static_cast<const block_q4_K*>(vw);
    const block_q8_K* at[T];
    tokens<T>(a, at);
    F acc[T];
    float acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = O::fzero(), acc_min[t] = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], m[8];
      q4k_scales_mins(w[i].scales, sc, m);
      V u[8];
      for (int j = 0; j < QK_K / 64; ++j) {
        const V q = O::load(w[i].qs + 32 * j);
        u[2 * j] = O::field(q, 0, 0xF);
        u[2 * j + 1] = O::field(q, 4, 0xF);
      }
      min_and_scaled_dots<T>(u, sc, m, w[i].d, w[i].dmin, at, i, acc, acc_min);
    }
    store<T>(acc, acc_min, out, os);
  }

  // Q4_K / Q5_K, once the quants are bytes: acc += d * sum_r sc[r] * (u_r . a_r), acc_min -=
  // dmin * sum_g m[g / 2] * bsum_g.
  template <int T>
  static void min_and_scaled_dots(const V (&u)[8], const uint8_t* sc, const uint8_t* m, fp16_t dh, fp16_t dminh,
                                  const block_q8_K* const (&at)[T], int i, F (&acc)[T], float (&acc_min)[T]) {
    const float d = fp(dh), dmin = fp(dminh);
    for (int t = 0; t < T; ++t) {
      int summ = 0;
      for (int g = 0; g < QK_K / 16; ++g) summ += at[t][i].bsums[g] * m[g / 2];
      acc_min[t] -= at[t][i].d * dmin * float(summ);
      typename O::I isum = O::zero();
      for (int r = 0; r < 8; ++r) isum = O::dot_scaled(isum, u[r], O::load(act(at[t][i], 32 * r)), sc[r]);
      acc[t] = O::fma(acc[t], isum, at[t][i].d * d);
    }
  }

  // Q6_K: per 128 elements, 64 bytes of low nibbles (two runs of 32 in low nibbles, two in high)
  // and 32 bytes of 2-bit high parts; quant - 32 with an 8-bit scale per 16, so the dot takes the
  // unsigned 0..63 and subtracts 32 * scale * bsum per sub-block.
  template <int T>
  static void q6_K(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const block_q6_K* w = static_cast<const block_q6_K*>(vw);
    const block_q8_K* at[T];
    tokens<T>(a, at);
    F acc[T];
    float acc_off[T];
    for (int t = 0; t < T; ++t) acc[t] = O::fzero(), acc_off[t] = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      const typename O::S scales = O::scales16(w[i].scales);
      V u[8];
      for (int h = 0; h < 2; ++h) {
        const V ql0 = O::load(w[i].ql + 64 * h), ql1 = O::load(w[i].ql + 64 * h + 32);
        const V qh = O::load(w[i].qh + 32 * h);
        u[4 * h] = O::or_(O::field(ql0, 0, 0xF), O::field_up(qh, 4, 0x30));
        u[4 * h + 1] = O::or_(O::field(ql1, 0, 0xF), O::field_up(qh, 2, 0x30));
        u[4 * h + 2] = O::or_(O::field(ql0, 4, 0xF), O::field(qh, 0, 0x30));
        u[4 * h + 3] = O::or_(O::field(ql1, 4, 0xF), O::field(qh, 2, 0x30));
      }
      const float dw = fp(w[i].d);
      for (int t = 0; t < T; ++t) {
        typename O::I isum = O::zero();
        for (int r = 0; r < 8; ++r) isum = O::dot_run(isum, u[r], O::load(act(at[t][i], 32 * r)), scales, r);
        const float d = at[t][i].d * dw;
        acc[t] = O::fma(acc[t], isum, d);
        acc_off[t] -= d * float(32 * O::dot16(at[t][i].bsums, scales));
      }
    }
    store<T>(acc, acc_off, out, os);
  }

  // Q5_K: Q4_K's nibbles (32 bytes per 64 elements, low nibbles first) plus a fifth bit (qh:
  // bit 2j for the low run of chunk j, 2j + 1 for the high run); 6-bit scales and mins per 32.
  template <int T>
  static void q5_K(int n, const void* vw, const void* const* a, float* out, int64_t os) {
    const block_q5_K* w = static_cast<const block_q5_K*>(vw);
    const block_q8_K* at[T];
    tokens<T>(a, at);
    F acc[T];
    float acc_min[T];
    for (int t = 0; t < T; ++t) acc[t] = O::fzero(), acc_min[t] = 0;
    for (int i = 0; i < n / QK_K; ++i) {
      uint8_t sc[8], m[8];
      q4k_scales_mins(w[i].scales, sc, m);
      const V qh = O::load(w[i].qh);
      V u[8];
      for (int j = 0; j < QK_K / 64; ++j) {
        const V q = O::load(w[i].qs + 32 * j);
        u[2 * j] = O::or_(O::field(q, 0, 0xF), O::flag(qh, 2 * j, 0x10));
        u[2 * j + 1] = O::or_(O::field(q, 4, 0xF), O::flag(qh, 2 * j + 1, 0x10));
      }
      min_and_scaled_dots<T>(u, sc, m, w[i].d, w[i].dmin, at, i, acc, acc_min);
    }
    store<T>(acc, acc_min, out, os);
  }
};

// A VecDotFn (kernels.h) from a row function over one token.
template <void (*Row)(int, const void*, const void* const*, float*, int64_t)>
void vec_dot_of(int n, float* s, const void* w, const void* a) {
  Row(n, w, &a, s, 0);
}

// A tile of matmul_rows (tiles.h): R rows x T tokens, one row at a time over all T tokens.
template <template <int> class RowOf>
struct QuantTile {
  template <int R, int T>
  struct K {
    static void run(const TileArgs& g, int r0, int tt) {
      const void* a[T];
      for (int t = 0; t < T; ++t) a[t] = g.act->row(g.t0 + tt + t);
      for (int r = 0; r < R; ++r)
        RowOf<T>::run(g.n, g.w + size_t(r0 + r) * g.ws, a, g.out + int64_t(tt) * g.os + r0 + r, g.os);
    }
  };
};

template <class O, class B, bool kOffset>
struct RowsOf32 {
  template <int T>
  struct R {
    static void run(int n, const void* w, const void* const* a, float* out, int64_t os) {
      if constexpr (kOffset) QuantDots<O>::template offset_row<T, B>(n, w, a, out, os);
      else QuantDots<O>::template signed_row<T, B>(n, w, a, out, os);
    }
  };
};

#define EL_QUANT_ROWS(NAME, FN)                                                                        \
  template <class O>                                                                                  \
  struct NAME {                                                                                       \
    template <int T>                                                                                  \
    struct R {                                                                                        \
      static void run(int n, const void* w, const void* const* a, float* out, int64_t os) {          \
        QuantDots<O>::template FN<T>(n, w, a, out, os);                                              \
      }                                                                                               \
    };                                                                                                \
  };
EL_QUANT_ROWS(RowsQ2_K, q2_K)
EL_QUANT_ROWS(RowsQ3_K, q3_K)
EL_QUANT_ROWS(RowsQ4_K, q4_K)
EL_QUANT_ROWS(RowsQ5_K, q5_K)
EL_QUANT_ROWS(RowsQ6_K, q6_K)
#undef EL_QUANT_ROWS

// Installs the dot products and tiles above into a path's tables: tiles of 1 row x 4 tokens.
template <class O>
void install_quant_dots(KernelSet& ks, detail::TileKernels& tk) {
  auto set = [&](TensorType type, auto rows, bool with_vec_dot = true) {
    using Rows = decltype(rows);
    if (with_vec_dot) ks.by_type[uint32_t(type)].vec_dot = vec_dot_of<Rows::template R<1>::run>;
    tk.by_type[uint32_t(type)] = tile_entry<QuantTile<Rows::template R>::template K, 1, 4>;
  };
  set(TensorType::Q4_1, RowsOf32<O, block_q4_1, true>{});
  set(TensorType::Q5_1, RowsOf32<O, block_q5_1, true>{});
  set(TensorType::Q5_0, RowsOf32<O, block_q5_0, false>{});
  set(TensorType::IQ4_NL, RowsOf32<O, block_iq4_nl, false>{});
  set(TensorType::Q2_K, RowsQ2_K<O>{});
  set(TensorType::Q3_K, RowsQ3_K<O>{});
  set(TensorType::Q5_K, RowsQ5_K<O>{});
  set(TensorType::Q4_K, RowsQ4_K<O>{}, false);
  set(TensorType::Q6_K, RowsQ6_K<O>{}, false);
}

}  // namespace
}  // namespace el::kernels
