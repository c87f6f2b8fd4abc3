// Kernel tests: every path this CPU runs against the scalar reference, plus hand-worked
// block layouts, fp16/bf16 edge cases and quantize/dequantize round trips.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "tensor_types.h"

using namespace el;
using namespace el::kernels;

namespace {

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                   TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                   TensorType::IQ4_NL, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                   TensorType::Q5_K, TensorType::Q6_K};
// Every type with a quantizer and a dequantizer: the weight types and the activation types.
const TensorType kAllTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,   TensorType::Q8_0,
                                TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,   TensorType::Q5_1,
                                TensorType::IQ4_NL, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_1,   TensorType::Q8_K};

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> encode(const KernelSet& ks, TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_size(t, int64_t(x.size())));
  ks.of(t).from_float(x.data(), out.data(), int64_t(x.size()));
  return out;
}

std::vector<float> decode(const KernelSet& ks, TensorType t, const void* data, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  ks.of(t).to_float(data, y.data(), n);
  return y;
}

// Lengths to test for a type: one block, several blocks, a big row (odd for float types).
std::vector<int> lengths(TensorType t) {
  const int bs = type_traits(t).block_size;
  if (bs == 1) return {1, 7, 8, 33, 4867};
  return {bs, 3 * bs, (4864 / bs) * bs};
}

float fp16_bits_to_float(uint16_t h) { return fp16_to_fp32(h); }

// ---- traits and conversions --------------------------------------------------

void test_traits() {
  CHECK(type_traits(99) == nullptr);
  CHECK(type_traits(16) == nullptr);  // IQ2_XXS is not supported
  CHECK(type_traits(TensorType::Q4_0).vec_dot_type == TensorType::Q8_0);
  CHECK(type_traits(TensorType::Q8_0).vec_dot_type == TensorType::Q8_0);
  CHECK(type_traits(TensorType::Q4_K).vec_dot_type == TensorType::Q8_K);
  CHECK(type_traits(TensorType::Q6_K).vec_dot_type == TensorType::Q8_K);
  CHECK(type_traits(TensorType::F16).vec_dot_type == TensorType::F16);
  CHECK(type_traits(TensorType::BF16).vec_dot_type == TensorType::BF16);
  // ggml's bytes per block
  CHECK(row_size(TensorType::Q4_0, 64) == 36);
  CHECK(row_size(TensorType::Q8_0, 64) == 68);
  CHECK(row_size(TensorType::Q4_K, 512) == 288);
  CHECK(row_size(TensorType::Q6_K, 256) == 210);
  CHECK(row_size(TensorType::Q8_K, 256) == 292);
  CHECK(row_size(TensorType::F16, 7) == 14);
  CHECK(row_size(TensorType::BF16, 5) == 10);
  CHECK(row_size(TensorType::F32, 3) == 12);
}

void test_fp16_edges() {
  const float inf = std::numeric_limits<float>::infinity();
  struct Case { float f; uint16_t h; };
  const Case cases[] = {
      {0.f, 0x0000},          {-0.f, 0x8000},           {1.f, 0x3c00},
      {-2.f, 0xc000},         {65504.f, 0x7bff},        {65519.f, 0x7bff},  // below the halfway point
      {65520.f, 0x7c00},      {1e6f, 0x7c00},           {inf, 0x7c00},
      {-inf, 0xfc00},         {std::ldexp(1.f, -24), 0x0001},                // smallest subnormal
      {std::ldexp(1.f, -25), 0x0000},                                        // tie to even (0)
      {std::ldexp(3.f, -25), 0x0002},                                        // tie to even (2)
      {std::ldexp(1.f, -14), 0x0400},                                        // smallest normal
      {std::ldexp(1023.f, -24), 0x03ff},                                     // largest subnormal
      {1.f + std::ldexp(1.f, -11), 0x3c00},                                  // tie to even (down)
      {1.f + std::ldexp(3.f, -11), 0x3c02},                                  // tie to even (up)
      {0.333333343f, 0x3555},
  };
  for (const Case& c : cases) {
    CHECK_MSG(fp32_to_fp16(c.f) == c.h, "fp16(%g) = 0x%04x, want 0x%04x", double(c.f), fp32_to_fp16(c.f), c.h);
  }
  CHECK(std::isnan(fp16_bits_to_float(fp32_to_fp16(std::nanf("")))));
  CHECK(std::isnan(fp16_bits_to_float(0x7e00)));
  CHECK(fp16_to_fp32(0x7c00) == inf);
  CHECK(fp16_to_fp32(0x0001) == std::ldexp(1.f, -24));
  CHECK(fp16_to_fp32(0x8000) == 0.f && std::signbit(fp16_to_fp32(0x8000)));
  // Every non-nan half survives a round trip through float.
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    if (fp32_to_fp16(fp16_to_fp32(uint16_t(h))) != h) ++bad;
  }
  CHECK_MSG(bad == 0, "%d halves do not round trip", bad);

  CHECK(fp32_to_bf16(1.f) == 0x3f80);
  CHECK(fp32_to_bf16(1.f + std::ldexp(1.f, -8)) == 0x3f80);     // tie to even (down)
  CHECK(fp32_to_bf16(1.f + std::ldexp(3.f, -8)) == 0x3f82);     // tie to even (up)
  CHECK(fp32_to_bf16(-inf) == 0xff80);
  CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
  CHECK(bf16_to_fp32(0x4049) == 3.140625f);
}

