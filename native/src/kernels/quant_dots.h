// Private to kernels/: the dot products of the quantized weight types written once, over a
// small per-ISA set of 32-byte vector primitives: one row driver, and one row per type saying
// how a block decodes and meets a token's activation block. x86/avx2_quant_ops.h supplies them
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

// ---- one row per type ----
// A type's row supplies: using Block; using Act (its activation block, traits.vec_dot_type);
// kBlock (elements per block); kAccs (float accumulators per token: 2 lets consecutive blocks'
// fused multiply-adds overlap); struct Decoded; static Decoded decode(const Block&) (once per
// block, for all tokens); static void add(const Decoded&, const Act&, F& acc, float& extra),
// the block's share: acc takes the vector part, extra a scalar part (offsets and mins).
template <class O>
struct QuantBytes {
  using V = typename O::V;
  static float fp(fp16_t h) { return O::f16(h); }
  static const uint8_t* bytes(const int8_t* q) { return reinterpret_cast<const uint8_t*>(q); }
  static V act(const int8_t* qs) { return O::load(bytes(qs)); }

  // The 5-bit quants of a Q5_0 / Q5_1 block, unsigned (0..31).
  static V q5(const uint8_t* qs, const uint8_t* qh) {
    return O::or_(O::nibbles(qs), O::and_(O::bits(qh), O::set1(0x10)));
  }
  static V quants(const block_q8_0& b) { return O::load(bytes(b.qs)); }
  static V quants(const block_q4_0& b) { return O::sub(O::nibbles(b.qs), O::set1(8)); }  // -8..7
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
};

// Q4_1 / Q5_1 . Q8_1: unsigned quants; the offset m meets the activations' s once per block.
template <class O, class B>
struct OffsetRow : QuantBytes<O> {
  using QB = QuantBytes<O>;
  using Block = B;
  using Act = block_q8_1;
  static constexpr int kBlock = QK8_1, kAccs = 2;
  struct Decoded {
    typename O::V u;
    float d, m;
  };
  static Decoded decode(const Block& b) { return {QB::quants(b), QB::fp(b.d), QB::fp(b.m)}; }
  static void add(const Decoded& w, const Act& a, typename O::F& acc, float& extra) {
    extra += w.m * QB::fp(a.s);
    acc = O::fma(acc, O::dot(O::zero(), w.u, QB::act(a.qs)), w.d * QB::fp(a.d));
  }
};

// Q8_0 / Q4_0 / Q5_0 / IQ4_NL . Q8_0: signed quants.
template <class O, class B>
struct SignedRow : QuantBytes<O> {
  using QB = QuantBytes<O>;
  using Block = B;
  using Act = block_q8_0;
  static constexpr int kBlock = QK8_0, kAccs = 2;
  struct Decoded {
    typename O::V q;
    float d;
  };
  static Decoded decode(const Block& b) { return {QB::quants(b), QB::fp(b.d)}; }
  static void add(const Decoded& w, const Act& a, typename O::F& acc, float&) {
    acc = O::fma(acc, O::dot_ss(O::zero(), w.q, QB::act(a.qs)), w.d * QB::fp(a.d));
  }
};

// K-quants against Q8_K: eight runs of 32 quants per 256-element block, as unsigned bytes.
template <class O, class B>
struct KRow : QuantBytes<O> {
  using QB = QuantBytes<O>;
  using Block = B;
  using Act = block_q8_K;
  static constexpr int kBlock = QK_K, kAccs = 1;
  static typename O::V run(const Act& a, int r) { return QB::act(a.qs + 32 * r); }
};

// Q2_K: per 128 elements, 32 bytes of qs hold four runs of 32 (2 bits each); a run covers two
// sub-blocks of 16 with their own 4-bit scales. Mins: sum over sub-blocks of min * bsum.
template <class O>
struct Q2KRow : KRow<O, block_q2_K> {
  using K = KRow<O, block_q2_K>;
  struct Decoded {
    typename O::S scales, mins;
    typename O::V u[8];
    float d, dmin;
  };
  static Decoded decode(const block_q2_K& b) {
    int8_t sc[16], mn[16];
    for (int g = 0; g < 16; ++g) sc[g] = int8_t(b.scales[g] & 0xF), mn[g] = int8_t(b.scales[g] >> 4);
    Decoded w{O::scales16(sc), O::scales16(mn), {}, K::fp(b.d), K::fp(b.dmin)};
    for (int h = 0; h < 2; ++h) {
      const typename O::V q = O::load(b.qs + 32 * h);
      for (int k = 0; k < 4; ++k) w.u[4 * h + k] = O::field(q, 2 * k, 3);
    }
    return w;
  }
  static void add(const Decoded& w, const block_q8_K& a, typename O::F& acc, float& extra) {
    extra -= a.d * w.dmin * float(O::dot16(a.bsums, w.mins));
    typename O::I isum = O::zero();
    for (int r = 0; r < 8; ++r)  // run r: elements 32 r.., sub-blocks 2 r and 2 r + 1
      isum = O::dot_run(isum, w.u[r], K::run(a, r), w.scales, r);
    acc = O::fma(acc, isum, a.d * w.d);
  }
};

