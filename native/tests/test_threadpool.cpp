// Thread pool: every index exactly once, across many back-to-back dispatches, with more
// threads than cores, and after the helpers have gone to sleep; chunk sizes respect the
// alignment; thread ids stay in range (they index per-thread scratch).
#include <atomic>
#include <chrono>
#include <thread>
#include <algorithm>
#include <vector>

#include "check.h"
#include "threadpool.h"

namespace {

void test_chunk_for() {
  CHECK(el::ThreadPool::chunk_for(1000, 2, 4, 16) == 128);  // 125 rounded up to 16
  CHECK(el::ThreadPool::chunk_for(10, 4, 4, 16) == 16);
  CHECK(el::ThreadPool::chunk_for(100, 3, 1, 1) == 34);
  CHECK(el::ThreadPool::chunk_for(0, 3, 4, 1) == 1);
}

void test_covers_all(el::ThreadPool& pool, int rounds) {
  const int64_t n = 1000;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int> bad{0};
  for (int round = 0; round < rounds; ++round) {
    const int nth = 1 + round % (pool.size() + 1);  // includes nth > size (clamped)
    const int64_t chunk = 1 + round % 70;
    pool.parallel_for(nth, n, chunk, [&](int64_t b, int64_t e, int ith) {
      if (ith < 0 || ith >= std::min(nth, pool.size()) || b % chunk != 0 || e - b > chunk) bad++;
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
  }
  CHECK(bad.load() == 0);
  bool all = true;
  for (auto& h : hits) all = all && h.load() == rounds;
  CHECK(all);
}

void test_inline_cases(el::ThreadPool& pool) {
  // One thread: the caller runs every chunk, in order.
  std::vector<int64_t> begins;
  pool.parallel_for(1, 25, 10, [&](int64_t b, int64_t e, int ith) {
    if (ith == 0 && e == std::min<int64_t>(b + 10, 25)) begins.push_back(b);
  });
  CHECK(begins == std::vector<int64_t>({0, 10, 20}));
  int calls = 0;
  pool.parallel_for(pool.size(), 5, 10, [&](int64_t b, int64_t e, int ith) { calls += (b == 0 && e == 5 && ith == 0); });
  pool.parallel_for(pool.size(), 0, 10, [&](int64_t, int64_t, int) { calls += 100; });
  CHECK(calls == 1);
}

void test_after_sleep(el::ThreadPool& pool) {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // helpers stop spinning and sleep
  test_covers_all(pool, 3);
}

}  // namespace

int main() {
  test_chunk_for();
  for (int n : {1, 2, 3, 8}) {
    el::ThreadPool pool(n);
    CHECK(pool.size() == n);
    test_inline_cases(pool);
    test_covers_all(pool, 300);
    test_after_sleep(pool);
  }
  el::ThreadPool clamped(0);
  CHECK(clamped.size() == 1);
  return el_test::test_exit_code();
}
