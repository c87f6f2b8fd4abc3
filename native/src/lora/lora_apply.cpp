// Batched LoRA shrink / expand over the slot pool; see lora_apply.h.
#include "lora_apply.h"

#include <algorithm>

namespace el::lora {

void plan_lora_batch(const LoraPool& pool, const int32_t* slot_per_token, const float* scale_per_token, int n_tok,
                     LoraBatchPlan& plan) {
  plan.token.clear();
  plan.coeff.clear();
  plan.groups.clear();
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
    }
    g.end = plan.n_positions();
    if (g.end > g.begin) plan.groups.push_back(g);
  }
}

void lora_shrink(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* x, int64_t x_stride, float* t, int k_begin, int k_end) {
  const int n_in = int(pool.shapes().n_in[int(m)]);
  const int ld = pool.max_padded_rank();
  const float* xs[kernels::kLoraMaxTokens];
  float* ts[kernels::kLoraMaxTokens];
  for (const auto& g : plan.groups) {
    const int b = std::max(g.begin, k_begin), e = std::min(g.end, k_end);
    if (b >= e) continue;
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.at) continue;
    for (int k0 = b; k0 < e; k0 += kernels::kLoraMaxTokens) {
      const int n = std::min(kernels::kLoraMaxTokens, e - k0);
      for (int i = 0; i < n; ++i) {
        xs[i] = x + plan.token[size_t(k0 + i)] * x_stride;
        ts[i] = t + int64_t(k0 + i) * ld;
      }
      ks.lora_shrink_f16(n_in, v.padded, v.at, n, xs, &plan.coeff[size_t(k0)], ts);
    }
  }
}

namespace {

// Output rows per expand block (a multiple of the kernels' 8-output chunks).
constexpr int64_t kExpandBlock = 512;

}  // namespace

void lora_expand(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* t, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const int ld = pool.max_padded_rank();
  const float* ts[kernels::kLoraMaxTokens];
  float* ys[kernels::kLoraMaxTokens];
  for (const auto& g : plan.groups) {
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.at) continue;
    // Output blocks outermost: a block's B chunks stay in cache for every few tokens of a big group.
    for (int64_t o = row_begin; o < row_end; o += kExpandBlock) {
      const int64_t o_end = std::min(row_end, o + kExpandBlock);
      for (int k0 = g.begin; k0 < g.end; k0 += kernels::kLoraMaxTokens) {
        const int n = std::min(kernels::kLoraMaxTokens, g.end - k0);
        for (int i = 0; i < n; ++i) {
          ts[i] = t + int64_t(k0 + i) * ld;
          ys[i] = y + plan.token[size_t(k0 + i)] * y_stride;
        }
        ks.lora_expand_f16(o, o_end, v.padded, v.b, n, ts, ys);
      }
    }
  }
}

void lora_apply(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                const float* x, int64_t x_stride, float* y, int64_t y_stride, std::vector<float>& scratch) {
  if (plan.empty()) return;
  scratch.resize(std::max(scratch.size(), lora_scratch_floats(pool, plan)));
  lora_shrink(ks, pool, plan, layer, m, x, x_stride, scratch.data(), 0, plan.n_positions());
  lora_expand(ks, pool, plan, layer, m, scratch.data(), y, y_stride, 0, pool.shapes().n_out[int(m)]);
}

}  // namespace el::lora