// Q3_K and Q6_K: unsigned quants u = quant + Off, with a signed scale per 16; the dot takes u
// and subtracts Off * scale * bsum per sub-block.
template <class O, class B, int Off>
struct OffsetKRow : KRow<O, B> {
  using K = KRow<O, B>;
  struct Decoded {
    typename O::S scales;
    typename O::V u[8];
    float d;
  };
  static void add(const Decoded& w, const block_q8_K& a, typename O::F& acc, float& extra) {
    typename O::I isum = O::zero();
    for (int r = 0; r < 8; ++r) isum = O::dot_run(isum, w.u[r], K::run(a, r), w.scales, r);
    const float d = a.d * w.d;
    acc = O::fma(acc, isum, d);
    extra -= d * float(Off * O::dot16(a.bsums, w.scales));
  }
};

// Q3_K: Q2_K's 2-bit runs plus a high bit (hmask: bit 4h + k of byte l for run k of half h);
// the quant is (2 bits | high bit << 2) - 4.
template <class O>
struct Q3KRow : OffsetKRow<O, block_q3_K, 4> {
  using Base = OffsetKRow<O, block_q3_K, 4>;
  using typename Base::Decoded;
  static Decoded decode(const block_q3_K& b) {
    uint32_t words[4];
    q3k_scale_words(b.scales, words);  // kept in registers: no byte stores to reload
    Decoded w{O::scales16_words(words, 32), {}, Base::fp(b.d)};
    const typename O::V hm = O::load(b.hmask);
    for (int h = 0; h < 2; ++h) {
      const typename O::V q = O::load(b.qs + 32 * h);
      for (int k = 0; k < 4; ++k) w.u[4 * h + k] = O::or_(O::field(q, 2 * k, 3), O::flag(hm, 4 * h + k, 4));
    }
    return w;
  }
};

// Q6_K: per 128 elements, 64 bytes of low nibbles (two runs of 32 in low nibbles, two in high)
// and 32 bytes of 2-bit high parts; quant - 32 with an 8-bit scale per 16.
template <class O>
struct Q6KRow : OffsetKRow<O, block_q6_K, 32> {
  using Base = OffsetKRow<O, block_q6_K, 32>;
  using typename Base::Decoded;
  static Decoded decode(const block_q6_K& b) {
    Decoded w{O::scales16(b.scales), {}, Base::fp(b.d)};
    for (int h = 0; h < 2; ++h) {
      const typename O::V ql0 = O::load(b.ql + 64 * h), ql1 = O::load(b.ql + 64 * h + 32);
      const typename O::V qh = O::load(b.qh + 32 * h);
      w.u[4 * h] = O::or_(O::field(ql0, 0, 0xF), O::field_up(qh, 4, 0x30));
      w.u[4 * h + 1] = O::or_(O::field(ql1, 0, 0xF), O::field_up(qh, 2, 0x30));
      w.u[4 * h + 2] = O::or_(O::field(ql0, 4, 0xF), O::field(qh, 0, 0x30));
      w.u[4 * h + 3] = O::or_(O::field(ql1, 4, 0xF), O::field(qh, 2, 0x30));
    }
    return w;
  }
};

// Q4_K / Q5_K: 6-bit scales and mins per 32; acc += d * sum_r sc[r] * (u_r . a_r), extra -=
// dmin * sum_g m[g / 2] * bsum_g.
template <class O, class B>
struct MinKRow : KRow<O, B> {
  using K = KRow<O, B>;
  struct Decoded {
    typename O::V u[8];
    uint8_t sc[8], m[8];
    float d, dmin;
  };
  static Decoded start(const B& b) {
    Decoded w;
    q4k_scales_mins(b.scales, w.sc, w.m);
    w.d = K::fp(b.d);
    w.dmin = K::fp(b.dmin);
    return w;
  }
  static void add(const Decoded& w, const block_q8_K& a, typename O::F& acc, float& extra) {
    int summ = 0;
    for (int g = 0; g < QK_K / 16; ++g) summ += a.bsums[g] * w.m[g / 2];
    extra -= a.d * w.dmin * float(summ);
    typename O::I isum = O::zero();
    for (int r = 0; r < 8; ++r) isum = O::dot_scaled(isum, w.u[r], K::run(a, r), w.sc[r]);
    acc = O::fma(acc, isum, a.d * w.d);
  }
};

