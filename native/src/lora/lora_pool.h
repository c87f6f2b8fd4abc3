// The LoRA slot pool: one arena allocated when the context is created, holding up to
// n_slots adapters of rank <= max_rank on every adaptable module of every layer.
//
// Slot layout, per layer, modules in the groups one projection dispatch reads ({q, k, v}, {o},
// {gate, up}, {down}), each group's A regions then its B regions: a token's shrinks in one
// dispatch read one contiguous stream, and so do its expands. Each region is sized for
// max_rank rounded up to R = a multiple of kernels::kLoraRankStep (8); an adapter of rank r < R
// has zeros in ranks r..R-1, which leave every result unchanged:
//   At: n_in rows of R ranks (A transposed): shrink t = sum_i x_i * At_i is, per input, one
//       multiply-add over R contiguous ranks, with no horizontal sums;
//   B:  chunks of 8 outputs (the last one zero-padded), each R ranks x 8 outputs: expand reads
//       one contiguous stream, and y is loaded and stored once per chunk, not once per rank.
// Both are laid out with the adapter's own padded rank, so a low-rank adapter reads fewer bytes.
//
// Storage is F16 by default: it halves the pool's RAM (a rank-16 slot for a 0.5B model is ~17 MiB in
// F16, ~35 MiB in F32: the difference is whole adapters on a 4 GB board) and halves the
// bytes read per token, which is what LoRA costs at decode time. Every kernel path has
// the F16 LoRA kernels, and F16 keeps ~3 significant digits, far below the rounding already in the
// base model's quantized weights. Values outside F16 range are refused at load.
//
// The 8-bit pool (LoraPoolType::Q8, opt-in) stores the same A and B quantized to int8 with fp16
// scales (kernels.h: blocks of 32 inputs for A, one scale per output row for B), and quantizes
// the activations too, so both products are integer dot products: about 0.55x the bytes of F16
// and much less arithmetic per byte, for 8 different adapters in a step the difference between
// LoRA costing a third and a seventh of the base model. The price is quantization error, as with
// a Q8_0 adapter file: results no longer equal the F16 arithmetic bit for bit.
//
// The 4-bit pool (LoraPoolType::Q4, opt-in) is the 8-bit pool with 4-bit weights (ggml's Q4_0
// rule, same scales, kernels.h): about half its bytes again, so twice the adapters in the same
// RAM, and with 8 different adapters in a step what LoRA costs is mostly reading them. Its
// weights carry Q4_0's error (up to a sixteenth of a block's largest value, against 1/254 for
// Q8_0): on the test adapters the logits move by 13-30% of what the adapter changes, against
// 1.3-3.5% with the 8-bit pool.
//
// Slot states: free -> loading -> ready. Loading happens outside the pool lock (it may run
// while a forward pass uses other slots); a slot becomes visible to decode only when ready.
// Sequences hold references (acquire/release, or bind_sequences per batch); a slot with
// references can be neither unloaded nor loaded over.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../big_buffer.h"
#include "../kernels/kernels.h"
#include "../tensor_types.h"
#include "lora_pool_types.h"
#include "lora_shapes.h"

namespace el::lora {

struct LoraPair;

struct SlotInfo {
  bool loaded = false;
  int rank = 0;
  float alpha = 0;        // as stored in the adapter (0 in a GGUF means factor 1)
  float factor = 0;       // what B(Ax) is multiplied by before the per-token scale
  int64_t bytes = 0;      // bytes the adapter occupies in the slot
  std::string modules;    // adapted modules in any layer, e.g. "q,v,down"
  int n_sequences = 0;    // live sequences referencing the slot
  std::string path;
  std::string format;     // "gguf" | "peft"
};

// One adapted (layer, module) of a ready slot, as the apply kernels read it.
struct ModuleView {
  // F16: a is At (n_in rows of `padded` ranks), b is ceil(n_out / 8) chunks of `padded` ranks x 8
  // outputs. Q8: the 8-bit layouts of kernels.h. a is nullptr when the slot does not adapt the module.
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  LoraPoolType type = LoraPoolType::F16;
  int rank = 0;
  int padded = 0;  // rank rounded up to kernels::kLoraRankStep
  const fp16_t* a_f16() const { return reinterpret_cast<const fp16_t*>(a); }
  const fp16_t* b_f16() const { return reinterpret_cast<const fp16_t*>(b); }
  // Element (j, i) of A and (o, j) of B as stored, j < padded, o < n_out rounded up to 8 (tests, tools).
  float a_value(int j, int64_t i) const;
  float b_value(int64_t o, int j) const;
};

// Rank rounded up to the kernels' rank step (the stride of At and of B's chunks).
int padded_rank(int rank);

// Bytes of a module's A over n_in inputs, and of its B over outputs 0 .. n_out - 1 (whole
// 8-output chunks), at padded rank R in a pool of the type. A slice of B from output o (a
// multiple of 8) starts b_region_bytes(type, o, R) bytes into it.
int64_t a_region_bytes(LoraPoolType type, int64_t n_in, int R);
int64_t b_region_bytes(LoraPoolType type, int64_t n_out, int R);

class LoraPool {
 public:
  // Allocates the arena: n_slots x, per layer and module, the A and B regions of the type at the
  // padded max rank (F16: (n_in + n_out rounded up to 8) x padded rank x 2 bytes). Throws
  // el::Error(OutOfMemory) naming the size when that fails, InvalidArgument for a Q8 pool whose
  // padded max rank exceeds kernels::kLoraQ8MaxRank.
  LoraPool(const ModelShapes& shapes, int n_slots, int max_rank, LoraPoolType type = LoraPoolType::F16);
  ~LoraPool();
  LoraPool(const LoraPool&) = delete;
  LoraPool& operator=(const LoraPool&) = delete;

