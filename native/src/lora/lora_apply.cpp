// Batched LoRA shrink / expand over the slot pool; see lora_apply.h.
#include "lora_apply.h"

#include <algorithm>
#include <type_traits>

#include "../kernels/lora_q8.h"

namespace el::lora {

void plan_lora_batch(const LoraPool& pool, const int32_t* slot_per_token, const float* scale_per_token, int n_tok,
                     LoraBatchPlan& plan) {
  plan.token.clear();
  plan.coeff.clear();
  plan.groups.clear();
  plan.tiles.clear();
  plan.adapted.assign(size_t(n_tok), 0);
  if (!slot_per_token) return;
  // Slots are few and batches short: one pass per distinct slot keeps batch order inside a group.
  for (int i = 0; i < n_tok; ++i) {
    const int32_t s = slot_per_token[i];
    if (s < 0) continue;
    bool seen = false;
    for (const auto& g : plan.groups) seen = seen || g.slot == s;
    if (seen) continue;
    LoraBatchPlan::Group g{s, plan.n_positions(), 0};
    const float factor = pool.factor(s);
    for (int k = i; k < n_tok; ++k) {
      if (slot_per_token[k] != s) continue;
      const float c = (scale_per_token ? scale_per_token[k] : 1.0f) * factor;
      if (c == 0.0f) continue;
      plan.token.push_back(k);
      plan.coeff.push_back(c);
      plan.adapted[size_t(k)] = 1;
    }
    g.end = plan.n_positions();
    if (g.end == g.begin) continue;
    plan.groups.push_back(g);
    for (int k = g.begin; k < g.end; k += kernels::kLoraMaxTokens)
      plan.tiles.push_back({k, std::min(g.end, k + kernels::kLoraMaxTokens)});
  }
}

namespace {

// Q8 and Q4 pools: position k's quantized t, after the n_pos * ld floats of t (lora_scratch_floats),
// and its scale after those. F is float (the shrink writes) or const float (the expand reads).
template <class F>
auto quantized_t(F* t, int n_pos, int ld, int k) {
  using Q = std::conditional_t<std::is_const_v<F>, const int8_t, int8_t>;
  return reinterpret_cast<Q*>(t + int64_t(n_pos) * ld) + int64_t(k) * ld;
}
template <class F>
F* quantized_t_scale(F* t, int n_pos, int ld, int k) {
  return t + int64_t(n_pos) * (ld + ld / 4) + k;
}

}  // namespace

void lora_quantize_input(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan,
                         const float* x, int64_t x_stride, int64_t n_in, block_q8_0* xq, int k_begin, int k_end) {
  if (!is_integer_pool(pool.type())) return;
  constexpr int QB = kernels::kLoraQ8Block;
  const auto quantize = ks.of(TensorType::Q8_0).from_float;
  const int64_t nb = lora_input_blocks(n_in), full = n_in / QB * QB;
  for (int k = std::max(0, k_begin); k < std::min(plan.n_positions(), k_end); ++k) {
    const int32_t tok = plan.token[size_t(k)];  // each token appears once in a plan
    const float* row = x + tok * x_stride;
    block_q8_0* out = xq + tok * nb;
    if (full > 0) quantize(row, out, full);
    if (full < n_in) {
      float tail[QB] = {};
      std::copy(row + full, row + n_in, tail);
      quantize(tail, out + full / QB, QB);
    }
  }
}

void lora_shrink(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* x, int64_t x_stride, float* t, int k_begin, int k_end, const block_q8_0* xq) {
  const int n_in = int(pool.shapes().n_in[int(m)]);
  const int64_t nb = lora_input_blocks(n_in);
  const int ld = pool.max_padded_rank();
  const float* xs[kernels::kLoraMaxTokens];
  const block_q8_0* xqs[kernels::kLoraMaxTokens];
  float* ts[kernels::kLoraMaxTokens];
  for (const auto& g : plan.groups) {
    const int b = std::max(g.begin, k_begin), e = std::min(g.end, k_end);
    if (b >= e) continue;
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.a) continue;
    for (int k0 = b; k0 < e; k0 += kernels::kLoraMaxTokens) {
      const int n = std::min(kernels::kLoraMaxTokens, e - k0);
      for (int i = 0; i < n; ++i) {
        const int32_t tok = plan.token[size_t(k0 + i)];
        xs[i] = x + tok * x_stride;
        if (xq) xqs[i] = xq + tok * nb;
        ts[i] = t + int64_t(k0 + i) * ld;
      }
      const LoraPoolTraits& traits = pool_traits(v.type);
      traits.shrink(ks, n_in, v.padded, v.a, n, xs, xqs, &plan.coeff[size_t(k0)], ts);
      if (traits.integer)
        for (int i = 0; i < n; ++i)
          *quantized_t_scale(t, plan.n_positions(), ld, k0 + i) =
              kernels::lora_q8_quantize_t(ts[i], v.padded, quantized_t(t, plan.n_positions(), ld, k0 + i));
    }
  }
}

