// Packed8 weights (kernels/packed.h): the repack is lossless and puts every byte where the
// layout says, and matmul_rows over packed weights on every path (the scalar path runs the
// packed reference) matches the scalar reference over the original rows.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "packed_checks.h"
#include "error.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"

using namespace el;
using namespace el::kernels;
using el_test::check_packed_matmul;
using el_test::packed_copy;
using el_test::randn;

namespace {

// How the quants of a test row are drawn.
enum class Fill { Random, Min, Max };

// The types Packed8 defines.
const TensorType kPacked[] = {TensorType::Q4_0,   TensorType::Q8_0, TensorType::Q5_0,
                              TensorType::IQ4_NL, TensorType::Q4_1, TensorType::Q5_1};

// The nibbles (and Q5_0's fifth bits) of a block: random, or all 0 / all 1 bits.
void fill_bytes(uint8_t* p, size_t n, Fill fill, std::mt19937& rng) {
  for (size_t k = 0; k < n; ++k) p[k] = fill == Fill::Min ? 0x00 : fill == Fill::Max ? 0xFF : uint8_t(rng());
}

// n_out GGUF rows of n_in elements: random scales, quants over their whole range (nibbles
// 0..15, Q5_0's 0..31, Q8_0 -128..127) or all at one end of it.
std::vector<uint8_t> make_rows(TensorType t, int64_t n_in, int64_t n_out, uint32_t seed, Fill fill = Fill::Random) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  std::vector<uint8_t> out(row_size(t, n_in) * size_t(n_out));
  const int64_t nblocks = n_in / QK8_0 * n_out;
  for (int64_t i = 0; i < nblocks; ++i) {
    const fp16_t d = fp32_to_fp16(scale(rng));
    if (t == TensorType::Q4_0) {
      block_q4_0& b = reinterpret_cast<block_q4_0*>(out.data())[i];
      b.d = d;
      fill_bytes(b.qs, sizeof b.qs, fill, rng);
    } else if (t == TensorType::Q5_0) {
      block_q5_0& b = reinterpret_cast<block_q5_0*>(out.data())[i];
      b.d = d;
      fill_bytes(b.qh, sizeof b.qh, fill, rng);
      fill_bytes(b.qs, sizeof b.qs, fill, rng);
    } else if (t == TensorType::Q4_1) {
      block_q4_1& b = reinterpret_cast<block_q4_1*>(out.data())[i];
      b.d = d;
      b.m = fp32_to_fp16(-8.f * scale(rng));
      fill_bytes(b.qs, sizeof b.qs, fill, rng);
    } else if (t == TensorType::Q5_1) {
      block_q5_1& b = reinterpret_cast<block_q5_1*>(out.data())[i];
      b.d = d;
      b.m = fp32_to_fp16(-16.f * scale(rng));
      fill_bytes(b.qh, sizeof b.qh, fill, rng);
      fill_bytes(b.qs, sizeof b.qs, fill, rng);
    } else if (t == TensorType::IQ4_NL) {
      block_iq4_nl& b = reinterpret_cast<block_iq4_nl*>(out.data())[i];
      b.d = d;
      fill_bytes(b.qs, sizeof b.qs, fill, rng);
    } else {
      block_q8_0& b = reinterpret_cast<block_q8_0*>(out.data())[i];
      b.d = d;
      for (int8_t& q : b.qs) q = fill == Fill::Min ? -128 : fill == Fill::Max ? 127 : int8_t(uint8_t(rng()));
    }
  }
  return out;
}

// Bytes of row r of a Q5_0 / Q5_1 packed block not where packed.h says: scale, nibbles, and
// element 16h + 4c + e's fifth bit at bit 4h + c of byte 4r + e.
template <class Packed, class Row>
int misplaced_q5(const Packed& pb, const Row& b, int r) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  int bad = pb.d[r] != b.d;
  for (int c = 0; c < 4; ++c)
    for (int e = 0; e < 4; ++e) {
      bad += pb.q[32 * c + 4 * r + e] != b.qs[4 * c + e];
      for (int h = 0; h < 2; ++h) bad += ((pb.qh[4 * r + e] >> (4 * h + c)) & 1) != ((qh >> (16 * h + 4 * c + e)) & 1);
    }
  return bad;
}

