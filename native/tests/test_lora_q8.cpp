// The 8-bit and 4-bit LoRA pool kernels (kernels.h: lora_shrink_q8 / lora_expand_q8 and the
// q4 pair; layouts in kernels/lora_q8.h), each layout in turn: the layout writers round-trip,
// the scalar reference computes what the layout means (against float math, within the
// quantization error), and every SIMD path gives the scalar reference's bits on ranks 8..64,
// ragged input sizes, 1..4 tokens and split output ranges with ragged ends.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/kernels.h"
#include "kernels/lora_q8.h"

using namespace el::kernels;
using el::block_q8_0;

namespace {

// One pool layout (kernels/lora_q8.h: its writers, readers, sizes and kernels), named, with
// its quantization levels on each side of zero: 127 (8-bit), 8 (4-bit).
struct Layout {
  const char* name;
  int levels;
  void (*put_a_row)(uint8_t* a, int64_t n_in, int R, int j, const float* row);
  void (*put_b_row)(uint8_t* b, int R, int64_t o, const float* row, int r);
  float (*a_value)(const uint8_t* a, int R, int j, int64_t i);
  float (*b_value)(const uint8_t* b, int R, int64_t o, int j);
  int64_t (*a_bytes)(int64_t n_in, int R);
  int64_t (*b_bytes)(int64_t n_out, int R);
  decltype(KernelSet::lora_shrink_q8) KernelSet::*shrink;
  decltype(KernelSet::lora_expand_q8) KernelSet::*expand;
};

const Layout kQ8{"8-bit", 127, lora_q8_put_a_row, lora_q8_put_b_row, lora_q8_a_value, lora_q8_b_value,
                 lora_q8_a_bytes, lora_q8_b_bytes, &KernelSet::lora_shrink_q8, &KernelSet::lora_expand_q8};
const Layout kQ4{"4-bit", 8, lora_q4_put_a_row, lora_q4_put_b_row, lora_q4_a_value, lora_q4_b_value,
                 lora_q4_a_bytes, lora_q4_b_bytes, &KernelSet::lora_shrink_q4, &KernelSet::lora_expand_q4};

struct Case {
  int64_t n_in, n_out;
  int rank, R;  // rank of the data, padded rank of the layout
  std::vector<float> a, b;  // a: rank x n_in, b: n_out x rank
  std::vector<uint8_t> qa, qb;
};

Case make_case(const Layout& L, int64_t n_in, int64_t n_out, int rank, uint32_t seed) {
  Case c{n_in, n_out, rank, (rank + kLoraRankStep - 1) / kLoraRankStep * kLoraRankStep, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  c.a.resize(size_t(rank * n_in));
  c.b.resize(size_t(n_out * rank));
  for (auto& v : c.a) v = nd(rng) * 0.05f;
  for (auto& v : c.b) v = nd(rng) * 0.02f;
  c.a[0] = 0.9f;  // one large value per matrix: a block whose other values quantize coarsely
  c.b[size_t(rank)] = -0.7f;
  c.qa.assign(size_t(L.a_bytes(n_in, c.R)), 0);
  c.qb.assign(size_t(L.b_bytes(n_out, c.R)), 0);
  for (int j = 0; j < rank; ++j) L.put_a_row(c.qa.data(), n_in, c.R, j, &c.a[size_t(j * n_in)]);
  for (int64_t o = 0; o < n_out; ++o) L.put_b_row(c.qb.data(), c.R, o, &c.b[size_t(o * rank)], rank);
  return c;
}

// Activation rows quantized as the engine does: Q8_0 blocks, zeros past n_in.
std::vector<block_q8_0> quantize_rows(const std::vector<float>& x, int n_tok, int64_t n_in) {
  const int64_t nb = (n_in + kLoraQ8Block - 1) / kLoraQ8Block;
  std::vector<block_q8_0> q(size_t(n_tok * nb));
  std::vector<float> row(size_t(nb * kLoraQ8Block));
  for (int k = 0; k < n_tok; ++k) {
    std::fill(row.begin(), row.end(), 0.0f);
    std::copy_n(&x[size_t(k * n_in)], n_in, row.begin());
    scalar().of(el::TensorType::Q8_0).from_float(row.data(), &q[size_t(k * nb)], nb * kLoraQ8Block);
  }
  return q;
}

void test_layout_round_trip(const Layout& L) {
  const Case c = make_case(L, 70, 19, 5, 1);  // ragged inputs (3 blocks), ragged outputs, padded rank 8
  const float lv = float(L.levels);
  for (int j = 0; j < c.R; ++j)
    for (int64_t i = 0; i < c.n_in; ++i) {
      const float want = j < c.rank ? c.a[size_t(j * c.n_in + i)] : 0.0f;
      const float got = L.a_value(c.qa.data(), c.R, j, i);
      // Within half a quantization step of the block (amax / levels / 2), plus the fp16 scale rounding.
      CHECK_MSG(std::fabs(got - want) <= 0.9f / lv * 0.51f + 1e-6f, "%s A(%d,%lld) %g vs %g", L.name, j,
                (long long)i, got, want);
    }
  for (int64_t o = 0; o < 24; ++o)  // through the padded chunk
    for (int j = 0; j < c.R; ++j) {
      const float want = o < c.n_out && j < c.rank ? c.b[size_t(o * c.rank + j)] : 0.0f;
      // A 4-bit B row's padding ranks hold nibble 0 (-8 d): the expand multiplies them by t's
      // zeros there, so only the ranks of the data are values.
      if (L.levels == 8 && o < c.n_out && j >= c.rank) continue;
      CHECK_MSG(std::fabs(L.b_value(c.qb.data(), c.R, o, j) - want) <= 0.7f / lv * 0.51f + 1e-6f, "%s B(%lld,%d)",
                L.name, (long long)o, j);
    }
}

// The scalar reference against double math on what the layouts hold: the stored weights, the
// quantized activations and the quantized t (lora_q8_quantize_t). Only float rounding remains.
void test_reference_meaning(const Layout& L) {
  const Case c = make_case(L, 96, 40, 12, 2);
  const int n_tok = 3;
  const int64_t nb = (c.n_in + 31) / 32;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> x(size_t(n_tok * c.n_in));
  for (auto& v : x) v = ud(rng);
  const std::vector<block_q8_0> xq = quantize_rows(x, n_tok, c.n_in);
  const float coeff[n_tok] = {1.0f, -0.5f, 2.0f};
  std::vector<float> t(size_t(n_tok * c.R), -99.0f), y(size_t(n_tok * c.n_out));
  const block_q8_0* xs[n_tok];
  float* ts[n_tok];
  float* ys[n_tok];
  for (int k = 0; k < n_tok; ++k) {
    xs[k] = &xq[size_t(k * nb)];
    ts[k] = &t[size_t(k * c.R)];
    ys[k] = &y[size_t(k * c.n_out)];
    for (int64_t o = 0; o < c.n_out; ++o) ys[k][o] = 0.25f * float(o % 5);
  }
  (scalar().*L.shrink)(int(c.n_in), c.R, c.qa.data(), n_tok, xs, coeff, ts);
  for (int k = 0; k < n_tok; ++k)
    for (int j = 0; j < c.R; ++j) {
      double want = 0, mag = 0;
      for (int64_t i = 0; i < c.n_in; ++i) {
        const block_q8_0& blk = xs[k][i / 32];
        const double p = double(L.a_value(c.qa.data(), c.R, j, i)) * el::fp16_to_fp32(blk.d) * blk.qs[i % 32];
        want += p;
        mag += std::fabs(p);
      }
      want *= coeff[k];
      CHECK_MSG(std::fabs(ts[k][j] - want) <= 1e-6 * mag * std::fabs(coeff[k]) + 1e-9,
                "shrink token %d rank %d: %.9g vs %.9g", k, j, ts[k][j], want);
      if (j >= c.rank) CHECK(ts[k][j] == 0.0f);
    }
  const std::vector<float> y0 = y;
  std::vector<int8_t> tqv(size_t(n_tok * c.R));
  const int8_t* tqs[n_tok];
  float tds[n_tok];
  for (int k = 0; k < n_tok; ++k) {
    tds[k] = lora_q8_quantize_t(ts[k], c.R, &tqv[size_t(k * c.R)]);
    tqs[k] = &tqv[size_t(k * c.R)];
  }
  const uint8_t* bs[n_tok] = {c.qb.data(), c.qb.data(), c.qb.data()};
  (scalar().*L.expand)(0, c.n_out, c.R, bs, n_tok, tqs, tds, ys);
  for (int k = 0; k < n_tok; ++k) {
    const int8_t* tq = tqs[k];
    const double dt = tds[k];
    for (int64_t o = 0; o < c.n_out; ++o) {
      double sum = 0, mag = std::fabs(y0[size_t(k * c.n_out + o)]);
      for (int j = 0; j < c.R; ++j) {
        const double p = double(L.b_value(c.qb.data(), c.R, o, j)) * dt * tq[j];
        sum += p;
        mag += std::fabs(p);
      }
      const double want = y0[size_t(k * c.n_out + o)] + sum;
      CHECK_MSG(std::fabs(ys[k][o] - want) <= 1e-6 * mag + 1e-9, "expand token %d out %lld: %.9g vs %.9g", k,
                (long long)o, ys[k][o], want);
    }
    // And t's quantization itself is within half a step of t.
    for (int j = 0; j < c.R; ++j) CHECK(std::fabs(dt * tq[j] - ts[k][j]) <= dt * 0.5 + 1e-9);
  }
}

// Every path, the scalar reference's bits: tokens sharing one adapter's B, and tokens each with
// its own B (the kernels' two ways through expand).
void test_paths_same_bits(const Layout& L) {
  struct Shape {
    int64_t n_in, n_out;
    int rank;
  };
  const Shape shapes[] = {{32, 8, 8}, {40, 19, 5}, {96, 64, 16}, {896, 136, 16}, {200, 77, 24}, {64, 48, 64}};
  uint32_t seed = 10;
  for (const Shape& sh : shapes) {
    const Case c = make_case(L, sh.n_in, sh.n_out, sh.rank, seed++);
    std::vector<Case> others;  // B of tokens 1..3 when each token has its own adapter
    for (int k = 1; k < kLoraMaxTokens; ++k) others.push_back(make_case(L, sh.n_in, sh.n_out, sh.rank, seed++));
    for (int variant = 0; variant < 2 * kLoraMaxTokens; ++variant) {
      const int n_tok = variant % kLoraMaxTokens + 1;
      const bool own_b = variant >= kLoraMaxTokens;
      std::mt19937 rng(seed++);
      std::uniform_real_distribution<float> ud(-2.0f, 2.0f);
      std::vector<float> x(size_t(n_tok * c.n_in));
      for (auto& v : x) v = ud(rng);
      const std::vector<block_q8_0> xq = quantize_rows(x, n_tok, c.n_in);
      const int64_t nb = (c.n_in + 31) / 32;
      const float coeff[kLoraMaxTokens] = {1.0f, 0.5f, -3.0f, 0.125f};
      auto run = [&](const KernelSet& ks, const std::vector<int64_t>& cuts) {
        std::vector<float> t(size_t(n_tok * c.R)), y(size_t(n_tok * c.n_out));
        const block_q8_0* xs[kLoraMaxTokens];
        float* ts[kLoraMaxTokens];
        float* ys[kLoraMaxTokens];
        for (int k = 0; k < n_tok; ++k) {
          xs[k] = &xq[size_t(k * nb)];
          ts[k] = &t[size_t(k * c.R)];
          ys[k] = &y[size_t(k * c.n_out)];
          for (int64_t o = 0; o < c.n_out; ++o) ys[k][o] = 0.01f * float((o * 7 + k) % 13) - 0.05f;
        }
        (ks.*L.shrink)(int(c.n_in), c.R, c.qa.data(), n_tok, xs, coeff, ts);
        std::vector<int8_t> tqv(size_t(n_tok * c.R));
        const int8_t* tqs[kLoraMaxTokens];
        float tds[kLoraMaxTokens];
        for (int k = 0; k < n_tok; ++k) {
          tds[k] = lora_q8_quantize_t(ts[k], c.R, &tqv[size_t(k * c.R)]);
          tqs[k] = &tqv[size_t(k * c.R)];
        }
        const uint8_t* bs[kLoraMaxTokens];
        for (int k = 0; k < n_tok; ++k) bs[k] = own_b && k > 0 ? others[size_t(k - 1)].qb.data() : c.qb.data();
        for (size_t i = 0; i + 1 < cuts.size(); ++i)
          (ks.*L.expand)(cuts[i], cuts[i + 1], c.R, bs, n_tok, tqs, tds, ys);
        t.insert(t.end(), y.begin(), y.end());
        return t;
      };
      const std::vector<float> ref = run(scalar(), {0, c.n_out});
      for (const KernelSet* ks : available()) {
        CHECK_MSG(ks->*L.shrink && ks->*L.expand, "path %s has no %s LoRA kernels", ks->name, L.name);
        std::vector<int64_t> cuts{0, c.n_out};
        for (int64_t cut : {int64_t(8), (c.n_out / 2) / 8 * 8, int64_t(40)})
          if (cut > 0 && cut < c.n_out) cuts.push_back(cut);
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        const std::vector<float> got = run(*ks, cuts);
        CHECK_MSG(std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)) == 0,
                  "%s path %s, n_in %lld n_out %lld rank %d, %d token(s)%s: bits differ from the scalar reference",
                  L.name, ks->name, (long long)c.n_in, (long long)c.n_out, c.rank, n_tok, own_b ? " with own B" : "");
      }
    }
  }
}

}  // namespace

int main() {
  for (const Layout* L : {&kQ8, &kQ4}) {
    test_layout_round_trip(*L);
    test_reference_meaning(*L);
    test_paths_same_bits(*L);
  }
  return el_test::test_exit_code();
}