// Q4_K: 32 bytes of nibbles per 64 elements (low nibbles first).
template <class O>
struct Q4KRow : MinKRow<O, block_q4_K> {
  using Base = MinKRow<O, block_q4_K>;
  static typename Base::Decoded decode(const block_q4_K& b) {
    typename Base::Decoded w = Base::start(b);
    for (int j = 0; j < QK_K / 64; ++j) {
      const typename O::V q = O::load(b.qs + 32 * j);
      w.u[2 * j] = O::field(q, 0, 0xF);
      w.u[2 * j + 1] = O::field(q, 4, 0xF);
    }
    return w;
  }
};

// Q5_K: Q4_K's nibbles plus a fifth bit (qh: bit 2j for the low run of chunk j, 2j + 1 for the
// high run).
template <class O>
struct Q5KRow : MinKRow<O, block_q5_K> {
  using Base = MinKRow<O, block_q5_K>;
  static typename Base::Decoded decode(const block_q5_K& b) {
    typename Base::Decoded w = Base::start(b);
    const typename O::V qh = O::load(b.qh);
    for (int j = 0; j < QK_K / 64; ++j) {
      const typename O::V q = O::load(b.qs + 32 * j);
      w.u[2 * j] = O::or_(O::field(q, 0, 0xF), O::flag(qh, 2 * j, 0x10));
      w.u[2 * j + 1] = O::or_(O::field(q, 4, 0xF), O::flag(qh, 2 * j + 1, 0x10));
    }
    return w;
  }
};

// ---- the driver ----
// One weight row against T tokens at once (T = 1: vec_dot; more: the rows x tokens tiles of
// matmul_rows), decoding each weight block once for all T: out[t * os] = w . a[t] for t < T.
// With two accumulators, block i goes into accumulator i % 2 and they are added at the end.
template <class Row, int T, class O>
void quant_row(int n, const void* vw, const void* const* a, float* out, int64_t os) {
  using A = typename Row::Act;
  constexpr int NA = Row::kAccs;
  const typename Row::Block* w = static_cast<const typename Row::Block*>(vw);
  const A* at[T];
  for (int t = 0; t < T; ++t) at[t] = static_cast<const A*>(a[t]);
  typename O::F acc[NA][T];
  float extra[T];
  for (int t = 0; t < T; ++t) {
    for (int k = 0; k < NA; ++k) acc[k][t] = O::fzero();
    extra[t] = 0;
  }
  const int nb = n / Row::kBlock;
  for (int i = 0; i < nb; ++i) {
    const typename Row::Decoded d = Row::decode(w[i]);
    for (int t = 0; t < T; ++t) Row::add(d, at[t][i], acc[i % NA][t], extra[t]);
  }
  for (int t = 0; t < T; ++t) {
    if constexpr (NA == 2) acc[0][t] = O::add(acc[0][t], acc[1][t]);
    out[t * os] = O::hsum(acc[0][t]) + extra[t];
  }
}

template <class Row, class O>
void quant_vec_dot(int n, float* s, const void* w, const void* a) {
  quant_row<Row, 1, O>(n, w, &a, s, 0);
}

// A tile of matmul_rows (tiles.h): R rows x T tokens, one row at a time over all T tokens.
template <class Row, class O>
struct QuantTile {
  template <int R, int T>
  struct K {
    static void run(const TileArgs& g, int r0, int tt) {
      const void* a[T];
      for (int t = 0; t < T; ++t) a[t] = g.act->row(g.t0 + tt + t);
      for (int r = 0; r < R; ++r)
        quant_row<Row, T, O>(g.n, g.w + size_t(r0 + r) * g.ws, a, g.out + int64_t(tt) * g.os + r0 + r, g.os);
    }
  };
};

// ---- Q8_0 / Q4_0 against Q8_0: a decoder says how one block's bytes multiply ----
// Dec supplies: using Block; W weights(const Block&) (once per tile); Tok token(O::V y) (a token's
// block, once per tile); O::I dot(const W&, const Tok&) (the block's exact integer dot). An ISA
// with a faster way to multiply these bytes brings its own (x86/avx2.cpp, x86/vnni_tables.h);
// the default is the signed quants and dot_ss.
template <class O, class B>
struct SignedDecode {
  using Block = B;
  using W = typename O::V;
  using Tok = typename O::V;
  static W weights(const Block& b) { return QuantBytes<O>::quants(b); }
  static Tok token(typename O::V y) { return y; }
  static typename O::I dot(const W& w, const Tok& y) { return O::dot_ss(O::zero(), w, y); }
};

