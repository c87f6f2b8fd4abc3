// Thread pool: every index exactly once, across many back-to-back dispatches and after
// the workers have gone to sleep; chunk bounds respect the alignment.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"
#include "threadpool.h"

namespace {

void test_split_range() {
  for (int64_t n : {0, 1, 15, 16, 17, 100, 1000})
    for (int64_t align : {1, 4, 16})
      for (int nth = 1; nth <= 5; ++nth) {
        int64_t next = 0;
        for (int i = 0; i < nth; ++i) {
          int64_t b, e;
          el::ThreadPool::split_range(n, align, i, nth, b, e);
          CHECK(b == next && e >= b);
          if (e < n) CHECK(e % align == 0);
          next = e;
        }
        CHECK(next == n);
      }
}

void test_run_covers_all(el::ThreadPool& pool) {
  const int64_t n = 1000;
  std::vector<std::atomic<int>> hits(n);
  for (int round = 0; round < 200; ++round) {
    const int nth = 1 + round % (pool.size() + 1);  // includes nth > size (clamped)
    pool.parallel_for(nth, n, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
  }
  bool all = true;
  for (auto& h : hits) all = all && h.load() == 200;
  CHECK(all);
}

void test_thread_ids(el::ThreadPool& pool) {
  std::vector<std::atomic<int>> seen(pool.size());
  std::atomic<int> bad{0};
  pool.run(pool.size(), [&](int ith, int nth) {
    if (nth != pool.size()) bad++;
    seen[ith]++;
  });
  CHECK(bad.load() == 0);
  for (auto& s : seen) CHECK(s.load() == 1);
  // Fewer threads than the pool has: only ith < nth run.
  int calls = 0;
  pool.run(1, [&](int ith, int nth) { calls += (ith == 0 && nth == 1); });
  CHECK(calls == 1);
}

void test_after_sleep(el::ThreadPool& pool) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // workers stop spinning and sleep
  std::atomic<int> sum{0};
  pool.run(pool.size(), [&](int ith, int) { sum += ith + 1; });
  CHECK(sum.load() == pool.size() * (pool.size() + 1) / 2);
}

}  // namespace

int main() {
  test_split_range();
  for (int n : {1, 2, 3}) {
    el::ThreadPool pool(n);
    CHECK(pool.size() == n);
    test_run_covers_all(pool);
    test_thread_ids(pool);
    test_after_sleep(pool);
    test_run_covers_all(pool);
  }
  el::ThreadPool clamped(0);
  CHECK(clamped.size() == 1);
  return el_test::test_exit_code();
}
