// Packed8 for the K-quants (kernels/packed_k.h): the repack is lossless, every quant and scale
// lands where the layout says (checked by decoding the packed block by the layout's own rule),
// and matmul_rows over packed weights on every path (scalar: the packed reference) matches the
// scalar vec_dot over the original rows.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "packed_checks.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/packed_k.h"

using namespace el;
using namespace el::kernels;
using el_test::check_packed_matmul;
using el_test::packed_copy;
using el_test::randn;

namespace {

const TensorType kTypes[] = {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q3_K, TensorType::Q2_K};

enum class Fill { Random, Min, Max };

// n_out GGUF rows of n_in elements: fp16 scales in a sane range, every other byte (sub-block
// scales and mins, quants, high bits) random or all 0 / all 1 bits, which covers each field's
// whole range (Q3_K's scales -32..31, quants -4..3; Q4_K's 0..63 and 0..15, Q5_K's 0..31; Q2_K's
// 0..15 and 0..3; Q6_K's scales -128..127 and quants -32..31).
std::vector<uint8_t> make_rows(TensorType t, int64_t n_in, int64_t n_out, uint32_t seed, Fill fill = Fill::Random) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.0005f, 0.01f);
  std::vector<uint8_t> out(row_size(t, n_in) * size_t(n_out));
  for (uint8_t& b : out) b = fill == Fill::Min ? 0x00 : fill == Fill::Max ? 0xFF : uint8_t(rng());
  const size_t bs = type_traits(t).type_size;
  for (size_t off = 0; off < out.size(); off += bs) {
    if (t == TensorType::Q4_K) {
      auto& b = *reinterpret_cast<block_q4_K*>(out.data() + off);
      b.d = fp32_to_fp16(scale(rng));
      b.dmin = fp32_to_fp16(scale(rng));
    } else if (t == TensorType::Q5_K) {
      auto& b = *reinterpret_cast<block_q5_K*>(out.data() + off);
      b.d = fp32_to_fp16(scale(rng));
      b.dmin = fp32_to_fp16(scale(rng));
    } else if (t == TensorType::Q6_K) {
      reinterpret_cast<block_q6_K*>(out.data() + off)->d = fp32_to_fp16(scale(rng));
    } else if (t == TensorType::Q2_K) {
      auto& b = *reinterpret_cast<block_q2_K*>(out.data() + off);
      b.d = fp32_to_fp16(scale(rng));
      b.dmin = fp32_to_fp16(scale(rng));
    } else {
      reinterpret_cast<block_q3_K*>(out.data() + off)->d = fp32_to_fp16(scale(rng));
    }
  }
  return out;
}

// Element e (0..255) of row r of a packed super-block, by packed_k.h's description.
float packed_value(const block_q4_Kx8& b, int r, int e) {
  const int j = e / 32, h = (e % 32) / 16, c = (e % 16) / 4, k = e % 4;
  const int u = (b.q[j][32 * c + 4 * r + k] >> (4 * h)) & 0xF;
  return fp16_to_fp32(b.d[r]) * float(b.sc[j][r]) * float(u) - fp16_to_fp32(b.dmin[r]) * float(b.m[j][r]);
}
float packed_value(const block_q5_Kx8& b, int r, int e) {
  const int j = e / 32, h = (e % 32) / 16, c = (e % 16) / 4, k = e % 4;
  const int u = ((b.q[j][32 * c + 4 * r + k] >> (4 * h)) & 0xF) | (((b.qh[j][4 * r + k] >> (4 * h + c)) & 1) << 4);
  return fp16_to_fp32(b.d[r]) * float(b.sc[j][r]) * float(u) - fp16_to_fp32(b.dmin[r]) * float(b.m[j][r]);
}
float packed_value(const block_q2_Kx8& b, int r, int e) {
  const int s = e / 16, k = (e % 16) / 4, i = e % 4;
  const int u = (b.q2[s][4 * r + i] >> (2 * k)) & 3;
  return fp16_to_fp32(b.d[r]) * float(b.sm[s][r] & 0xF) * float(u) - fp16_to_fp32(b.dmin[r]) * float(b.sm[s][r] >> 4);
}
float packed_value(const block_q6_Kx8& b, int r, int e) {
  const int j = e / 32, h = (e % 32) / 16, c = (e % 16) / 4, k = e % 4;
  const int u = ((b.q[j][32 * c + 4 * r + k] >> (4 * h)) & 0xF) | (((b.qh[j][32 * h + 4 * r + k] >> (2 * c)) & 3) << 4);
  return fp16_to_fp32(b.d[r]) * float(b.sc[e / 16][r]) * float(u - kPackOffsetQ6_K);
}
float packed_value(const block_q3_Kx8& b, int r, int e) {
  const int s = e / 16, k = (e % 16) / 4, i = e % 4;
  const int low = (b.q2[s][4 * r + i] >> (2 * k)) & 3;
  const int p = e / 32, bit = (e % 32) / 4;  // element 32p + 4 bit + i
  const int high = (b.qh[p][4 * r + i] >> bit) & 1;
  return fp16_to_fp32(b.d[r]) * float(b.sc[s][r]) * float((low | high << 2) - kPackOffsetQ3_K);
}

