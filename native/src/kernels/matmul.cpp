// Batched matrix-vector products over a range of weight rows. One token: a streaming GEMV.
// Several: cache-tiled so each weight row comes from memory once per batch and is reused
// from cache for every token; where the path has a rows x tokens tile kernel, each weight
// vector is also decoded once per register tile of tokens instead of once per token.
#include "matmul.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "../error.h"
#include "packed.h"
#include "paths.h"

namespace el::kernels {
namespace {

constexpr size_t kRowTileBytes = 64 * 1024;   // weight rows kept hot in L2 per tile
constexpr size_t kTokTileBytes = 256 * 1024;  // activation rows kept hot in L2 per tile
constexpr int64_t kMinRowTile = 12;           // whole register tiles of 2, 3, 4 or 6 rows
constexpr int64_t kMaxRowTile = 48;

// The side arrays of Q8_0 / Q8_1 rows (see matmul.h).
template <class B>
void prepare_blocks(PreparedActivations& a) {
  constexpr bool kS = std::is_same_v<B, block_q8_1>;
  const int64_t nb = a.n_in / QK8_0;
  a.f32_stride = size_t(kS ? 2 * nb : nb);
  if (a.f32.size() < a.f32_stride * size_t(a.n_tok)) a.f32.resize(a.f32_stride * size_t(a.n_tok));
  if (a.qsum.size() < a.f32.size()) a.qsum.resize(a.f32.size());
  for (int t = 0; t < a.n_tok; ++t) {
    const B* b = static_cast<const B*>(a.row(t));
    float* d = a.f32.data() + size_t(t) * a.f32_stride;
    int32_t* q = a.qsum.data() + size_t(t) * a.f32_stride;
    for (int64_t i = 0; i < nb; ++i) {
      d[i] = fp16_to_fp32(b[i].d);
      if constexpr (kS) d[nb + i] = fp16_to_fp32(b[i].s);
      int32_t s = 0;
      for (int j = 0; j < QK8_0; ++j) s += b[i].qs[j];
      q[i] = s;
    }
  }
}

// The float side array of PreparedActivations (see matmul.h).
void prepare_side(const KernelSet& ks, PreparedActivations& a) {
  if (a.type == TensorType::F16) {
    a.f32_stride = size_t(a.n_in);
    if (a.f32.size() < a.f32_stride * size_t(a.n_tok)) a.f32.resize(a.f32_stride * size_t(a.n_tok));
    ks.of(TensorType::F16).to_float(a.buffer.data(), a.f32.data(), a.n_in * a.n_tok);
  } else if (a.type == TensorType::Q8_0) {
    prepare_blocks<block_q8_0>(a);
  } else if (a.type == TensorType::Q8_1) {
    prepare_blocks<block_q8_1>(a);
  } else {
    a.f32_stride = 0;
  }
}

// Calls compute(u0, u1, t0, t1) over units [begin, end) (rows, or packed row groups) x the
// tokens, in cache tiles: tokens outer, so a tile of activations (tok_bytes each) stays in L2
// while `unit_tile` units of weights at a time go by.
template <class F>
void for_each_cache_tile(int64_t begin, int64_t end, int64_t unit_tile, int n_tok, size_t tok_bytes, F&& compute) {
  const int tok_tile = int(std::max<size_t>(1, kTokTileBytes / std::max<size_t>(tok_bytes, 1)));
  for (int t0 = 0; t0 < n_tok; t0 += tok_tile) {
    const int t1 = std::min(n_tok, t0 + tok_tile);
    for (int64_t u0 = begin; u0 < end; u0 += unit_tile) compute(u0, std::min(end, u0 + unit_tile), t0, t1);
  }
}

// matmul_rows on a Packed8 weight: the path's packed kernel, else the scalar reference.
// Decode streams over all row groups at once; a batch is cut into cache tiles as below.
void matmul_packed(const KernelSet& ks, const WeightView& w, const PreparedActivations& act, int64_t row_begin,
                   int64_t row_end, float* out, int64_t out_stride) {
  if (row_begin % kPackRows != 0 || row_end % kPackRows != 0)
    fail(ErrorKind::Internal, "packed matmul over rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
                                  "): the ends must be multiples of 8");
  const PackedMatmulFn fn = ks.of(w.type).packed;
  const int n = int(w.n_in);
  const size_t gb = packed_bytes(w.type, w.n_in, kPackRows);  // bytes per row group
  const uint8_t* wdata = static_cast<const uint8_t*>(w.data);
  // Groups [g0, g1) x tokens [t0, t1).
  auto compute = [&](int64_t g0, int64_t g1, int t0, int t1) {
    const uint8_t* wg = wdata + size_t(g0) * gb;
    float* o = out + t0 * out_stride + g0 * kPackRows;
    if (fn) fn(n, wg, g1 - g0, act, t0, t1 - t0, o, out_stride);
    else packed_matmul_ref(w.type, n, wg, g1 - g0, act, t0, t1 - t0, o, out_stride);
  };
  const int64_t gbegin = row_begin / kPackRows, gend = row_end / kPackRows;
  if (act.n_tok == 1) return compute(gbegin, gend, 0, 1);

  const int64_t group_tile = std::max<int64_t>(1, int64_t(kRowTileBytes / gb));
  const size_t tok_bytes = act.row_bytes + act.f32_stride * (sizeof(float) + sizeof(int32_t));
  for_each_cache_tile(gbegin, gend, group_tile, act.n_tok, tok_bytes, compute);
}

}  // namespace

void prepare_activations(const KernelSet& ks, TensorType wtype, const float* x, int64_t x_stride,
                         int n_tok, int64_t n_in, PreparedActivations& out) {
  const TensorType at = type_traits(wtype).vec_dot_type;
  out.type = at;
  out.n_in = n_in;
  out.n_tok = n_tok;
  out.row_bytes = row_size(at, n_in);
  const size_t need = out.row_bytes * size_t(n_tok);
  if (out.buffer.size() < need) out.buffer.resize(need);
  const FromFloatFn from = ks.of(at).from_float;
  for (int t = 0; t < n_tok; ++t) from(x + t * x_stride, out.buffer.data() + t * out.row_bytes, n_in);
  prepare_side(ks, out);
}

void matmul_rows(const KernelSet& ks, const WeightView& w, const PreparedActivations& act,
                 int64_t row_begin, int64_t row_end, float* out, int64_t out_stride) {
  if (w.layout == WeightLayout::Packed8) return matmul_packed(ks, w, act, row_begin, row_end, out, out_stride);
  const VecDotFn dot = ks.of(w.type).vec_dot;
  const TileDotFn tile = ks.of(w.type).tile;
  const int n = int(w.n_in);
  const size_t rb = w.row_bytes;
  const uint8_t* wdata = static_cast<const uint8_t*>(w.data);

  // Decode: a streaming GEMV, one row at a time. One sequential stream is what the hardware
  // prefetcher follows best; measured from DRAM, several rows at once were not faster.
  if (act.n_tok == 1) {
    const void* a = act.row(0);
    for (int64_t r = row_begin; r < row_end; ++r) dot(n, out + r, wdata + r * rb, a);
    return;
  }

  // Rows [r0, r1) x tokens [t0, t1).
  auto compute = [&](int64_t r0, int64_t r1, int t0, int t1) {
    if (tile) {
      tile(n, wdata + r0 * rb, rb, int(r1 - r0), act, t0, t1 - t0, out + t0 * out_stride + r0, out_stride);
      return;
    }
    for (int t = t0; t < t1; ++t)
      for (int64_t r = r0; r < r1; ++r) dot(n, out + t * out_stride + r, wdata + r * rb, act.row(t));
  };

  const int64_t by_bytes = int64_t(kRowTileBytes / std::max<size_t>(rb, 1)) / kMinRowTile * kMinRowTile;
  const int64_t row_tile = std::clamp<int64_t>(by_bytes, kMinRowTile, kMaxRowTile);
  const size_t tok_bytes = act.row_bytes + act.f32_stride * sizeof(float);
  for_each_cache_tile(row_begin, row_end, row_tile, act.n_tok, tok_bytes, compute);
}

}  // namespace el::kernels
