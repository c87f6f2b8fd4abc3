// Matrix products for the model: out[t][r] = dot(W row r, activation row t).
// Activations are first converted once per batch to the weight type's vec_dot_type
// (prepare_activations); then each worker computes a range of output rows for all tokens,
// so every weight row is read once per batch, not once per token.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace el::kernels {

struct WeightView {
  TensorType type;
  const void* data;   // n_out rows of n_in elements each
  int64_t n_in;       // row length (ggml ne[0])
  int64_t n_out;      // number of rows (ggml ne[1])
  size_t row_bytes;   // row_size(type, n_in)
};

// Converted activations for one weight type: n_tok rows of `row_bytes` each, plus a float
// side array the tile kernels read instead of decoding the same values once per weight row:
//   F16 rows:  the activations (already rounded to F16) as floats, n_in per token;
//   Q8_0 rows: the block scales as floats, n_in / 32 per token.
// Other types leave it empty. Both buffers are reused across calls: they grow, never shrink.
struct PreparedActivations {
  TensorType type = TensorType::F32;
  int64_t n_in = 0;
  int n_tok = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> buffer;
  std::vector<float> f32;
  size_t f32_stride = 0;  // floats per token in f32
  const void* row(int t) const { return buffer.data() + size_t(t) * row_bytes; }
  const float* f32_row(int t) const { return f32.data() + size_t(t) * f32_stride; }
};

// Converts x (n_tok rows of n_in floats, row stride x_stride floats) into the activation
// type that weights of `wtype` pair with. F32 rows are copied.
void prepare_activations(const KernelSet& ks, TensorType wtype, const float* x, int64_t x_stride,
                         int n_tok, int64_t n_in, PreparedActivations& out);

// out[t * out_stride + r] = W[r] . act[t] for r in [row_begin, row_end), t in [0, n_tok).
// Thread-safe for disjoint row ranges.
void matmul_rows(const KernelSet& ks, const WeightView& w, const PreparedActivations& act,
                 int64_t row_begin, int64_t row_end, float* out, int64_t out_stride);

}  // namespace el::kernels