// ---- hand-built blocks -------------------------------------------------------

void test_known_blocks(const KernelSet& ks) {
  {  // Q8_0: d = 0.25, q = j - 16
    block_q8_0 b;
    b.d = 0x3400;
    for (int j = 0; j < 32; ++j) b.qs[j] = int8_t(j - 16);
    const auto y = decode(ks, TensorType::Q8_0, &b, 32);
    CHECK(y[0] == -4.f && y[16] == 0.f && y[31] == 3.75f);
  }
  {  // Q4_0: d = 0.5; byte j: low nibble -> element j, high nibble -> element j + 16
    block_q4_0 b;
    b.d = 0x3800;
    std::memset(b.qs, 0x88, sizeof b.qs);
    b.qs[0] = 0x1F;
    b.qs[15] = 0x80;
    const auto y = decode(ks, TensorType::Q4_0, &b, 32);
    CHECK(y[0] == 3.5f);    // (15 - 8) * 0.5
    CHECK(y[16] == -3.5f);  // (1 - 8) * 0.5
    CHECK(y[15] == -4.f);   // (0 - 8) * 0.5
    CHECK(y[31] == 0.f && y[5] == 0.f);
  }
  {  // Q4_K: d = 1, dmin = 0.5; sub-block 0: scale 2, min 4; sub-block 5: scale 33, min 17
    block_q4_K b;
    std::memset(&b, 0, sizeof b);
    b.d = 0x3c00;
    b.dmin = 0x3800;
    b.scales[0] = 2;     // scale 0
    b.scales[4] = 4;     // min 0
    b.scales[9] = 0x11;  // low 4 bits of scale 5 (1) and min 5 (1)
    b.scales[1] = 0x80;  // top 2 bits of scale 5 (0b10 -> 32)
    b.scales[5] = 0x40;  // top 2 bits of min 5 (0b01 -> 16)
    b.qs[0] = 0x07;      // element 0 (sub-block 0, low nibble)
    b.qs[64] = 0x30;     // element 160 (sub-block 5 = high nibbles of bytes 64..95)
    const auto y = decode(ks, TensorType::Q4_K, &b, 256);
    CHECK(y[0] == 12.f);    // 1 * 2 * 7 - 0.5 * 4
    CHECK(y[1] == -2.f);    // q = 0: - 0.5 * 4
    CHECK(y[32] == 0.f);    // sub-block 1: scale 0, min 0
    CHECK(y[128] == 0.f);   // sub-block 4: scale 0, min 0
    CHECK(y[160] == 90.5f); // 1 * 33 * 3 - 0.5 * 17
    CHECK(y[161] == -8.5f);
  }
  {  // Q6_K: d = 0.5; scales[0] = 3, scales[5] = -2, scales[15] = 1
    block_q6_K b;
    std::memset(&b, 0, sizeof b);
    b.d = 0x3800;
    b.scales[0] = 3;
    b.scales[5] = -2;
    b.scales[15] = 1;
    b.ql[0] = 0x05;    // element 0: low 4 bits 5
    b.qh[0] = 0x02;    // element 0: high 2 bits 2 -> q = 37
    b.ql[16] = 0xA0;   // element 80 (third run of 32, l = 16): low 4 bits 10, high 0
    b.ql[127] = 0xF0;  // element 255 (second half, fourth run, l = 31): low 4 bits 15
    b.qh[63] = 0xC0;   // ... high 2 bits 3 -> q = 63
    const auto y = decode(ks, TensorType::Q6_K, &b, 256);
    CHECK(y[0] == 7.5f);     // 0.5 * 3 * (37 - 32)
    CHECK(y[1] == -48.f);    // 0.5 * 3 * (0 - 32)
    CHECK(y[80] == 22.f);    // 0.5 * -2 * (10 - 32)
    CHECK(y[255] == 15.5f);  // 0.5 * 1 * (63 - 32)
    CHECK(y[64] == 0.f);     // sub-block 4 has scale 0
  }
  {  // Q8_K decode: value = d * q with a float d
    block_q8_K b;
    std::memset(&b, 0, sizeof b);
    b.d = -0.5f;
    b.qs[3] = 10;
    const auto y = decode(ks, TensorType::Q8_K, &b, 256);
    CHECK(y[3] == -5.f && y[4] == 0.f);
  }
}