namespace {

// Output rows per expand block (a multiple of the kernels' 8-output chunks).
constexpr int64_t kExpandBlock = 512;

}  // namespace

namespace {

// Up to kLoraMaxTokens tokens for one expand kernel call: one adapter's group (shared loads) or
// single tokens of different adapters of the same padded rank (streams read side by side).
struct ExpandCall {
  int n = 0, padded = 0;
  const uint8_t* b[kernels::kLoraMaxTokens];
  const float* t[kernels::kLoraMaxTokens];
  const int8_t* tq[kernels::kLoraMaxTokens];
  float td[kernels::kLoraMaxTokens];
  float* y[kernels::kLoraMaxTokens];

  void run(const kernels::KernelSet& ks, LoraPoolType type, int64_t o0, int64_t o1) {
    if (n == 0) return;
    pool_traits(type).expand(ks, o0, o1, padded, b, n, t, tq, td, y);
    n = 0;
  }
};

}  // namespace

void lora_expand(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* t, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end, int k_begin,
                 int k_end) {
  const int ld = pool.max_padded_rank();
  const int n_pos = plan.n_positions();
  // Every adapter's first lines of the slice at once, so that the streams start in parallel
  // rather than one cold start after another; the kernels then keep kLoraPrefetchBytes ahead.
  for (const auto& g : plan.groups) {
    if (g.end <= k_begin || g.begin >= k_end) continue;  // only the streams this call reads
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.a) continue;
    kernels::lora_prefetch(v.b + b_region_bytes(v.type, row_begin, v.padded),
                           v.b + b_region_bytes(v.type, row_end, v.padded), kernels::kLoraPrefetchBytes);
  }
  ExpandCall call, singles;  // a group's tiles; single tokens of different adapters
  auto add = [&](ExpandCall& c, const ModuleView& v, int k) {
    c.padded = v.padded;
    c.b[c.n] = v.b;
    c.t[c.n] = t + int64_t(k) * ld;
    if (is_integer_pool(v.type)) {
      c.tq[c.n] = quantized_t(t, n_pos, ld, k);
      c.td[c.n] = *quantized_t_scale(t, n_pos, ld, k);
    }
    c.y[c.n] = y + plan.token[size_t(k)] * y_stride;
    ++c.n;
  };
  for (const auto& g : plan.groups) {
    const int gb = std::max(g.begin, k_begin), ge = std::min(g.end, k_end);
    if (gb >= ge) continue;
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.a) continue;
    if (ge - gb == 1) {
      if (singles.n == kernels::kLoraMaxTokens || (singles.n > 0 && singles.padded != v.padded))
        singles.run(ks, pool.type(), row_begin, row_end);
      add(singles, v, gb);
      continue;
    }
    // Output blocks outermost: a block's B chunks stay in cache for every few tokens of the group.
    for (int64_t o = row_begin; o < row_end; o += kExpandBlock) {
      const int64_t o_end = std::min(row_end, o + kExpandBlock);
      for (int k0 = gb; k0 < ge; k0 += kernels::kLoraMaxTokens) {
        for (int k = k0; k < std::min(ge, k0 + kernels::kLoraMaxTokens); ++k) add(call, v, k);
        call.run(ks, pool.type(), o, o_end);
      }
    }
  }
  singles.run(ks, pool.type(), row_begin, row_end);
}

void lora_apply(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                const float* x, int64_t x_stride, float* y, int64_t y_stride, std::vector<float>& scratch) {
  if (plan.empty()) return;
  scratch.resize(std::max(scratch.size(), lora_scratch_floats(pool, plan)));
  const int64_t n_in = pool.shapes().n_in[int(m)];
  std::vector<block_q8_0> xq;
  if (is_integer_pool(pool.type())) {
    int32_t rows = 0;
    for (int32_t tok : plan.token) rows = std::max(rows, tok + 1);
    xq.resize(size_t(rows * lora_input_blocks(n_in)));
    lora_quantize_input(ks, pool, plan, x, x_stride, n_in, xq.data());
  }
  lora_shrink(ks, pool, plan, layer, m, x, x_stride, scratch.data(), 0, plan.n_positions(), xq.data());
  lora_expand(ks, pool, plan, layer, m, scratch.data(), y, y_stride, 0, pool.shapes().n_out[int(m)]);
}

}  // namespace el::lora
