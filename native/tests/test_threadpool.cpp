// Thread pool: every index exactly once, across many back-to-back dispatches, with more
// threads than cores, and after the helpers have gone to sleep; chunks start on the grain and
// shrink as the work runs out; each thread's chunks of its own range are one ascending run
// from the range's start, others take only its back, and no chunk spans two ranges; thread
// ids stay in range (they index per-thread scratch); the optional second phase runs on every
// thread that took part, after its chunks. Idle helpers go to sleep, and a caller waiting for
// a helper's last chunk sleeps and is woken (no lost wake-up), counted by the wait statistics.
#include <atomic>
#include <chrono>
#include <thread>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "threadpool.h"

namespace {

void test_chunk_end() {
  using el::ThreadPool;
  CHECK(ThreadPool::chunk_end(0, 1000, 16, 2) == 256);    // a quarter of 1000, rounded up to 16
  CHECK(ThreadPool::chunk_end(256, 1000, 16, 2) == 448);  // a quarter of the 744 left: 186 -> 192
  CHECK(ThreadPool::chunk_end(800, 1000, 16, 2) == 864);  // never under 1000 / 16, rounded up to 16
  CHECK(ThreadPool::chunk_end(960, 1000, 16, 2) == 1000); // the last chunk is clipped
  CHECK(ThreadPool::chunk_end(0, 10, 16, 4) == 10);       // never under the grain
  CHECK(ThreadPool::chunk_end(900, 1000, 1, 2) == 962);
}

void test_cuts() {
  using el::ThreadPool;
  // Half of what is left, on the grain, at least max(grain, n / (8 nth)) = 64 here.
  CHECK(ThreadPool::own_cut(0, 500, 1000, 16, 2) == 256);    // 250 -> 256
  CHECK(ThreadPool::own_cut(400, 500, 1000, 16, 2) == 464);  // 50 -> the least, 64
  CHECK(ThreadPool::own_cut(480, 500, 1000, 16, 2) == 500);  // clipped at the back
  CHECK(ThreadPool::steal_cut(0, 500, 1000, 16, 2) == 240);  // back 256, rounded down to 16
  CHECK(ThreadPool::steal_cut(500, 1000, 1000, 16, 2) == 736);
  CHECK(ThreadPool::steal_cut(400, 450, 1000, 16, 2) == 400);  // all of what is left
  // Ranges: one per thread, inner ends rounded down to the grain; inline dispatches have one.
  CHECK(ThreadPool::range_begin(1, 2, 1000, 16) == 496);
  CHECK(ThreadPool::range_begin(2, 2, 1000, 16) == 1000);
  CHECK(ThreadPool::range_begin(1, 3, 10, 1) == 3);
}

// Each thread claims its own range from the front, as one ascending run from its start; what
// others take of it is its back; no chunk spans two ranges.
void test_own_ranges(el::ThreadPool& pool, int rounds) {
  struct Chunk {
    int64_t b, e;
    int ith;
  };
  bool ok = true;
  for (int round = 0; round < rounds; ++round) {
    const int nth = 1 + round % pool.size();
    const int64_t n = 200 + 37 * round % 900, grain = 1 + round % 7;
    const int count = pool.ranges(nth, n, grain);
    std::vector<Chunk> chunks(static_cast<size_t>(n));
    std::atomic<int> n_chunks{0};
    pool.parallel_for(nth, n, grain, [&](int64_t b, int64_t e, int ith) {
      const int i = n_chunks.fetch_add(1);
      if (i < n && b < e) chunks[size_t(i)] = {b, e, ith};  // else ok is cleared below
    });
    ok = ok && n_chunks.load() <= n;
    chunks.resize(size_t(std::min<int64_t>(n, n_chunks.load())));
    std::sort(chunks.begin(), chunks.end(), [](const Chunk& x, const Chunk& y) { return x.b < y.b; });
    for (int r = 0; r < count; ++r) {
      const int64_t r0 = el::ThreadPool::range_begin(r, count, n, grain);
      const int64_t r1 = el::ThreadPool::range_begin(r + 1, count, n, grain);
      int64_t owner_end = r0;  // the owner's run so far
      bool others = false;     // a chunk of another thread seen in this range
      for (const Chunk& c : chunks) {
        if (c.e <= r0 || c.b >= r1) continue;
        ok = ok && c.b >= r0 && c.e <= r1;  // within the range
        if (count > 1 && c.ith == r && !others) {
          ok = ok && c.b == owner_end;
          owner_end = c.e;
        } else {
          others = true;
          ok = ok && (count == 1 || c.ith != r);  // the owner's chunks come before the others'
        }
      }
    }
  }
  CHECK(ok);
}

void test_covers_all(el::ThreadPool& pool, int rounds) {
  const int64_t n = 1000;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int> bad{0};
  for (int round = 0; round < rounds; ++round) {
    const int nth = 1 + round % (pool.size() + 1);  // includes nth > size (clamped)
    const int64_t grain = 1 + round % 70;
    pool.parallel_for(nth, n, grain, [&](int64_t b, int64_t e, int ith) {
      const bool on_grain = b % grain == 0 && (e == n || ((e - b) % grain == 0 && e - b >= grain));
      if (ith < 0 || ith >= std::min(nth, pool.size()) || !on_grain || e > n) bad++;
      for (int64_t i = std::max<int64_t>(b, 0); i < std::min(e, n); ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
  }
  CHECK(bad.load() == 0);
  bool all = true;
  for (auto& h : hits) all = all && h.load() == rounds;
  CHECK(all);
}

void test_inline_cases(el::ThreadPool& pool) {
  // One thread: the caller runs every chunk, in order: half of 25 rounded up to the grain of
  // 10, then the 5 left.
  std::vector<int64_t> ends;
  pool.parallel_for(1, 25, 10, [&](int64_t b, int64_t e, int ith) {
    if (ith == 0 && b == (ends.empty() ? 0 : ends.back())) ends.push_back(e);
  });
  CHECK(ends == std::vector<int64_t>({20, 25}));
  int calls = 0;
  pool.parallel_for(pool.size(), 5, 10, [&](int64_t b, int64_t e, int ith) { calls += (b == 0 && e == 5 && ith == 0); });
  pool.parallel_for(pool.size(), 0, 10, [&](int64_t, int64_t, int) { calls += 100; });
  CHECK(calls == 1);
}

// The second phase: each thread that took part calls then(ith) once its chunks run out, and
// together they take every item of a second list, each after waiting for every chunk to be
// done (as project() runs the LoRA expands after the base rows). Returns with both done.
void test_then_phase(el::ThreadPool& pool, int rounds) {
  constexpr int kSecond = 37;
  bool ok = true;
  for (int round = 0; round < rounds; ++round) {
    const int nth = 1 + round % (pool.size() + 1);
    const int64_t n = 100 + round % 150;
    std::atomic<int64_t> done{0};
    std::atomic<int> next{0}, calls{0}, bad{0};
    std::atomic<uint32_t> ran_chunks{0}, ran_then{0};  // bit ith (pools of up to 8 here)
    std::vector<std::atomic<int>> second(kSecond);
    pool.parallel_for(
        nth, n, 4,
        [&](int64_t b, int64_t e, int ith) {
          ran_chunks.fetch_or(1u << ith);
          done.fetch_add(e - b);
        },
        [&](int ith) {
          calls++;
          if (ran_then.fetch_or(1u << ith) & (1u << ith)) bad++;  // twice on one thread
          if (ith < 0 || ith >= std::min(nth, pool.size())) bad++;
          el::ThreadPool::wait_until([&] { return done.load() == n; });
          for (int i; (i = next.fetch_add(1)) < kSecond;) second[size_t(i)]++;
        });
    const int most = std::max(1, std::min(nth, pool.size()));
    bool seconds = true;
    for (auto& c : second) seconds = seconds && c.load() == 1;
    const bool round_ok = bad.load() == 0 && calls.load() >= 1 && calls.load() <= most && done.load() == n &&
                          (ran_chunks.load() & ~ran_then.load()) == 0 && seconds;  // every thread that ran chunks
    if (!round_ok)
      std::fprintf(stderr, "then phase, pool %d nth %d n %lld: bad %d calls %d done %lld chunks %x then %x second %d\n",
                   pool.size(), nth, (long long)n, bad.load(), calls.load(), (long long)done.load(), ran_chunks.load(),
                   ran_then.load(), int(seconds));
    ok = ok && round_ok;
  }
  CHECK(ok);
  int inline_calls = 0;  // one thread: the chunks, then one call
  pool.parallel_for(1, 30, 10, [&](int64_t, int64_t e, int) { inline_calls += e == 30 ? 10 : 0; },
                    [&](int ith) { inline_calls += ith == 0 && inline_calls == 10 ? 1 : 100; });
  CHECK(inline_calls == 11);
}

void test_after_sleep(el::ThreadPool& pool) {
  const el::ThreadPool::WaitStats before = pool.wait_stats();
  std::atomic<int64_t> sum{0};  // a dispatch to every thread wakes any sleeping helper
  pool.parallel_for(pool.size(), 1000, 1, [&](int64_t b, int64_t e, int) { sum += e - b; });
  CHECK(sum.load() == 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // helpers stop spinning and sleep
  if (pool.size() > 1 && !pool.legacy_waits()) {
    // Each helper goes to sleep again (on a loaded machine a helper may wait long to run at all).
    for (int i = 0; i < 100 && pool.wait_stats().sleeps < before.sleeps + pool.size() - 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const el::ThreadPool::WaitStats idle = pool.wait_stats();
    CHECK(idle.sleeps >= before.sleeps + pool.size() - 1);
    if (pool.wait_stats_on() && pool.spin_ns() > 0) CHECK(idle.spin_ns > before.spin_ns);  // CPU time, spinning
  }
  test_covers_all(pool, 3);
}

// The caller waits for a helper still running its chunk: it spins for the budget, sleeps,
// and the helper's exit wakes it (a lost wake-up would hang here).
void test_caller_sleeps(el::ThreadPool& pool) {
  if (pool.size() < 2) return;
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> ran{0}, by_helper{0};
    const el::ThreadPool::WaitStats before = pool.wait_stats();
    pool.parallel_for(2, 2, 1, [&](int64_t b, int64_t e, int ith) {
      if (b == 1 && ith != 0) {
        by_helper++;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ran += int(e - b);
    });
    CHECK(ran.load() == 2);
    if (by_helper.load() && !pool.legacy_waits()) CHECK(pool.wait_stats().sleeps > before.sleeps);
  }
}

}  // namespace

int main() {
  test_chunk_end();
  test_cuts();
  // As configured by the environment (the product's default waits, or the legacy ones), then
  // with the waits timed (EL_POOL_STATS=1), whose counters the tests check too.
  for (const bool timed : {false, true}) {
    if (timed) setenv("EL_POOL_STATS", "1", 1);
    for (int n : {1, 2, 3, 8}) {
      el::ThreadPool pool(n);
      CHECK(pool.wait_stats_on() == (timed || (getenv("EL_POOL_STATS") && std::string(getenv("EL_POOL_STATS")) == "1")));
      CHECK(pool.size() == n);
      test_inline_cases(pool);
      test_covers_all(pool, 300);
      test_own_ranges(pool, 300);
      test_then_phase(pool, 300);
      test_after_sleep(pool);
      test_caller_sleeps(pool);
    }
  }
  el::ThreadPool clamped(0);
  CHECK(clamped.size() == 1);
  return el_test::test_exit_code();
}