// Activation quantizers on hand-worked inputs (ties round to even, as ggml's x86 path).
void test_known_quantize(const KernelSet& ks) {
  {
    std::vector<float> x(32, 0.f);
    x[0] = 127.f;  // amax = 127: d = 1, scaled values are the inputs themselves
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -0.5f;
    x[4] = -1.5f;
    x[5] = -127.f;
    const auto enc = encode(ks, TensorType::Q8_0, x);
    const block_q8_0& b = *reinterpret_cast<const block_q8_0*>(enc.data());
    CHECK(b.d == 0x3c00);
    CHECK(b.qs[0] == 127 && b.qs[1] == 2 && b.qs[2] == 4 && b.qs[3] == 0 && b.qs[4] == -2 && b.qs[5] == -127);
  }
  {
    std::vector<float> x(256, 0.f);
    x[7] = 3.96875f;    // 127/32, largest magnitude and positive: iscale = -32, d = -1/32
    x[8] = -1.984375f;  // scaled: 63.5 -> 64 (tie to even)
    x[9] = -1.953125f;  // scaled: 62.5 -> 62 (tie to even)
    x[20] = 0.0625f;    // scaled: -2
    const auto enc = encode(ks, TensorType::Q8_K, x);
    const block_q8_K& b = *reinterpret_cast<const block_q8_K*>(enc.data());
    CHECK(b.d == -0.03125f);
    CHECK(b.qs[7] == -127 && b.qs[8] == 64 && b.qs[9] == 62 && b.qs[20] == -2 && b.qs[0] == 0);
    CHECK(b.bsums[0] == -127 + 64 + 62 && b.bsums[1] == -2 && b.bsums[2] == 0);
  }
}

// ---- round trips (scalar reference) -------------------------------------------

