// Private to kernels/arm: the 32-byte primitives of quant_dots.h with NEON, as two 16-byte
// halves. D is the int8 dot of neon_int8.h: a widening multiply (armv8-a, neon.cpp) or sdot
// (ASIMDDP, neon_dotprod.cpp).
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace el::kernels {
namespace {

template <class D>
struct NeonQuantOps {
  struct V {
    uint8x16_t a, b;  // bytes 0..15, 16..31
  };
  using I = int32x4_t;
  using F = float32x4_t;

  static V load(const uint8_t* p) { return {vld1q_u8(p), vld1q_u8(p + 16)}; }
  static V nibbles(const uint8_t* qs) {
    const uint8x16_t q = vld1q_u8(qs);
    return {vandq_u8(q, vdupq_n_u8(0x0F)), vshrq_n_u8(q, 4)};
  }
  // Byte j tests bit j % 8 of byte j / 8 of the bits.
  static V bits(const uint8_t* p4) {
    static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bit = vld1q_u8(kBit);
    return {vtstq_u8(vcombine_u8(vdup_n_u8(p4[0]), vdup_n_u8(p4[1])), bit),
            vtstq_u8(vcombine_u8(vdup_n_u8(p4[2]), vdup_n_u8(p4[3])), bit)};
  }
  static V field(V v, int shift, uint8_t mask) {
    const int8x16_t right = vdupq_n_s8(int8_t(-shift));
    const uint8x16_t m = vdupq_n_u8(mask);
    return {vandq_u8(vshlq_u8(v.a, right), m), vandq_u8(vshlq_u8(v.b, right), m)};
  }
  static V field_up(V v, int shift, uint8_t mask) {
    const int8x16_t left = vdupq_n_s8(int8_t(shift));
    const uint8x16_t m = vdupq_n_u8(mask);
    return {vandq_u8(vshlq_u8(v.a, left), m), vandq_u8(vshlq_u8(v.b, left), m)};
  }
  static V flag(V v, int bit, uint8_t value) {
    const uint8x16_t b = vdupq_n_u8(uint8_t(1 << bit)), x = vdupq_n_u8(value);
    return {vandq_u8(vtstq_u8(v.a, b), x), vandq_u8(vtstq_u8(v.b, b), x)};
  }
  static V set1(uint8_t x) { return {vdupq_n_u8(x), vdupq_n_u8(x)}; }
  static V and_(V x, V y) { return {vandq_u8(x.a, y.a), vandq_u8(x.b, y.b)}; }
  static V or_(V x, V y) { return {vorrq_u8(x.a, y.a), vorrq_u8(x.b, y.b)}; }
  static V sub(V x, V y) { return {vsubq_u8(x.a, y.a), vsubq_u8(x.b, y.b)}; }
  static V lookup(V table, V idx) { return {vqtbl1q_u8(table.a, idx.a), vqtbl1q_u8(table.a, idx.b)}; }

  static int8x16_t s8(uint8x16_t x) { return vreinterpretq_s8_u8(x); }
  static I zero() { return vdupq_n_s32(0); }
  // Both operands as signed bytes: the unsigned ones are <= 127.
  static I dot(I acc, V u, V s) { return D::dot(D::dot(acc, s8(u.a), s8(s.a)), s8(u.b), s8(s.b)); }
  static I dot_ss(I acc, V a, V s) { return dot(acc, a, s); }
  static I dot_scaled(I acc, V u, V s, int sc) { return vmlaq_n_s32(acc, dot(zero(), u, s), sc); }
  static I dot_scaled2(I acc, V u, V s, int sc0, int sc1) {
    acc = vmlaq_n_s32(acc, D::dot(zero(), s8(u.a), s8(s.a)), sc0);
    return vmlaq_n_s32(acc, D::dot(zero(), s8(u.b), s8(s.b)), sc1);
  }

  struct S {
    int8_t v[16];
  };
  static S scales16(const int8_t* sc) {
    S s;
    std::memcpy(s.v, sc, 16);
    return s;
  }
  static S scales16_words(const uint32_t* w, int sub) {
    const uint64_t lo = w[0] | (uint64_t(w[1]) << 32), hi = w[2] | (uint64_t(w[3]) << 32);
    const int8x16_t v = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(lo), vcreate_u64(hi)));
    S s;
    vst1q_s8(s.v, vsubq_s8(v, vdupq_n_s8(int8_t(sub))));
    return s;
  }
  static I dot_run(I acc, V u, V s, const S& sc, int r) { return dot_scaled2(acc, u, s, sc.v[2 * r], sc.v[2 * r + 1]); }
  static int dot16(const int16_t* b, const S& sc) {
    const int8x16_t m = vld1q_s8(sc.v);
    const int16x8_t m0 = vmovl_s8(vget_low_s8(m)), m1 = vmovl_high_s8(m);
    const int16x8_t b0 = vld1q_s16(b), b1 = vld1q_s16(b + 8);
    int32x4_t acc = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
    acc = vmlal_high_s16(acc, b0, m0);
    acc = vmlal_s16(acc, vget_low_s16(b1), vget_low_s16(m1));
    acc = vmlal_high_s16(acc, b1, m1);
    return vaddvq_s32(acc);
  }

  static F fzero() { return vdupq_n_f32(0); }
  static F add(F x, F y) { return vaddq_f32(x, y); }
  static F fma(F acc, I isum, float scale) { return vmlaq_n_f32(acc, vcvtq_f32_s32(isum), scale); }
  static float hsum(F v) { return vaddvq_f32(v); }
  static float f16(fp16_t h) {
    __fp16 x;
    std::memcpy(&x, &h, 2);
    return float(x);
  }
};

}  // namespace
}  // namespace el::kernels
#endif  // __aarch64__
