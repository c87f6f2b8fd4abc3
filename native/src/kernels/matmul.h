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

// How a weight matrix's bytes are arranged.
enum class WeightLayout : uint8_t {
  Rows,     // GGUF: n_out rows of row_bytes each
  Packed8,  // groups of 8 interleaved rows (packed.h, packed_k.h); the packable types, n_out % 8 == 0
};

struct WeightView {
  TensorType type;
  const void* data;   // n_out rows of n_in elements each, arranged as `layout` says (Packed8: packed_bytes)
  int64_t n_in;       // row length (ggml ne[0])
  int64_t n_out;      // number of rows (ggml ne[1])
  size_t row_bytes;   // row_size(type, n_in)
  WeightLayout layout = WeightLayout::Rows;
};

// True when the path has a SIMD kernel for Packed8 weights of type t (packed.h): the model
// loader packs those. Any path can still run a packed weight (through the scalar reference).
bool packs(const KernelSet& ks, TensorType t);

// Converted activations for one weight type: n_tok rows of `row_bytes` each, plus a float
// side array the tile kernels read instead of decoding the same values once per weight row:
//   F16 rows:  the activations (already rounded to F16) as floats, n_in per token;
//   Q8_0 rows: the block scales as floats, n_in / 32 per token,
//              and in qsum the sum of each block's 32 quants (packed kernels, packed.h);
//   Q8_1 rows: the same, with the blocks' s (d x quant sum, as floats) after the scales:
//              2 x n_in / 32 floats per token.
// Other types leave them empty. The buffers are reused across calls: they grow, never shrink.
struct PreparedActivations {
  TensorType type = TensorType::F32;
  int64_t n_in = 0;
  int n_tok = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> buffer;
  std::vector<float> f32;
  size_t f32_stride = 0;  // floats per token in f32
  std::vector<int32_t> qsum;  // Q8_0: per token, n_in / 32 block sums (stride f32_stride)
  const void* row(int t) const { return buffer.data() + size_t(t) * row_bytes; }
  const float* f32_row(int t) const { return f32.data() + size_t(t) * f32_stride; }
  const int32_t* qsum_row(int t) const { return qsum.data() + size_t(t) * f32_stride; }
};

// Converts x (n_tok rows of n_in floats, row stride x_stride floats) into the activation
// type that weights of `wtype` pair with. F32 rows are copied.
void prepare_activations(const KernelSet& ks, TensorType wtype, const float* x, int64_t x_stride,
                         int n_tok, int64_t n_in, PreparedActivations& out);

// out[t * out_stride + r] = W[r] . act[t] for r in [row_begin, row_end), t in [0, n_tok).
// Thread-safe for disjoint row ranges. For a Packed8 weight both ends are multiples of 8.
void matmul_rows(const KernelSet& ks, const WeightView& w, const PreparedActivations& act,
                 int64_t row_begin, int64_t row_end, float* out, int64_t out_stride);

}  // namespace el::kernels