// vec_dot of a row of Dec::Block with a Q8_0 row, scaled per block by both scales. Two
// accumulators hide the FMA latency.
template <class O, class Dec>
void vec_dot_blocks(int n, float* s, const void* vw, const void* va) {
  using B = typename Dec::Block;
  const B* w = static_cast<const B*>(vw);
  const block_q8_0* a = static_cast<const block_q8_0*>(va);
  auto block = [&](int i) { return Dec::dot(Dec::weights(w[i]), Dec::token(QuantBytes<O>::act(a[i].qs))); };
  const int nb = n / QK8_0;
  typename O::F acc0 = O::fzero(), acc1 = O::fzero();
  int i = 0;
  for (; i + 2 <= nb; i += 2) {
    const typename O::I p0 = block(i), p1 = block(i + 1);
    acc0 = O::fma(acc0, p0, O::f16(w[i].d) * O::f16(a[i].d));
    acc1 = O::fma(acc1, p1, O::f16(w[i + 1].d) * O::f16(a[i + 1].d));
  }
  for (; i < nb; ++i) acc0 = O::fma(acc0, block(i), O::f16(w[i].d) * O::f16(a[i].d));
  *s = O::hsum(O::add(acc0, acc1));
}

// Register tile of R rows x T tokens of Dec::Block weights against Q8_0 activations. Per block
// the integer dot of each row and token is exact; it is scaled by (row scale x token scale),
// the token scales coming as floats from the activations' side array.
template <class O, class Dec>
struct MicroQ {
  template <int R, int T>
  struct K {
    static void run(const TileArgs& g, int r0, int tt) {
      using B = typename Dec::Block;
      const int nb = g.n / QK8_0;
      const TileOperands<B, block_q8_0, R, T> op(g, r0, tt);
      const B* const* w = op.w;
      const block_q8_0* const* a = op.a;
      const float* const* da = op.f;
      typename O::F acc[R][T];
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = O::fzero();
      for (int i = 0; i < nb; ++i) {
        op.prefetch_next(size_t(i) * sizeof(B), sizeof(B));
        typename Dec::W x[R];
        float dw[R];
        for (int r = 0; r < R; ++r) {
          x[r] = Dec::weights(w[r][i]);
          dw[r] = O::f16(w[r][i].d);
        }
        for (int t = 0; t < T; ++t) {
          const typename Dec::Tok y = Dec::token(QuantBytes<O>::act(a[t][i].qs));
          const float d = da[t][i];
          for (int r = 0; r < R; ++r) acc[r][t] = O::fma(acc[r][t], Dec::dot(x[r], y), dw[r] * d);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) g.out[(tt + t) * g.os + r0 + r] = O::hsum(acc[r][t]);
    }
  };
};

// ---- installing ----

// Q8_0 and Q4_0 with the decoders DecQ8 / DecQ4: vec_dot, and tiles of MR rows x 4 tokens.
template <class O, class DecQ8, class DecQ4, int MR>
void install_q8_q4_dots(KernelSet& ks) {
  auto& q8 = ks.by_type[uint32_t(TensorType::Q8_0)];
  auto& q4 = ks.by_type[uint32_t(TensorType::Q4_0)];
  q8.vec_dot = vec_dot_blocks<O, DecQ8>;
  q4.vec_dot = vec_dot_blocks<O, DecQ4>;
  q8.tile = tile_entry<MicroQ<O, DecQ8>::template K, MR, 4>;
  q4.tile = tile_entry<MicroQ<O, DecQ4>::template K, MR, 4>;
}

// The types above into a path's table: vec_dot, and tiles of 1 row x 4 tokens. Q4_K and Q6_K
// keep their own vec_dots (x86/avx2.cpp, arm/neon_int8.h): from here they take only the tiles.
template <class O>
void install_quant_dots(KernelSet& ks) {
  auto set = [&](TensorType type, auto row, bool with_vec_dot = true) {
    using Row = decltype(row);
    if (with_vec_dot) ks.by_type[uint32_t(type)].vec_dot = quant_vec_dot<Row, O>;
    ks.by_type[uint32_t(type)].tile = tile_entry<QuantTile<Row, O>::template K, 1, 4>;
  };
  set(TensorType::Q4_1, OffsetRow<O, block_q4_1>{});
  set(TensorType::Q5_1, OffsetRow<O, block_q5_1>{});
  set(TensorType::Q5_0, SignedRow<O, block_q5_0>{});
  set(TensorType::IQ4_NL, SignedRow<O, block_iq4_nl>{});
  set(TensorType::Q2_K, Q2KRow<O>{});
  set(TensorType::Q3_K, Q3KRow<O>{});
  set(TensorType::Q5_K, Q5KRow<O>{});
  set(TensorType::Q4_K, Q4KRow<O>{}, false);
  set(TensorType::Q6_K, Q6KRow<O>{}, false);
}

}  // namespace
}  // namespace el::kernels