void test_round_trips() {
  const KernelSet& ref = scalar();
  for (TensorType t : kAllTypes) {
    const int n = 1024;
    const auto x = randn(n, 7);
    const auto enc = encode(ref, t, x);
    const auto y = decode(ref, t, enc.data(), n);
    double err2 = 0, x2 = 0, max_rel = 0;
    for (int i = 0; i < n; ++i) {
      err2 += double(y[i] - x[i]) * (y[i] - x[i]);
      x2 += double(x[i]) * x[i];
      max_rel = std::max(max_rel, double(std::fabs(y[i] - x[i])) / (std::fabs(x[i]) + 1e-30));
    }
    const double rel_rms = std::sqrt(err2 / x2);
    const char* name = type_traits(t).name;
    switch (t) {
      case TensorType::F32: CHECK_MSG(err2 == 0, "%s", name); break;
      case TensorType::F16: CHECK_MSG(max_rel <= std::ldexp(1.0, -11), "%s max rel %g", name, max_rel); break;
      case TensorType::BF16: CHECK_MSG(max_rel <= std::ldexp(1.0, -8), "%s max rel %g", name, max_rel); break;
      // Expected rms error of a uniform step s is s/sqrt(12): about 1%, 8%, 10%, 2.5%, 1% of sigma here.
      case TensorType::Q8_0: CHECK_MSG(rel_rms < 0.012, "%s rms %g", name, rel_rms); break;
      case TensorType::Q4_0: CHECK_MSG(rel_rms < 0.12, "%s rms %g", name, rel_rms); break;
      case TensorType::Q4_K: CHECK_MSG(rel_rms < 0.14, "%s rms %g", name, rel_rms); break;
      case TensorType::Q6_K: CHECK_MSG(rel_rms < 0.04, "%s rms %g", name, rel_rms); break;
      case TensorType::Q8_K: CHECK_MSG(rel_rms < 0.012, "%s rms %g", name, rel_rms); break;
      case TensorType::Q8_1: CHECK_MSG(rel_rms < 0.012, "%s rms %g", name, rel_rms); break;
      case TensorType::Q4_1: CHECK_MSG(rel_rms < 0.10, "%s rms %g", name, rel_rms); break;
      case TensorType::Q5_0: CHECK_MSG(rel_rms < 0.06, "%s rms %g", name, rel_rms); break;
      case TensorType::Q5_1: CHECK_MSG(rel_rms < 0.05, "%s rms %g", name, rel_rms); break;
      case TensorType::IQ4_NL: CHECK_MSG(rel_rms < 0.12, "%s rms %g", name, rel_rms); break;
      case TensorType::Q2_K: CHECK_MSG(rel_rms < 0.40, "%s rms %g", name, rel_rms); break;
      case TensorType::Q3_K: CHECK_MSG(rel_rms < 0.25, "%s rms %g", name, rel_rms); break;
      case TensorType::Q5_K: CHECK_MSG(rel_rms < 0.07, "%s rms %g", name, rel_rms); break;
      default: CHECK_MSG(false, "%s: no bound", name);
    }
    // Quantizing the decoded values again must reproduce them (a fixed point), except where
    // ggml's rule re-derives a different scale; Q8_0 and Q8_K re-derive the same one.
    if (t == TensorType::Q8_0 || t == TensorType::Q8_1 || t == TensorType::Q8_K || t == TensorType::F16 ||
        t == TensorType::BF16) {
      const auto y2 = decode(ref, t, encode(ref, t, y).data(), n);
      double d = 0;
      for (int i = 0; i < n; ++i) d = std::max(d, double(std::fabs(y2[i] - y[i])));
      CHECK_MSG(d <= 1e-6 * 4, "%s re-quantize drift %g", name, d);
    }
  }
  // All-zero blocks stay zero.
  for (TensorType t : kAllTypes) {
    const std::vector<float> z(256, 0.f);
    const auto y = decode(ref, t, encode(ref, t, z).data(), 256);
    for (float v : y) CHECK(v == 0.f);
  }
}

// ---- paths against the reference -----------------------------------------------

// |got - want| relative to sum |w_i * a_i| of the dequantized operands.
bool near_norm(double got, double want, double norm, double rel) {
  return std::fabs(got - want) <= rel * norm + 1e-30;
}

void test_conversions(const KernelSet& ks) {
  const KernelSet& ref = scalar();
  for (TensorType t : kAllTypes) {
    for (int n : lengths(t)) {
      const auto x = randn(size_t(n), uint32_t(n) * 31 + uint32_t(t), 3.f);
      // Quantizers are bit-exact with the reference (activations must match ggml's).
      const auto want = encode(ref, t, x);
      const auto got = encode(ks, t, x);
      CHECK_MSG(want == got, "%s from_float %s n=%d differs", ks.name, type_traits(t).name, n);
      const auto y_ref = decode(ref, t, want.data(), n);
      const auto y = decode(ks, t, want.data(), n);
      int bad = 0;
      for (int i = 0; i < n; ++i) bad += std::fabs(y[i] - y_ref[i]) > 1e-6f * (std::fabs(y_ref[i]) + 1e-3f);
      CHECK_MSG(bad == 0, "%s to_float %s n=%d: %d values differ", ks.name, type_traits(t).name, n, bad);
    }
  }
}

