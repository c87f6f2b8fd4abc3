// Batched multi-LoRA (BGMV/SGMV style): y[i] += scale_i * factor(slot_i) * B_slot_i (A_slot_i x[i])
// for every token i of a batch, each with its own adapter slot (-1 = none).
//
// A plan, built once per decode batch, groups the tokens by slot and folds each token's
// scale with its slot's factor, and cuts each group into tiles of up to kLoraMaxTokens
// positions (one shrink kernel call each); every layer and module reuses it. Per projection:
//   shrink: t[k] = coeff_k * A x[token k]        split by plan position
//   expand: y[token k] += B t[k]                  split by output rows
// Both run the KernelSet's LoRA kernels on up to kLoraMaxTokens tokens of a group at a time,
// so a group's adapter is read once per few tokens; each token's result does not depend on
// which tokens share its call (same bits batched and alone).
// Tokens without a slot or with scale 0 are not in the plan: their y is left exactly as is.
#pragma once
#include <climits>
#include <cstdint>
#include <vector>

#include "../kernels/kernels.h"
#include "lora_pool.h"

namespace el::lora {

struct LoraBatchPlan {
  struct Group {
    int32_t slot;
    int begin, end;  // range of positions in `token`
  };
  std::vector<int32_t> token;  // token index in the batch, grouped by slot
  std::vector<float> coeff;    // per position: scale * slot factor
  std::vector<Group> groups;
  struct Tile {
    int begin, end;  // positions of one group, at most kernels::kLoraMaxTokens
  };
  std::vector<Tile> tiles;  // every position once, group by group
  std::vector<uint8_t> adapted;  // per batch token: 1 when it has a position here
  int n_positions() const { return int(token.size()); }
  bool empty() const { return token.empty(); }
};

// slot_per_token / scale_per_token may be null (no adapters / scale 1). Every slot named
// must be ready in `pool` and referenced by the token's sequence (LoraPool::bind_sequences).
void plan_lora_batch(const LoraPool& pool, const int32_t* slot_per_token, const float* scale_per_token, int n_tok,
                     LoraBatchPlan& plan);

// Floats of scratch the shrink/expand pair needs for n_positions plan positions: t, positions x
// padded max rank; for a Q8 or Q4 pool followed by its quantized form (int8 per rank, a scale per
// position), made once by the shrink for every expand call.
inline size_t lora_scratch_floats(const LoraPool& pool, int n_positions) {
  const size_t ld = size_t(pool.max_padded_rank());
  return size_t(n_positions) * (is_integer_pool(pool.type()) ? ld + ld / 4 + 1 : ld);
}
inline size_t lora_scratch_floats(const LoraPool& pool, const LoraBatchPlan& plan) {
  return lora_scratch_floats(pool, plan.n_positions());
}

// Blocks of one activation row for the 8-bit and 4-bit pools' shrink (ceil(n_in / 32) block_q8_0).
inline int64_t lora_input_blocks(int64_t n_in) { return (n_in + kernels::kLoraQ8Block - 1) / kernels::kLoraQ8Block; }

// For a Q8 or Q4 pool: quantizes the rows of the tokens at plan positions [k_begin, k_end) (row token *
// lora_input_blocks(n_in) of xq; zeros past n_in) once per input, for every projection that
// shares it. No-op for F16. Thread-safe for disjoint position ranges.
void lora_quantize_input(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan,
                         const float* x, int64_t x_stride, int64_t n_in, block_q8_0* xq, int k_begin = 0,
                         int k_end = INT_MAX);

// t[k * max_padded_rank + j] = coeff_k * (A_j . x[token k]) for plan positions k in
// [k_begin, k_end) and j below the slot's padded rank (t: lora_scratch_floats of the plan).
// x: activations of the batch, one row of n_in(m) floats per token, x_stride floats apart; for a
// Q8 or Q4 pool the kernels read xq instead, as lora_quantize_input wrote it.
// Thread-safe for disjoint position ranges.
void lora_shrink(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* x, int64_t x_stride, float* t, int k_begin, int k_end, const block_q8_0* xq = nullptr);

// y[token k][o] += sum_j t[k * max_padded_rank + j] * B[j][o] for o in [row_begin, row_end);
// row_begin must be a multiple of kernels::kLoraOutChunk (8).
// Thread-safe for disjoint row ranges; call after every shrink of this projection is done.
void lora_expand(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                 const float* t, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end, int k_begin = 0,
                 int k_end = INT_MAX);

// Shrink and expand over everything on the calling thread; `scratch` grows as needed.
void lora_apply(const kernels::KernelSet& ks, const LoraPool& pool, const LoraBatchPlan& plan, int layer, Module m,
                const float* x, int64_t x_stride, float* y, int64_t y_stride, std::vector<float>& scratch);

}  // namespace el::lora
