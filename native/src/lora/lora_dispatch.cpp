// Batched LoRA inside a projection dispatch (lora_dispatch.h).
#include "lora_dispatch.h"

#include <algorithm>

#include "../error.h"
#include "../threadpool.h"

namespace el::lora {

BatchLora::BatchLora(const kernels::KernelSet& ks, const ModelShapes& shapes, int slots, int max_rank,
                     LoraPoolType type, size_t n_batch_max, int n_threads)
    : ks_(ks), pool_(shapes, slots, max_rank, type) {
  for (auto& t : t_) t.resize(lora_scratch_floats(pool_, int(n_batch_max)));
  if (is_integer_pool(type)) {
    int64_t widest = 0;
    for (int64_t n : shapes.n_in) widest = std::max(widest, n);
    xq_.resize(n_batch_max * size_t(lora_input_blocks(widest)));
  }
  plan_.token.reserve(n_batch_max);
  plan_.coeff.reserve(n_batch_max);
  plan_.groups.reserve(n_batch_max);
  plan_.tiles.reserve(n_batch_max);
  plan_.adapted.reserve(n_batch_max);
  ranges_.reset(new RangeExpands[size_t(n_threads)]);
}

void BatchLora::plan(const int32_t* slot_per_token, const float* scale_per_token, int n_tokens) {
  plan_lora_batch(pool_, slot_per_token, scale_per_token, n_tokens, plan_);
}

BatchLora::Dispatch::Dispatch(BatchLora* lora, int layer, const DispatchTarget* targets, int n_targets,
                              const float* x, int64_t n_in, const block_q8_0* base_q8, int64_t n_items, int n_ranges,
                              int row_align, RowsHook after, const void* after_ctx)
    : lora_(lora),
      layer_(layer),
      targets_(targets),
      n_targets_(n_targets),
      x_(x),
      n_in_(n_in),
      xq_(nullptr),
      own_xq_(false),
      n_items_(n_items),
      n_ranges_(n_ranges),
      row_align_(row_align),
      after_(after),
      after_ctx_(after_ctx) {
  if (!lora || lora->plan_.empty()) return;
  if (n_targets > kMaxTargets) fail(ErrorKind::Internal, "LoRA dispatch: too many projections");
  n_tiles_ = int(lora->plan_.tiles.size());
  // The 8-bit pools' shrinks read the input as Q8_0 blocks: the base product's rows when it
  // quantized them (the same rounding of the same rows), else their own copy, tile by tile.
  const bool reuse = is_integer_pool(lora->pool_.type()) && base_q8 && n_in % kernels::kLoraQ8Block == 0;
  xq_ = reuse ? base_q8 : lora->xq_.data();
  own_xq_ = !reuse;
  for (int r = 0; r < n_ranges; ++r) {
    lora->ranges_[size_t(r)].done.store(0, std::memory_order_relaxed);
    lora->ranges_[size_t(r)].next.store(0, std::memory_order_relaxed);
  }
}

int64_t BatchLora::Dispatch::range_begin(int r) const { return ThreadPool::range_begin(r, n_ranges_, n_items_, 1); }

void BatchLora::Dispatch::shrink_tiles() {
  if (n_tiles_ == 0) return;  // no adapters: no shared counter to bounce between threads
  BatchLora& L = *lora_;
  for (int i; (i = int(tile_next_.v.fetch_add(1, std::memory_order_relaxed))) < n_tiles_;) {
    const auto [k0, k1] = L.plan_.tiles[size_t(i)];
    if (own_xq_)
      lora_quantize_input(L.ks_, L.pool_, L.plan_, x_, n_in_, n_in_, L.xq_.data(), k0, k1);
    for (int j = 0; j < n_targets_; ++j) {
      const Module m = targets_[j].m;
      lora_shrink(L.ks_, L.pool_, L.plan_, layer_, m, x_, n_in_, L.t_[int(m)].data(), k0, k1, xq_);
    }
    tiles_done_.v.fetch_add(1, std::memory_order_release);
  }
}

void BatchLora::Dispatch::rows_done(int64_t i0, int64_t i1) {
  if (n_tiles_ == 0) return;
  int r = n_ranges_ - 1;  // the chunk's range (a chunk never spans two)
  while (range_begin(r) > i0) --r;
  lora_->ranges_[size_t(r)].done.fetch_add(i1 - i0, std::memory_order_release);
}

// y += s B (A x) for plan tile `tile` over the rows of range r, then the hook on those rows.
void BatchLora::Dispatch::expand(int r, int tile) {
  BatchLora& L = *lora_;
  const int64_t i0 = range_begin(r), i1 = range_begin(r + 1);
  const auto [k0, k1] = L.plan_.tiles[size_t(tile)];
  int64_t first_r0 = 0, first_r1 = 0;
  for (int j = 0; j < n_targets_; ++j) {
    const DispatchTarget& p = targets_[j];
    const int64_t r0 = (std::max(i0, p.first_item) - p.first_item) * row_align_;
    const int64_t r1 = std::min(p.n_out, (i1 - p.first_item) * row_align_);
    if (j == 0) first_r0 = r0, first_r1 = r1;
    if (r0 < r1)
      lora_expand(L.ks_, L.pool_, L.plan_, layer_, p.m, L.t_[int(p.m)].data(), p.out, p.n_out, r0, r1, k0, k1);
  }
  if (after_ && first_r0 < first_r1)
    for (int k = k0; k < k1; ++k) after_(after_ctx_, L.plan_.token[size_t(k)], first_r0, first_r1);
}

// A claim is a plan tile's tokens over a whole range, so each adapter's B is read as one long
// stream. A range whose last rows another thread is still computing waits while the others run.
void BatchLora::Dispatch::expands(int ith) {
  if (n_tiles_ == 0) return;
  shrink_tiles();  // a thread that joined after the last chunk still finds none left
  ThreadPool::wait_until([&] { return tiles_done_.v.load(std::memory_order_acquire) == n_tiles_; });
  ThreadPool::wait_until([&] {  // runs what is ready; done once nothing is left
    bool left = false;
    for (int d = 0; d < n_ranges_; ++d) {
      const int r = (ith + d) % n_ranges_;
      RangeExpands& re = lora_->ranges_[size_t(r)];
      if (re.next.load(std::memory_order_relaxed) >= n_tiles_) continue;
      if (re.done.load(std::memory_order_acquire) != range_begin(r + 1) - range_begin(r)) {
        left = true;
        continue;
      }
      for (int tile; (tile = re.next.fetch_add(1, std::memory_order_relaxed)) < n_tiles_;) expand(r, tile);
    }
    return !left;
  });
}

}  // namespace el::lora