void test_vec_dots(const KernelSet& ks) {
  const KernelSet& ref = scalar();
  for (TensorType t : kWeightTypes) {
    const TensorType at = type_traits(t).vec_dot_type;
    for (int n : lengths(t)) {
      const auto wx = randn(size_t(n), uint32_t(n) + 101, 0.5f);
      const auto ax = randn(size_t(n), uint32_t(n) + 202, 2.f);
      const auto w = encode(ref, t, wx);
      const auto a = encode(ref, at, ax);
      const auto wd = decode(ref, t, w.data(), n);
      const auto ad = decode(ref, at, a.data(), n);
      double exact = 0, norm = 0;
      for (int i = 0; i < n; ++i) {
        exact += double(wd[i]) * ad[i];
        norm += std::fabs(double(wd[i]) * ad[i]);
      }
      // With Q8_1 activations (Q4_1, Q5_1) the weights' offset m meets the block's stored
      // s = fp16(d * sum(q)), as in ggml, instead of the exact sum: m . (s - sum(a)) per block.
      if (at == TensorType::Q8_1) {
        const size_t wb = type_traits(t).type_size;
        for (int b = 0; b < n / QK8_1; ++b) {
          fp16_t m;
          std::memcpy(&m, w.data() + b * wb + 2, 2);  // block_q4_1 / block_q5_1: d, then m
          const block_q8_1& blk = reinterpret_cast<const block_q8_1*>(a.data())[b];
          double sum = 0;
          for (int j = 0; j < QK8_1; ++j) sum += ad[size_t(b * QK8_1 + j)];
          exact += double(fp16_to_fp32(m)) * (double(fp16_to_fp32(blk.s)) - sum);
        }
      }
      float want = 0, got = 0;
      ref.of(t).vec_dot(n, &want, w.data(), a.data());
      ks.of(t).vec_dot(n, &got, w.data(), a.data());
      // The reference's integer dot equals the dot of the decoded rows...
      CHECK_MSG(near_norm(want, exact, norm, 1e-5), "scalar vec_dot %s n=%d: %g vs %g", type_traits(t).name, n,
                double(want), exact);
      // ...and every path equals the reference.
      CHECK_MSG(near_norm(got, want, norm, 1e-5), "%s vec_dot %s n=%d: %g vs %g", ks.name, type_traits(t).name, n,
                double(got), double(want));
    }
  }
}

// Blocks at the extremes of their quant ranges (Q8_0 +-127, Q4_0 nibbles 0 and 15, Q5_0 0 and
// 31, IQ4_NL's -127 and 113, Q4_1 / Q5_1 0 and their top) against
// activations at +-127: no byte product may saturate on any path, in vec_dot or the tiles.
void test_extreme_blocks(const KernelSet& ks) {
  const KernelSet& ref = scalar();
  const int n = 4 * QK8_0, n_tok = 5, n_out = 3;
  std::vector<float> x(size_t(n * n_tok));
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i / 3) % 2 ? 1.f : -1.f;  // quantizes to +-127
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                       TensorType::IQ4_NL}) {
    std::vector<float> wx(size_t(n * n_out));
    for (size_t i = 0; i < wx.size(); ++i) wx[i] = (i / 5) % 2 ? 1.f : (t == TensorType::Q4_0 ? -0.875f : -1.f);
    std::vector<uint8_t> w;
    for (int r = 0; r < n_out; ++r) {
      const auto enc = encode(ref, t, std::vector<float>(wx.begin() + r * n, wx.begin() + (r + 1) * n));
      w.insert(w.end(), enc.begin(), enc.end());
    }
    PreparedActivations act;
    prepare_activations(ks, t, x.data(), n, n_tok, n, act);
    std::vector<float> out(size_t(n_out * n_tok));
    matmul_rows(ks, WeightView{t, w.data(), n, n_out, row_size(t, n)}, act, 0, n_out, out.data(), n_out);
    int bad = 0;
    for (int tk = 0; tk < n_tok; ++tk)
      for (int r = 0; r < n_out; ++r) {
        float want = 0, got = 0;
        ref.of(t).vec_dot(n, &want, w.data() + r * row_size(t, n), act.row(tk));
        ks.of(t).vec_dot(n, &got, w.data() + r * row_size(t, n), act.row(tk));
        bad += !near_norm(got, want, n * 1.1, 1e-6) + !near_norm(out[size_t(tk * n_out + r)], want, n * 1.1, 1e-6);
      }
    CHECK_MSG(bad == 0, "%s extreme %s blocks: %d wrong", ks.name, type_traits(t).name, bad);
  }
}