// Decoding the packed copy by the layout's rule gives the scalar to_float of the original rows,
// and unpack gives the rows back bit for bit.
template <class Packed>
void test_layout(TensorType t, int64_t n_in, int64_t n_out, Fill fill) {
  const auto rows = make_rows(t, n_in, n_out, uint32_t(n_in + n_out), fill);
  const auto p = packed_copy(t, rows, n_in, n_out);
  CHECK(p.size() == size_t(n_out / kPackRows) * size_t(n_in / QK_K) * sizeof(Packed));
  const int64_t nb = n_in / QK_K;
  const size_t rb = row_size(t, n_in);
  std::vector<float> want(static_cast<size_t>(n_in));
  int bad = 0;
  for (int64_t row = 0; row < n_out; ++row) {
    scalar().of(t).to_float(rows.data() + size_t(row) * rb, want.data(), n_in);
    const Packed* g = reinterpret_cast<const Packed*>(p.data()) + (row / kPackRows) * nb;
    for (int64_t e = 0; e < n_in; ++e) {
      const float got = packed_value(g[e / QK_K], int(row % kPackRows), int(e % QK_K));
      bad += !(std::fabs(got - want[size_t(e)]) <= 1e-6f * (std::fabs(want[size_t(e)]) + 1e-3f));
    }
  }
  CHECK_MSG(bad == 0, "%s %lldx%lld: %d packed values differ from the rows'", type_traits(t).name, (long long)n_in,
            (long long)n_out, bad);
  std::vector<uint8_t> back(rows.size());
  unpack(t, p.data(), n_in, n_out, back.data());
  CHECK_MSG(back == rows, "%s %lldx%lld: unpack differs from the original", type_traits(t).name, (long long)n_in,
            (long long)n_out);
}

// 1 to 9 tokens: every tile width of every path, and a remainder after a full tile.
const std::vector<int> kTokenCounts = {1, 2, 3, 4, 5, 6, 7, 8, 9};

void test_matmul(const KernelSet& ks) {
  for (TensorType t : kTypes) {
    for (int64_t n_in : {256, 768}) {
      for (int64_t n_out : {8, 24, 40}) {
        const auto x = randn(size_t((n_in + 3) * 9 + 9), uint32_t(n_in + n_out));
        check_packed_matmul(ks, t, make_rows(t, n_in, n_out, uint32_t(n_in * 100 + n_out)), n_in, n_out, x, "random",
                            kTokenCounts);
      }
    }
    // Every field at one end of its range against activations all +1 or alternating: the
    // integer sums at their largest, in both signs.
    const int64_t n_in = 512, n_out = 16;
    std::vector<float> ones((n_in + 3) * 9 + 9, 1.f), alternating(ones.size());
    for (size_t i = 0; i < alternating.size(); ++i) alternating[i] = i % 2 ? -1.f : 1.f;
    for (Fill f : {Fill::Min, Fill::Max}) {
      const auto rows = make_rows(t, n_in, n_out, 3, f);
      check_packed_matmul(ks, t, rows, n_in, n_out, ones, f == Fill::Min ? "min x ones" : "max x ones",
                          kTokenCounts);
      check_packed_matmul(ks, t, rows, n_in, n_out, alternating, f == Fill::Min ? "min x +-1" : "max x +-1",
                          kTokenCounts);
    }
  }
}

