// Paged KV cache: one pool of fixed-size blocks, each holding `block_size` tokens of K and V
// for every layer, and a block table per sequence. Sequences grow append-only; clearing a
// sequence returns its blocks to the pool. Nothing here allocates after construction.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "big_buffer.h"
#include "tensor_types.h"

namespace el {

enum class KVType { F32, F16 };

struct KVCacheParams {
  int n_layer = 0;
  int kv_dim = 0;       // n_head_kv * head_dim: one token's K (or V) for one layer
  int block_size = 32;  // tokens per block
  int n_blocks = 0;
  int n_seq_max = 1;
  int n_ctx = 0;        // max tokens per sequence
  KVType type = KVType::F32;
};

// A sequence that grows to `new_len` tokens in the next forward pass.
struct SeqGrowth {
  int seq;
  int new_len;
};

class KVCache {
 public:
  // Allocates the pool; throws el::Error (OutOfMemory) when it cannot.
  explicit KVCache(const KVCacheParams& p);

  const KVCacheParams& params() const { return p_; }
  size_t elem_size() const { return p_.type == KVType::F16 ? sizeof(fp16_t) : sizeof(float); }
  size_t bytes() const { return size_t(p_.n_blocks) * block_bytes_; }
  int blocks_used() const { return p_.n_blocks - int(free_.size()); }

  int length(int seq) const { return len_[seq]; }
  // Gives every listed sequence (distinct ids) blocks for new_len tokens, all or nothing:
  // when the pool cannot cover them all, throws OutOfMemory and changes nothing.
  void reserve(const SeqGrowth* growth, int n);
  // Records that the sequence now holds len tokens (its blocks must be reserved).
  void set_length(int seq, int len) { len_[seq] = len; }
  void clear(int seq);

  // One token's K or V row (kv_dim elements of the cache type) for a layer; its block
  // must be reserved. Rows of consecutive positions inside one block are contiguous.
  uint8_t* k_row(int layer, int seq, int pos) { return row(layer, 0, seq, pos); }
  uint8_t* v_row(int layer, int seq, int pos) { return row(layer, 1, seq, pos); }
  const uint8_t* k_row(int layer, int seq, int pos) const { return const_cast<KVCache*>(this)->row(layer, 0, seq, pos); }
  const uint8_t* v_row(int layer, int seq, int pos) const { return const_cast<KVCache*>(this)->row(layer, 1, seq, pos); }

 private:
  uint8_t* row(int layer, int kv, int seq, int pos) {
    const int block = tables_[seq][pos / p_.block_size];
    return pool_.get() + size_t(block) * block_bytes_ +
           ((size_t(layer) * 2 + kv) * p_.block_size + pos % p_.block_size) * row_bytes_;
  }

  KVCacheParams p_;
  size_t row_bytes_ = 0;    // kv_dim * elem_size
  size_t block_bytes_ = 0;  // n_layer * 2 * block_size * row_bytes_
  BigBuffer pool_;
  std::vector<int32_t> free_;                 // stack of free block ids
  std::vector<std::vector<int32_t>> tables_;  // per sequence: block ids, in position order
  std::vector<int32_t> len_;                  // per sequence: tokens held
};

}  // namespace el