void test_float_ops(const KernelSet& ks) {
  const KernelSet& ref = scalar();
  for (int n : {1, 7, 8, 33, 1000}) {
    const auto a = randn(size_t(n), uint32_t(n) + 5);
    const auto b = randn(size_t(n), uint32_t(n) + 6);
    std::vector<fp16_t> h(static_cast<size_t>(n));
    ref.of(TensorType::F16).from_float(a.data(), h.data(), n);
    double norm = 0, norm_h = 0;
    for (int i = 0; i < n; ++i) {
      norm += std::fabs(double(a[i]) * b[i]);
      norm_h += std::fabs(double(fp16_to_fp32(h[i])) * b[i]);
    }
    CHECK_MSG(near_norm(ks.dot_f32(n, a.data(), b.data()), ref.dot_f32(n, a.data(), b.data()), norm, 1e-5),
              "%s dot_f32 n=%d", ks.name, n);
    CHECK_MSG(near_norm(ks.dot_f16_f32(n, h.data(), b.data()), ref.dot_f16_f32(n, h.data(), b.data()), norm_h, 1e-5),
              "%s dot_f16_f32 n=%d", ks.name, n);
    auto y_ref = b, y = b, yh_ref = b, yh = b;
    ref.axpy_f32(n, 0.75f, a.data(), y_ref.data());
    ks.axpy_f32(n, 0.75f, a.data(), y.data());
    ref.axpy_f16(n, -1.5f, h.data(), yh_ref.data());
    ks.axpy_f16(n, -1.5f, h.data(), yh.data());
    int bad = 0;
    for (int i = 0; i < n; ++i) {
      bad += std::fabs(y[i] - y_ref[i]) > 1e-6f * (std::fabs(y_ref[i]) + 1.f);
      bad += std::fabs(yh[i] - yh_ref[i]) > 1e-6f * (std::fabs(yh_ref[i]) + 1.f);
    }
    CHECK_MSG(bad == 0, "%s axpy n=%d: %d values differ", ks.name, n, bad);
  }
}

// Attention blocks against the scalar reference: rows `stride` apart (past the head's hd
// values, as in the KV cache), every position count around the 4-row tiles, head sizes with
// and without a vector tail; values add to what out already holds.
void test_attention_ops(const KernelSet& ks) {
  const KernelSet& ref = scalar();
  for (int hd : {64, 128, 80, 17}) {
    for (int n : {1, 3, 4, 5, 32, 33}) {
      const int64_t stride = 2 * hd + 3;
      const auto kf = randn(size_t(n * stride), uint32_t(hd * 100 + n));
      std::vector<fp16_t> kv(kf.size());
      ref.of(TensorType::F16).from_float(kf.data(), kv.data(), int64_t(kf.size()));
      const auto q = randn(size_t(hd), uint32_t(hd + n + 1));
      const auto w = randn(size_t(n), uint32_t(hd + n + 2));
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      ref.attn_scores_f16(hd, n, kv.data() + 1, stride, q.data(), 0.125f, want.data());
      ks.attn_scores_f16(hd, n, kv.data() + 1, stride, q.data(), 0.125f, got.data());
      int bad = 0;
      for (int j = 0; j < n; ++j) {
        double norm = 0;
        for (int i = 0; i < hd; ++i) norm += std::fabs(double(fp16_to_fp32(kv[size_t(1 + j * stride + i)])) * q[size_t(i)]);
        bad += !near_norm(got[size_t(j)], want[size_t(j)], 0.125 * norm, 1e-5);
      }
      auto out_want = randn(size_t(hd), uint32_t(hd + n + 3)), out_got = out_want;
      ref.attn_values_f16(hd, n, w.data(), kv.data() + 1, stride, out_want.data());
      ks.attn_values_f16(hd, n, w.data(), kv.data() + 1, stride, out_got.data());
      for (int i = 0; i < hd; ++i) {
        double norm = std::fabs(double(out_want[size_t(i)]));
        for (int j = 0; j < n; ++j) norm += std::fabs(double(w[size_t(j)]) * fp16_to_fp32(kv[size_t(1 + j * stride + i)]));
        bad += !near_norm(out_got[size_t(i)], out_want[size_t(i)], norm, 1e-5);
      }
      CHECK_MSG(bad == 0, "%s attention hd=%d n=%d: %d values differ", ks.name, hd, n, bad);
    }
  }
}

