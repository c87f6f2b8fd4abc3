// Paged KV cache: block accounting, all-or-nothing reservation, clear, row addressing.
#include <cstring>
#include <set>
#include <string>

#include "check.h"
#include "error.h"
#include "kv_cache.h"

namespace {

el::KVCacheParams params(el::KVType type) {
  el::KVCacheParams p;
  p.n_layer = 3;
  p.kv_dim = 8;
  p.block_size = 4;
  p.n_blocks = 5;
  p.n_seq_max = 3;
  p.n_ctx = 12;
  p.type = type;
  return p;
}

// Runs f and returns the el::Error it throws (kind Internal + "no error" when none).
template <class F>
el::Error thrown(F&& f) {
  try {
    f();
  } catch (const el::Error& e) {
    return e;
  }
  return el::Error(el::ErrorKind::Internal, "no error");
}

void test_reserve_and_clear() {
  el::KVCache kv(params(el::KVType::F32));
  CHECK(kv.bytes() == 5u * 3 * 2 * 4 * 8 * sizeof(float));
  CHECK(kv.blocks_used() == 0);

  el::SeqGrowth g[2] = {{0, 5}, {1, 4}};  // 2 + 1 blocks
  kv.reserve(g, 2);
  CHECK(kv.blocks_used() == 3);
  kv.reserve(g, 2);  // already covered
  CHECK(kv.blocks_used() == 3);

  // 3 more blocks needed, 2 free: nothing is taken.
  el::SeqGrowth too_much[2] = {{0, 8}, {2, 12}};
  const el::Error e = thrown([&] { kv.reserve(too_much, 2); });
  CHECK(e.kind == el::ErrorKind::OutOfMemory);
  CHECK_MSG(std::strstr(e.what(), "KV cache pool exhausted (5 blocks of 4 tokens") != nullptr, "%s", e.what());
  CHECK(kv.blocks_used() == 3);

  el::SeqGrowth over_ctx{2, 13};
  CHECK(thrown([&] { kv.reserve(&over_ctx, 1); }).kind == el::ErrorKind::InvalidArgument);
  el::SeqGrowth bad_seq{3, 1};
  CHECK(thrown([&] { kv.reserve(&bad_seq, 1); }).kind == el::ErrorKind::InvalidArgument);

  kv.set_length(0, 5);
  CHECK(kv.length(0) == 5);
  kv.clear(0);
  CHECK(kv.length(0) == 0 && kv.blocks_used() == 1);
  kv.reserve(&too_much[1], 1);  // fits now: the 2 blocks of sequence 0 came back
  CHECK(kv.blocks_used() == 4);
  CHECK(thrown([&] { kv.clear(-1); }).kind == el::ErrorKind::InvalidArgument);
}

void test_rows_are_distinct() {
  for (el::KVType type : {el::KVType::F32, el::KVType::F16}) {
    el::KVCache kv(params(type));
    el::SeqGrowth g[2] = {{0, 12}, {2, 7}};
    kv.reserve(g, 2);
    const size_t row = 8 * kv.elem_size();
    std::set<const uint8_t*> seen;
    const uint8_t* lo = kv.k_row(0, 0, 0);
    const uint8_t* hi = lo;
    for (const auto& s : g)
      for (int layer = 0; layer < 3; ++layer)
        for (int pos = 0; pos < s.new_len; ++pos) {
          for (const uint8_t* r : {kv.k_row(layer, s.seq, pos), kv.v_row(layer, s.seq, pos)}) {
            CHECK(seen.insert(r).second);
            lo = std::min(lo, r);
            hi = std::max(hi, r);
          }
          // Consecutive positions inside a block are adjacent rows.
          if (pos % 4 != 0) CHECK(kv.k_row(layer, s.seq, pos) == kv.k_row(layer, s.seq, pos - 1) + row);
        }
    CHECK(size_t(hi - lo) + row <= kv.bytes());
    // Writing a full row of every slot stays inside the pool (no overlap: all distinct, row-aligned).
    for (const uint8_t* r : seen) CHECK(size_t(r - lo) % row == 0);
  }
}

}  // namespace

int main() {
  test_reserve_and_clear();
  test_rows_are_distinct();
  return el_test::test_exit_code();
}