// Every byte (and fifth bit) of the first and last row group lands where packed.h says, and unpack restores
// the rows bit for bit.
void test_layout(TensorType t, int64_t n_in, int64_t n_out) {
  const auto rows = make_rows(t, n_in, n_out, 7 + uint32_t(n_in));
  const auto p = packed_copy(t, rows, n_in, n_out);
  const size_t rb = row_size(t, n_in);
  const int64_t nb = n_in / QK8_0;
  int bad = 0;
  for (int64_t g : {int64_t(0), n_out / kPackRows - 1}) {
    for (int64_t i = 0; i < nb; ++i) {
      for (int r = 0; r < kPackRows; ++r) {
        const uint8_t* row = rows.data() + size_t(g * kPackRows + r) * rb;
        if (t == TensorType::Q4_0 || t == TensorType::IQ4_NL) {  // the same layout
          const auto& pb = reinterpret_cast<const block_q4_0x8*>(p.data())[g * nb + i];
          const auto& b = reinterpret_cast<const block_q4_0*>(row)[i];
          bad += pb.d[r] != b.d;
          for (int c = 0; c < 4; ++c)
            for (int e = 0; e < 4; ++e) bad += pb.q[32 * c + 4 * r + e] != b.qs[4 * c + e];
        } else if (t == TensorType::Q5_0) {
          bad += misplaced_q5(reinterpret_cast<const block_q5_0x8*>(p.data())[g * nb + i],
                              reinterpret_cast<const block_q5_0*>(row)[i], r);
        } else if (t == TensorType::Q5_1) {
          const auto& pb = reinterpret_cast<const block_q5_1x8*>(p.data())[g * nb + i];
          const auto& b = reinterpret_cast<const block_q5_1*>(row)[i];
          bad += misplaced_q5(pb, b, r) + (pb.m[r] != b.m);
        } else if (t == TensorType::Q4_1) {
          const auto& pb = reinterpret_cast<const block_q4_1x8*>(p.data())[g * nb + i];
          const auto& b = reinterpret_cast<const block_q4_1*>(row)[i];
          bad += pb.d[r] != b.d || pb.m[r] != b.m;
          for (int c = 0; c < 4; ++c)
            for (int e = 0; e < 4; ++e) bad += pb.q[32 * c + 4 * r + e] != b.qs[4 * c + e];
        } else {
          const auto& pb = reinterpret_cast<const block_q8_0x8*>(p.data())[g * nb + i];
          const auto& b = reinterpret_cast<const block_q8_0*>(row)[i];
          bad += pb.d[r] != b.d;
          for (int c = 0; c < 8; ++c)
            for (int e = 0; e < 4; ++e) bad += pb.q[32 * c + 4 * r + e] != uint8_t(b.qs[4 * c + e] + 128);
        }
      }
    }
  }
  CHECK_MSG(bad == 0, "%s %lldx%lld: %d packed bytes misplaced", type_traits(t).name, (long long)n_in,
            (long long)n_out, bad);
  std::vector<uint8_t> back(rows.size());
  unpack(t, p.data(), n_in, n_out, back.data());
  CHECK_MSG(back == rows, "%s %lldx%lld: unpack differs from the original", type_traits(t).name, (long long)n_in,
            (long long)n_out);
}

// Token counts checked: 1..9 (every tile size of every path, and a rest after one tile), and
// counts that need two or three tiles (balanced or not, packed_driver.h).
const std::vector<int> kTokenCounts = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 17, 19};
constexpr int kMaxTokens = 19;

