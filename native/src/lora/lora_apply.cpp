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
  const int max_rank = pool.max_rank();
  for (const auto& g : plan.groups) {
    const int b = std::max(g.begin, k_begin), e = std::min(g.end, k_end);
    if (b >= e) continue;
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.a) continue;
    // Row j of A stays in cache across the group's tokens.
    for (int j = 0; j < v.rank; ++j) {
      const fp16_t* a = v.a + int64_t(j) * n_in;
      for (int k = b; k < e; ++k)
        t[int64_t(k) * max_rank + j] = plan.coeff[k] * ks.dot_f16_f32(n_in, a, x + plan.token[k] * x_stride);
    }
  }
}

namespace {

// Output rows per expand block. A group's y rows and Bt slices for one block (8 tokens at
// rank 16: 16 KiB each) stay in the nearest caches across the rank's axpys; unblocked, each of
// the r passes streamed the whole y slice of every token again. A multiple of every path's vector
// width (8 floats on AVX2, 4 on NEON), so each element goes through the same vector or tail
// code as in one call over the whole range and keeps its bits.
constexpr int64_t kExpandBlock = 512;

}  // namespace

void lora_expand(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* t, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const int64_t n_out = pool.shapes().n_out[int(m)];
  const int max_rank = pool.max_rank();
  for (const auto& g : plan.groups) {
    const ModuleView v = pool.view(g.slot, layer, m);
    if (!v.a) continue;
    for (int64_t o = row_begin; o < row_end; o += kExpandBlock) {
      const int n = int(std::min(kExpandBlock, row_end - o));
      for (int j = 0; j < v.rank; ++j) {
        const fp16_t* bt = v.bt + int64_t(j) * n_out + o;
        for (int k = g.begin; k < g.end; ++k)
          ks.axpy_f16(n, t[int64_t(k) * max_rank + j], bt, y + plan.token[k] * y_stride + o);
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