  int n_slots() const { return n_slots_; }
  int max_rank() const { return max_rank_; }
  int max_padded_rank() const { return max_padded_; }  // floats of t per token (lora_apply.h)
  const ModelShapes& shapes() const { return shapes_; }
  LoraPoolType type() const { return type_; }
  size_t arena_bytes() const { return size_t(n_slots_) * size_t(slot_bytes_); }

  // Opens and validates `path` (GGUF file or PEFT directory), then converts it into the slot.
  // Refused while the slot is loading or referenced. A file that fails validation leaves
  // the slot as it was; a failure during conversion leaves it free.
  SlotInfo load(int slot, const std::string& path);
  // Slot images (lora_image.cpp): the exact bytes a ready slot's adapter occupies, in the pool's
  // layout, after a small header (pool type, rank, modules, alpha, factor, a fingerprint of the
  // model shapes and the layout). Importing one is a copy: no parse, transpose or quantization,
  // and the slot then holds bit for bit what the exported one held. An image made for another
  // model, pool type or layout is refused, naming the difference.
  size_t image_size(int slot) const;  // refused unless the slot is ready
  // Writes the image into buf (cap bytes, at least image_size); returns its size. The slot is
  // held (as a sequence would hold it) while it is copied, so it cannot be unloaded meanwhile.
  size_t export_image(int slot, uint8_t* buf, size_t cap);
  SlotInfo import_image(int slot, const uint8_t* buf, size_t n);  // same slot rules as load
  uint64_t image_fingerprint() const;  // what an image must carry to be imported here
  void unload(int slot);  // refused while referenced or loading
  SlotInfo info(int slot) const;
  bool is_ready(int slot) const;

  // Sequence references. acquire fails unless the slot is ready.
  void acquire(int slot);
  void release(int slot);
  // For one decode batch: seq_slot[s] is the slot sequence s currently references (-1 none),
  // owned by the caller. Each sequence in the batch moves its reference to the slot of its
  // tokens (all of a sequence's tokens in one batch must name the same slot). All or nothing:
  // on error (bad slot, slot not ready, mixed slots) no reference changes.
  void bind_sequences(int32_t* seq_slot, int n_seq, const int32_t* seq_id, const int32_t* token_slot, int n_tok);
  // The checks of bind_sequences without binding, to reject a batch before reserving anything
  // else for it; bind_sequences can then fail only if a slot is unloaded in between.
  void check_batch(int n_seq, const int32_t* seq_id, const int32_t* token_slot, int n_tok) const;
  // Drops the reference of a sequence being cleared; sets seq_slot to -1.
  void unbind_sequence(int32_t& seq_slot);

  // Read side for the apply kernels: only for a ready slot a live sequence references.
  ModuleView view(int slot, int layer, Module m) const;
  float factor(int slot) const { return slots_[slot].factor; }

 private:
  enum State : int { kFree = 0, kLoading = 1, kReady = 2 };
  struct Slot {
    std::atomic<int> state{kFree};
    std::atomic<int> refs{0};
    // Written only while loading (nobody reads a loading slot), read after ready.
    int rank = 0;
    float alpha = 0, factor = 0;
    int64_t bytes = 0;
    std::vector<uint8_t> adapted;  // n_layer * kNumModules flags
    std::string path, format, modules;
  };

  void check_slot(int slot) const;
  // Takes a free or idle slot for writing (state loading); refused while loading or referenced.
  void begin_write(int slot);
  void set_idle_slot_state(int slot, State to);  // refused while loading or referenced
  // Module regions of a ready slot's adapter, in image order (layer by layer, modules in order).
  template <typename F>
  void for_each_region(int slot, int R, F&& f) const;
  uint8_t* a_region(int slot, int layer, Module m) const;
  uint8_t* b_region(int slot, int layer, Module m) const;
  int64_t a_bytes(int mi, int R) const;  // bytes of module mi's A (and B) region at padded rank R
  int64_t b_bytes(int mi, int R) const;
  // Writes one source pair into the slot (padding zeroed); returns the bytes it occupies.
  int64_t convert_pair(int slot, const LoraPair& pr, int rank, std::vector<float>& row);
  // Per sequence, the slot its tokens in the batch name (INT_MIN: not in the batch); checks
  // ranges and that a sequence names one slot. check_ready_locked: every named slot is ready.
  std::vector<int32_t> batch_targets(int n_seq, const int32_t* seq_id, const int32_t* token_slot, int n_tok) const;
  void check_ready_locked(const std::vector<int32_t>& target, const int32_t* seq_slot) const;

  ModelShapes shapes_;
  int n_slots_;
  int max_rank_;
  int max_padded_;  // padded_rank(max_rank_)
  LoraPoolType type_;
  int64_t layer_bytes_ = 0;                 // bytes per layer per slot
  int64_t a_offset_[kNumModules] = {};      // byte offsets of each module's A and B inside a layer
  int64_t b_offset_[kNumModules] = {};
  int64_t slot_bytes_ = 0;
  BigBuffer arena_;  // n_slots_ * slot_bytes_
  std::unique_ptr<Slot[]> slots_;
  mutable std::mutex mu_;  // guards state transitions and reference counts together
};

}  // namespace el::lora
