#include "threadpool.h"

#include <algorithm>

#include "round_up.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EL_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define EL_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define EL_CPU_RELAX() ((void)0)
#endif

namespace el {

namespace {

// Polling budget before sleeping: longer than the single-threaded gaps inside one forward
// pass (norms, RoPE), much shorter than the pause between two decode calls.
constexpr int kSpinIterations = 20000;
constexpr uint64_t kClosed = uint64_t(1) << 16;
constexpr uint64_t kThreadsMask = kClosed - 1;
constexpr int kCounterShift = 17;
// Guided chunks stop shrinking at 1/(kMaxChunksPerThread nth) of the work: each chunk restarts
// its weight streams (about 2 us a chunk at decode, measured), and below that the restarts cost
// more than the balance gains (batch-8 decode was 5-17% slower with chunks down to 16 rows).
constexpr int64_t kMaxChunksPerThread = 8;

uint64_t counter_of(uint64_t state) { return state >> kCounterShift; }

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::clamp(n_threads, 1, int(kThreadsMask))), ranges_(new Range[size_t(n_threads_)]) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_seq_cst);
    state_.store(((counter_of(state_.load()) + 1) << kCounterShift) | kClosed, std::memory_order_seq_cst);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {

// A claim of `share` indices on the grain, never under max(grain, n / (8 nth)).
int64_t claim_size(int64_t share, int64_t n, int64_t grain, int nth) {
  const int64_t least = std::max(grain, round_up(n / (kMaxChunksPerThread * std::max(1, nth)), grain));
  return std::max(least, round_up(share, grain));
}
int64_t front_of(uint64_t ends) { return int64_t(ends & 0xffffffffu); }
int64_t back_of(uint64_t ends) { return int64_t(ends >> 32); }
uint64_t ends_of(int64_t front, int64_t back) { return (uint64_t(back) << 32) | uint64_t(front); }

}  // namespace

int64_t ThreadPool::chunk_end(int64_t begin, int64_t n, int64_t grain, int nth) {
  return std::min(n, begin + claim_size((n - begin) / (2 * std::max(1, nth)), n, grain, nth));
}

int64_t ThreadPool::own_cut(int64_t front, int64_t back, int64_t n, int64_t grain, int nth) {
  return std::min(back, front + claim_size((back - front) / 2, n, grain, nth));
}

int64_t ThreadPool::steal_cut(int64_t front, int64_t back, int64_t n, int64_t grain, int nth) {
  const int64_t take = claim_size((back - front) / 2, n, grain, nth);
  return back - take <= front ? front : (back - take) / grain * grain;
}

void ThreadPool::relax(int spins) {
  if (spins < kSpinIterations) EL_CPU_RELAX();
  else std::this_thread::yield();
}

void ThreadPool::run_chunks(const Job& job, int ith) {
  // Own range, from the front. On a failed swap `ends` is reloaded with what another left.
  std::atomic<uint64_t>& own = ranges_[size_t(ith)].ends;
  for (uint64_t ends = own.load(std::memory_order_relaxed);;) {
    const int64_t front = front_of(ends), back = back_of(ends);
    if (front >= back) break;
    const int64_t cut = own_cut(front, back, job.n, job.grain, job.nth);
    if (!own.compare_exchange_weak(ends, ends_of(cut, back), std::memory_order_relaxed)) continue;
    job.fn(job.ctx, front, cut, ith);
    ends = own.load(std::memory_order_relaxed);
  }
  // Then the back of the fullest other range, until every range is empty.
  for (;;) {
    int victim = -1;
    int64_t most = 0;
    uint64_t ends = 0;
    for (int i = 0; i < job.nth; ++i) {
      const uint64_t e = ranges_[size_t(i)].ends.load(std::memory_order_relaxed);
      if (back_of(e) - front_of(e) > most) {
        most = back_of(e) - front_of(e);
        victim = i;
        ends = e;
      }
    }
    if (victim < 0) break;
    const int64_t front = front_of(ends), back = back_of(ends);
    const int64_t cut = steal_cut(front, back, job.n, job.grain, job.nth);
    if (!ranges_[size_t(victim)].ends.compare_exchange_weak(ends, ends_of(front, cut), std::memory_order_relaxed))
      continue;
    job.fn(job.ctx, cut, back, ith);
  }
  if (job.then) job.then(job.then_ctx, ith);
}

void ThreadPool::dispatch(int nth, const Job& job) {
  job_ = job;
  // Range i is [n i / nth, n (i + 1) / nth), its inner ends rounded down to the grain.
  for (int i = 0; i < nth; ++i)
    ranges_[size_t(i)].ends.store(
        ends_of(range_begin(i, nth, job.n, job.grain), range_begin(i + 1, nth, job.n, job.grain)),
        std::memory_order_relaxed);
  const uint64_t open = ((counter_of(state_.load(std::memory_order_relaxed)) + 1) << kCounterShift) | uint64_t(nth);
  state_.store(open, std::memory_order_seq_cst);  // publishes job_ and the ranges
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_chunks(job, 0);
  // Close the dispatch: a helper that has not joined yet now never will, and the job's
  // data (on the caller's stack) stays valid until the ones inside have left.
  state_.store(open | kClosed, std::memory_order_seq_cst);
  for (int spins = 0; active_.load(std::memory_order_seq_cst) != 0; ++spins) relax(spins);
}

void ThreadPool::worker_loop(int ith) {
  uint64_t seen = 0;  // counter of the last dispatch this thread looked at
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (int spins = 0; counter_of(s) == seen && spins < kSpinIterations; ++spins) {
      EL_CPU_RELAX();
      s = state_.load(std::memory_order_acquire);
    }
    if (counter_of(s) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return counter_of(state_.load(std::memory_order_seq_cst)) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      s = state_.load(std::memory_order_acquire);
    }
    seen = counter_of(s);
    if (stop_.load(std::memory_order_acquire)) return;
    if ((s & kClosed) || ith >= int(s & kThreadsMask)) continue;
    // Join, then check the dispatch is still open (seq_cst pairs with the caller's close:
    // either it sees us in active_ and waits, or we see it closed and leave).
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (state_.load(std::memory_order_seq_cst) == s) run_chunks(job_, ith);
    active_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace el
