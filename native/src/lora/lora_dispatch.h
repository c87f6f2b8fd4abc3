// Batched LoRA inside the forward pass's projection dispatches. The forward pass computes the
// base rows of a group of projections that read one input (q/k/v, gate/up, ...) in chunks of
// row items spread over threads (ThreadPool::parallel_for); this adds the adapters' deltas
// y_r += scale_r * factor * B (A x_r) for each batch row with an adapter, in the same dispatch:
//
//   phase one (every chunk): claim LoRA shrink tiles (t = coeff * A x, a plan tile at a time)
//     until none is left, then compute the chunk's base rows, then count them done toward the
//     chunk's range (ThreadPool: one range of items per thread);
//   phase two (each thread, once every shrink is done): the expands (y += B t) of whichever
//     range has all its base rows done, this thread's own range first (the outputs it adds
//     to are still in its cache), a plan tile over a whole range per claim.
//
// BatchLora owns the slot pool and what lives across a batch (the plan, the shrink results);
// a Dispatch is one projection group's shared counters, on the caller's stack.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "../kernels/kernels.h"
#include "lora_apply.h"
#include "lora_pool.h"
#include "lora_shapes.h"

namespace el::lora {

// One projection of a dispatch: its output rows (n_out floats per batch token) and where its
// row items start among the dispatch's items (items of row_align rows, laid end to end).
struct DispatchTarget {
  Module m;
  float* out;
  int64_t n_out;
  int64_t first_item;
};

// Runs on the rows [r0, r1) of the first target for batch token `token` once its expands are
// added (a fused activation such as silu(gate) * up).
using RowsHook = void (*)(const void* ctx, int token, int64_t r0, int64_t r1);

class BatchLora {
 public:
  // Scratch for n_batch_max tokens and n_threads ranges; throws el::Error on bad pool settings.
  BatchLora(const kernels::KernelSet& ks, const ModelShapes& shapes, int slots, int max_rank, LoraPoolType type,
            size_t n_batch_max, int n_threads);

  LoraPool& pool() { return pool_; }
  // Once per batch, after validation: groups the batch's tokens by slot.
  void plan(const int32_t* slot_per_token, const float* scale_per_token, int n_tokens);
  bool active() const { return !plan_.empty(); }
  bool adapted(int token) const { return plan_.adapted[size_t(token)] != 0; }

  class Dispatch;

 private:
  friend class Dispatch;
  struct alignas(64) RangeExpands {
    std::atomic<int64_t> done{0};  // row items of the range whose base rows are computed
    std::atomic<int> next{0};      // plan tiles claimed for the range's expands
  };
  const kernels::KernelSet& ks_;
  LoraPool pool_;
  LoraBatchPlan plan_;
  std::unique_ptr<RangeExpands[]> ranges_;
  std::vector<float> t_[kNumModules];  // shrink results per module (plan positions x padded rank)
  std::vector<block_q8_0> xq_;         // Q8 and Q4 pools: the shrink's quantized input rows
};

class BatchLora::Dispatch {
 public:
  // `lora` null (or with an empty plan): every call is a no-op. The targets (at most
  // kMaxTargets) all read `x` (n_rows x n_in floats); `base_q8`, when not null, is the same
  // rows already quantized to Q8_0 for the base product, which the 8-bit pools' shrinks reuse.
  // The dispatch is n_items row items of row_align rows in n_ranges ranges (ThreadPool::ranges).
  static constexpr int kMaxTargets = 3;
  Dispatch(BatchLora* lora, int layer, const DispatchTarget* targets, int n_targets, const float* x, int64_t n_in,
           const block_q8_0* base_q8, int64_t n_items, int n_ranges, int row_align, RowsHook after = nullptr,
           const void* after_ctx = nullptr);

  bool active() const { return n_tiles_ > 0; }
  // Phase one, at the start of every chunk: shrink tiles until none is left.
  void shrink_tiles();
  // Phase one, at the end of a chunk: its items' base rows are done.
  void rows_done(int64_t i0, int64_t i1);
  // Phase two, on each thread once it has no chunk left: every expand, then `after`.
  void expands(int ith);

 private:
  int64_t range_begin(int r) const;
  void expand(int r, int tile);

  BatchLora* lora_;
  int layer_;
  const DispatchTarget* targets_;
  int n_targets_;
  const float* x_;
  int64_t n_in_;
  const block_q8_0* xq_;
  bool own_xq_;
  int64_t n_items_;
  int n_ranges_;
  int row_align_;
  RowsHook after_;
  const void* after_ctx_;
  int n_tiles_ = 0;
  struct alignas(64) Counter {
    std::atomic<int64_t> v{0};
  };
  Counter tile_next_, tiles_done_;
};

}  // namespace el::lora