// Every SIMD path with packed kernels packs all five (the model loader then repacks them).
void test_packs() {
  for (const KernelSet* ks : available()) {
    const bool simd = std::strcmp(ks->name, "avx512-vnni") == 0 || std::strcmp(ks->name, "avx2-vnni") == 0 ||
                      std::strcmp(ks->name, "avx2") == 0 || std::strcmp(ks->name, "neon-dotprod") == 0;
    for (TensorType t : kTypes) CHECK_MSG(packs(*ks, t) == simd, "%s packs %s", ks->name, type_traits(t).name);
    CHECK(!packs(*ks, TensorType::Q8_K) && !packs(*ks, TensorType::F16));
  }
}

// The packed size: the GGUF rows plus 4 bytes per row and super-block (the unpacked 6-bit scales);
// Q2_K's and Q6_K's are the GGUF size.
void test_sizes() {
  CHECK(packed_bytes(TensorType::Q4_K, 4864, 896) == size_t(4864 / 256) * 148 * 896);
  CHECK(packed_bytes(TensorType::Q3_K, 4864, 896) == size_t(4864 / 256) * 114 * 896);
  CHECK(packed_bytes(TensorType::Q5_K, 4864, 896) == size_t(4864 / 256) * 180 * 896);
  CHECK(packed_bytes(TensorType::Q2_K, 4864, 896) == row_size(TensorType::Q2_K, 4864) * 896);
  CHECK(packed_bytes(TensorType::Q6_K, 4864, 896) == row_size(TensorType::Q6_K, 4864) * 896);
  CHECK(packed_bytes(TensorType::Q4_0, 896, 64) == row_size(TensorType::Q4_0, 896) * 64);
}

// The AVX-512 kernels do the 256-bit kernels' arithmetic two row groups at a time, so they give
// the AVX-VNNI path's bits: 8-token tiles and the rest, an odd group count (the last group goes
// through the 256-bit kernel) and row ranges starting on an odd group.
void test_avx512_same_bits() {
  const KernelSet* wide = by_name("avx512-vnni");
  const KernelSet* vnni = by_name("avx2-vnni");
  if (!wide || !vnni) return;
  for (TensorType t : kTypes) {
    const int64_t n_in = 512, n_out = 40;
    const auto p = packed_copy(t, make_rows(t, n_in, n_out, 11), n_in, n_out);
    const WeightView w{t, p.data(), n_in, n_out, row_size(t, n_in), WeightLayout::Packed8};
    const auto x = randn(size_t(n_in * 19), 12);
    for (int n_tok : {1, 3, 5, 8, 9, 19}) {
      PreparedActivations act;
      prepare_activations(*vnni, t, x.data(), n_in, n_tok, n_in, act);
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, n_out}, {8, n_out}, {8, 32}}) {
        std::vector<float> a(size_t(n_out * n_tok)), b(a.size());
        matmul_rows(*wide, w, act, r0, r1, a.data(), n_out);
        matmul_rows(*vnni, w, act, r0, r1, b.data(), n_out);
        CHECK_MSG(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                  "avx512-vnni %s n_tok=%d rows [%lld,%lld) differs from avx2-vnni", type_traits(t).name, n_tok,
                  (long long)r0, (long long)r1);
      }
    }
  }
}

}  // namespace

int main() {
  for (TensorType t : kTypes) CHECK(packable_type(t) && packable_k_type(t));
  CHECK(!packable_type(TensorType::Q8_K) && !packable_type(TensorType::F16));
  test_sizes();
  for (Fill f : {Fill::Random, Fill::Min, Fill::Max}) {
    test_layout<block_q4_Kx8>(TensorType::Q4_K, 512, 16, f);
    test_layout<block_q3_Kx8>(TensorType::Q3_K, 512, 16, f);
    test_layout<block_q5_Kx8>(TensorType::Q5_K, 512, 16, f);
    test_layout<block_q2_Kx8>(TensorType::Q2_K, 512, 16, f);
    test_layout<block_q6_Kx8>(TensorType::Q6_K, 512, 16, f);
  }
  test_packs();
  test_avx512_same_bits();
  for (const KernelSet* ks : available()) {
    std::fprintf(stderr, "path %s\n", ks->name);
    test_matmul(*ks);
  }
  return el_test::test_exit_code();
}
