#include "kv_cache.h"

#include <new>
#include <string>

#include "error.h"

namespace el {

namespace {
int blocks_for(int tokens, int block_size) { return (tokens + block_size - 1) / block_size; }
}  // namespace

KVCache::KVCache(const KVCacheParams& p) : p_(p) {
  if (p.n_layer < 1 || p.kv_dim < 1 || p.block_size < 1 || p.n_blocks < 1 || p.n_seq_max < 1 || p.n_ctx < 1)
    fail(ErrorKind::InvalidArgument, "KV cache: every size must be positive");
  row_bytes_ = size_t(p.kv_dim) * elem_size();
  block_bytes_ = size_t(p.n_layer) * 2 * size_t(p.block_size) * row_bytes_;
  const size_t total = size_t(p.n_blocks) * block_bytes_;
  pool_ = try_alloc_big(total, HugePages::Default);
  if (!pool_)
    fail(ErrorKind::OutOfMemory, "KV cache: cannot allocate " + std::to_string(total) + " bytes (" +
                                     std::to_string(p.n_blocks) + " blocks of " + std::to_string(p.block_size) +
                                     " tokens)");
  free_.reserve(p.n_blocks);
  for (int b = p.n_blocks - 1; b >= 0; --b) free_.push_back(b);
  tables_.resize(p.n_seq_max);
  for (auto& t : tables_) t.reserve(blocks_for(p.n_ctx, p.block_size));
  len_.assign(p.n_seq_max, 0);
}

void KVCache::reserve(const SeqGrowth* growth, int n) {
  size_t needed = 0;
  for (int i = 0; i < n; ++i) {
    const SeqGrowth& g = growth[i];
    if (g.seq < 0 || g.seq >= p_.n_seq_max) fail(ErrorKind::InvalidArgument, "KV cache: bad sequence id " + std::to_string(g.seq));
    if (g.new_len > p_.n_ctx)
      fail(ErrorKind::InvalidArgument, "sequence " + std::to_string(g.seq) + " would hold " + std::to_string(g.new_len) +
                                           " tokens, more than n_ctx = " + std::to_string(p_.n_ctx));
    const int have = int(tables_[g.seq].size());
    const int want = blocks_for(g.new_len, p_.block_size);
    if (want > have) needed += size_t(want - have);
  }
  if (needed > free_.size())
    fail(ErrorKind::OutOfMemory, "KV cache pool exhausted (" + std::to_string(p_.n_blocks) + " blocks of " +
                                     std::to_string(p_.block_size) + " tokens; " + std::to_string(needed) +
                                     " needed, " + std::to_string(free_.size()) + " free)");
  for (int i = 0; i < n; ++i) {
    auto& table = tables_[growth[i].seq];
    const int want = blocks_for(growth[i].new_len, p_.block_size);
    while (int(table.size()) < want) {
      table.push_back(free_.back());
      free_.pop_back();
    }
  }
}

void KVCache::clear(int seq) {
  if (seq < 0 || seq >= p_.n_seq_max) fail(ErrorKind::InvalidArgument, "KV cache: bad sequence id " + std::to_string(seq));
  auto& table = tables_[seq];
  while (!table.empty()) {
    free_.push_back(table.back());
    table.pop_back();
  }
  len_[seq] = 0;
}

}  // namespace el