// Attention's softmax against the scalar reference: spreads from flat to where most weights
// underflow to 0, and every tail length.
void test_softmax(const KernelSet& ks) {
  for (int n : {1, 7, 8, 33, 1000}) {
    for (float spread : {0.1f, 10.0f, 300.0f}) {
      auto want = randn(size_t(n), uint32_t(n * 7) + uint32_t(spread));
      for (float& v : want) v *= spread;
      auto got = want;
      scalar().softmax_f32(n, want.data());
      ks.softmax_f32(n, got.data());
      int bad = 0;
      for (int j = 0; j < n; ++j) bad += !(std::fabs(got[size_t(j)] - want[size_t(j)]) <= 2e-6f * want[size_t(j)] + 1e-30f);
      CHECK_MSG(bad == 0, "%s softmax_f32 n=%d spread %g: %d values differ", ks.name, n, double(spread), bad);
    }
  }
}

// SwiGLU's gate against the scalar std::exp reference, over the whole range: where e^-g
// overflows or vanishes, and tails of every length.
void test_silu_mul(const KernelSet& ks) {
  const float special[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 0.5f, -3.0f, 20.0f, -20.0f, 87.0f, -87.0f, 88.5f, -88.5f,
                           100.0f, -100.0f, 1e30f, -1e30f};
  for (int n : {1, 7, 8, 33, 1000}) {
    auto g = randn(size_t(n), uint32_t(n) + 11);
    const auto u = randn(size_t(n), uint32_t(n) + 12);
    for (int i = 0; i < n; ++i) g[size_t(i)] = i % 3 == 0 ? special[(i / 3) % 16] : 8.0f * g[size_t(i)];
    auto want = g, got = g;
    scalar().silu_mul(n, want.data(), u.data());
    ks.silu_mul(n, got.data(), u.data());
    int bad = 0;
    for (int i = 0; i < n; ++i) bad += !(std::fabs(got[i] - want[i]) <= 2e-6f * std::fabs(want[i]) + 1e-30f);
    CHECK_MSG(bad == 0, "%s silu_mul n=%d: %d values differ", ks.name, n, bad);
  }
}

// The float side array of prepared activations: F16 values and Q8_0 block scales, exact.
void check_side_array(const KernelSet& ks, TensorType t, const PreparedActivations& act) {
  int bad = 0;
  for (int tk = 0; tk < act.n_tok; ++tk) {
    if (act.type == TensorType::F16) {
      const fp16_t* h = static_cast<const fp16_t*>(act.row(tk));
      for (int64_t i = 0; i < act.n_in; ++i) bad += act.f32_row(tk)[i] != fp16_to_fp32(h[i]);
    } else if (act.type == TensorType::Q8_0) {
      const block_q8_0* b = static_cast<const block_q8_0*>(act.row(tk));
      for (int64_t i = 0; i < act.n_in / QK8_0; ++i) bad += act.f32_row(tk)[i] != fp16_to_fp32(b[i].d);
    }
  }
  CHECK_MSG(bad == 0, "%s prepare_activations %s: %d side values differ", ks.name, type_traits(t).name, bad);
}

