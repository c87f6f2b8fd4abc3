// Shared by test_packed and test_packed_k: the repacked copy of GGUF rows, random activations,
// and the check of a packed matmul against the scalar reference's vec_dot over the GGUF rows.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "check.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"

namespace el_test {

inline std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<uint8_t> packed_copy(el::TensorType t, const std::vector<uint8_t>& rows, int64_t n_in,
                                        int64_t n_out) {
  std::vector<uint8_t> p(el::kernels::packed_bytes(t, n_in, n_out));
  el::kernels::repack(t, rows.data(), n_in, n_out, p.data());
  return p;
}

// matmul_rows of path `ks` over the packed copy of `rows`, for each token count and several
// aligned row ranges, against the scalar vec_dot of each GGUF row; rows outside a range must
// stay untouched. x_all holds (n_in + 3) * max(token_counts) + max(token_counts) floats: each
// token count reads its own window of it.
inline void check_packed_matmul(const el::kernels::KernelSet& ks, el::TensorType t, const std::vector<uint8_t>& rows,
                                int64_t n_in, int64_t n_out, const std::vector<float>& x_all, const char* what,
                                const std::vector<int>& token_counts) {
  using namespace el;
  using namespace el::kernels;
  const KernelSet& ref = scalar();
  const auto p = packed_copy(t, rows, n_in, n_out);
  const WeightView w{t, p.data(), n_in, n_out, row_size(t, n_in), WeightLayout::Packed8};
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, n_out}, {n_out - 8, n_out}};
  if (n_out >= 16) ranges.push_back({8, 16});
  if (n_out >= 24) ranges.push_back({8, n_out - 8});
  for (int n_tok : token_counts) {
    const int64_t x_stride = n_in + 3;
    const float* x = x_all.data() + (n_tok - 1);  // a different window of x per token count
    PreparedActivations act_ref, act;
    prepare_activations(ref, t, x, x_stride, n_tok, n_in, act_ref);
    prepare_activations(ks, t, x, x_stride, n_tok, n_in, act);
    for (auto [r0, r1] : ranges) {
      const int64_t out_stride = n_out + 1;
      const float sentinel = -12345.f;
      std::vector<float> out(size_t(out_stride * n_tok), sentinel);
      matmul_rows(ks, w, act, r0, r1, out.data(), out_stride);
      int bad = 0, touched = 0;
      for (int tk = 0; tk < n_tok; ++tk) {
        for (int64_t r = 0; r < out_stride; ++r) {
          const float got = out[size_t(tk * out_stride + r)];
          if (r < r0 || r >= r1) {
            touched += got != sentinel;
            continue;
          }
          float want = 0;
          ref.of(t).vec_dot(int(n_in), &want, rows.data() + r * row_size(t, n_in), act_ref.row(tk));
          bad += !(std::fabs(got - want) <= 1e-4f * (std::fabs(want) + 1.f));
        }
      }
      CHECK_MSG(bad == 0 && touched == 0, "%s packed %s %s %lldx%lld n_tok=%d rows [%lld,%lld): %d wrong, %d outside",
                ks.name, type_traits(t).name, what, (long long)n_in, (long long)n_out, n_tok, (long long)r0,
                (long long)r1, bad, touched);
    }
  }
}

}  // namespace el_test