void test_matmul(const KernelSet& ks) {
  for (TensorType t : kPacked) {
    for (int64_t n_in : {32, 64, 96, 896}) {
      for (int64_t n_out : {8, 16, 24, 40}) {
        const auto x = randn(size_t((n_in + 3) * kMaxTokens + kMaxTokens), uint32_t(n_in + n_out));
        check_packed_matmul(ks, t, make_rows(t, n_in, n_out, uint32_t(n_in * 100 + n_out)), n_in, n_out, x, "random",
                            kTokenCounts);
      }
    }
    // Extreme blocks against extreme activations (every quant +-127): the integer sums at
    // their largest, in both signs.
    const int64_t n_in = 896, n_out = 16;
    std::vector<float> ones((n_in + 3) * kMaxTokens + kMaxTokens, 1.f), alternating(ones.size());
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

void test_row_range_alignment() {
  const int64_t n_in = 64, n_out = 16;
  const auto rows = make_rows(TensorType::Q4_0, n_in, n_out, 1);
  const auto p = packed_copy(TensorType::Q4_0, rows, n_in, n_out);
  const WeightView w{TensorType::Q4_0, p.data(), n_in, n_out, row_size(TensorType::Q4_0, n_in), WeightLayout::Packed8};
  const auto x = randn(size_t(n_in), 2);
  PreparedActivations act;
  prepare_activations(scalar(), TensorType::Q4_0, x.data(), n_in, 1, n_in, act);
  std::vector<float> out(static_cast<size_t>(n_out));
  bool threw = false;
  try {
    matmul_rows(scalar(), w, act, 4, 12, out.data(), n_out);
  } catch (const Error& e) {
    threw = e.kind == ErrorKind::Internal;
  }
  CHECK(threw);
}

void test_packs() {
  for (const KernelSet* ks : available()) {
    // AVX-512 VNNI, AVX-VNNI and NEON dotprod pack every packed type, plain AVX2 Q4_0 only (its
    // int16 pairs would overflow on the others); the other paths (scalar, baseline NEON) pack nothing.
    const bool all = std::strcmp(ks->name, "avx512-vnni") == 0 || std::strcmp(ks->name, "avx2-vnni") == 0 ||
                     std::strcmp(ks->name, "neon-dotprod") == 0;
    const bool avx2 = std::strcmp(ks->name, "avx2") == 0;
    CHECK(packs(*ks, TensorType::Q4_0) == (all || avx2));
    for (TensorType t : kPacked)
      if (t != TensorType::Q4_0) CHECK(packs(*ks, t) == all);
    CHECK(!packs(*ks, TensorType::F16) && !packs(*ks, TensorType::BF16));
  }
}

// The AVX-512 kernels do packed_vnni.cpp's arithmetic two row groups at a time, so they give its
// bits: all token counts (8-token tiles and the rest), odd group counts (the last group goes
// through the AVX-VNNI kernel) and row ranges starting on an odd group.
void test_avx512_same_bits() {
  const KernelSet* wide = by_name("avx512-vnni");
  const KernelSet* vnni = by_name("avx2-vnni");
  if (!wide || !vnni) return;
  for (TensorType t : kPacked) {
    const int64_t n_in = 96, n_out = 40;
    const auto p = packed_copy(t, make_rows(t, n_in, n_out, 11), n_in, n_out);
    const WeightView w{t, p.data(), n_in, n_out, row_size(t, n_in), WeightLayout::Packed8};
    const auto x = randn(size_t(n_in * 19), 12);
    for (int n_tok : {1, 3, 8, 9, 19}) {
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

// repack refuses what the layout does not define, instead of reading it as Q8_0.
void test_repack_refusals() {
  std::vector<uint8_t> src(size_t(row_size(TensorType::Q8_0, 32)) * 16), dst(src.size());
  auto refused = [&](TensorType t, int64_t n_out) {
    try {
      repack(t, src.data(), 32, n_out, dst.data());
    } catch (const Error& e) {
      return e.kind == ErrorKind::Internal;
    }
    return false;
  };
  CHECK(refused(TensorType::F16, 8));
  CHECK(refused(TensorType::Q8_0, 12));
  CHECK(!refused(TensorType::Q8_0, 16));
}

}  // namespace

int main() {
  for (TensorType t : kPacked) CHECK(packable_type(t));
  CHECK(!packable_type(TensorType::F16) && !packable_type(TensorType::Q8_1) && !packable_type(TensorType::BF16));
  for (TensorType t : kPacked)
    for (int64_t n_in : {32, 96, 896}) test_layout(t, n_in, 24);
  test_packs();
  test_row_range_alignment();
  test_repack_refusals();
  test_avx512_same_bits();
  for (const KernelSet* ks : available()) {
    std::fprintf(stderr, "path %s\n", ks->name);
    test_matmul(*ks);
  }
  return el_test::test_exit_code();
}