// matmul_rows on one weight matrix for token counts 1..9 and row ranges that are not
// multiples of any register tile, against the reference vec_dot of each row and token.
void check_matmul(const KernelSet& ks, TensorType t, int64_t n_in, int64_t n_out) {
  const KernelSet& ref = scalar();
  const auto wx = randn(size_t(n_in * n_out), 11);
  std::vector<uint8_t> wbuf;
  for (int64_t r = 0; r < n_out; ++r) {
    const std::vector<float> row(wx.begin() + r * n_in, wx.begin() + (r + 1) * n_in);
    const auto enc = encode(ref, t, row);
    wbuf.insert(wbuf.end(), enc.begin(), enc.end());
  }
  const WeightView w{t, wbuf.data(), n_in, n_out, row_size(t, n_in)};
  const std::pair<int64_t, int64_t> ranges[] = {{0, n_out}, {5, 29}, {3, 22}, {n_out - 1, n_out}, {1, n_out - 2}};
  for (int n_tok = 1; n_tok <= 9; ++n_tok) {
    const int64_t x_stride = n_in + 3;  // rows of x are not packed
    const auto x = randn(size_t(x_stride * n_tok), uint32_t(n_tok) + 12);
    PreparedActivations act_ref, act;
    prepare_activations(ref, t, x.data(), x_stride, n_tok, n_in, act_ref);
    prepare_activations(ks, t, x.data(), x_stride, n_tok, n_in, act);
    CHECK(act.type == type_traits(t).vec_dot_type && act.n_tok == n_tok);
    CHECK_MSG(std::memcmp(act.buffer.data(), act_ref.buffer.data(), act.row_bytes * size_t(n_tok)) == 0,
              "%s prepare_activations %s differs", ks.name, type_traits(t).name);
    check_side_array(ks, t, act);
    for (auto range : ranges) {
      const int64_t out_stride = n_out + 1;
      const float sentinel = -12345.f;
      std::vector<float> out(size_t(out_stride * n_tok), sentinel);
      matmul_rows(ks, w, act, range.first, range.second, out.data(), out_stride);
      int bad = 0, touched = 0;
      for (int tk = 0; tk < n_tok; ++tk) {
        for (int64_t r = 0; r < out_stride; ++r) {
          const float got = out[size_t(tk * out_stride + r)];
          if (r < range.first || r >= range.second) {
            touched += got != sentinel;
            continue;
          }
          float want = 0;
          ref.of(t).vec_dot(int(n_in), &want, wbuf.data() + r * w.row_bytes, act_ref.row(tk));
          bad += !(std::fabs(got - want) <= 1e-4f * (std::fabs(want) + 1.f));
        }
      }
      CHECK_MSG(bad == 0 && touched == 0,
                "%s matmul %s %lldx%lld n_tok=%d rows [%lld,%lld): %d wrong, %d outside written", ks.name,
                type_traits(t).name, (long long)n_in, (long long)n_out, n_tok, (long long)range.first,
                (long long)range.second, bad, touched);
    }
  }
}

void test_matmul(const KernelSet& ks) {
  for (TensorType t : kWeightTypes) {
    const int bs = type_traits(t).block_size;
    // 53 rows: more than one row tile of matmul_rows for short rows; odd for float types
    check_matmul(ks, t, bs == 1 ? 67 : 2 * std::max(bs, 64), 53);
  }
  // Long rows; for F16 the 9 tokens span two of matmul_rows' cache tiles.
  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) check_matmul(ks, t, 4864 + 32, 31);
}

void test_dispatch() {
  const auto paths = available();
  CHECK(!paths.empty() && std::strcmp(paths[0]->name, "scalar") == 0);
  CHECK(by_name("scalar") == &scalar());
  CHECK(by_name("no-such-path") == nullptr);
  bool best_listed = false;
  for (const KernelSet* p : paths) {
    best_listed |= p == &best();
    CHECK(by_name(p->name) == p);
    for (TensorType t : kWeightTypes) CHECK(p->of(t).vec_dot && p->of(t).to_float && p->of(t).from_float);
  }
  CHECK(best_listed);
  // main() forced the reference path through the environment before best() first ran.
  CHECK(&best() == &scalar());
}

}  // namespace

int main() {
  setenv("EDGELORA_KERNELS", "scalar", 1);  // read once, by the first best()
  test_traits();
  test_fp16_edges();
  test_round_trips();
  test_dispatch();
  for (const KernelSet* ks : available()) {
    std::fprintf(stderr, "path %s\n", ks->name);
    test_known_blocks(*ks);
    test_known_quantize(*ks);
    test_conversions(*ks);
    test_vec_dots(*ks);
    test_extreme_blocks(*ks);
    test_float_ops(*ks);
    test_silu_mul(*ks);
    test_softmax(*ks);
    test_attention_ops(*ks);
    test_matmul(*ks);
  }
  return el_test::test_exit_code();
}
