#include "threadpool.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "round_up.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <ctime>

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

// Spin budget before sleeping: longer than the single-threaded gaps inside one forward pass
// (norms, RoPE: a few microseconds at batch 4-32), much shorter than the pause between two
// decode steps while JavaScript handles results. It was 50 us: bench:pool (3 rounds, batches
// 4-32, other work on the machine) measured 20 us at 6-13% less CPU per token, the spinning
// itself from 3.1-8.3 down to 1.2-3.4 CPU ms per step, and no slower steps.
constexpr int64_t kDefaultSpinNs = 20'000;
// EL_POOL_WAIT=legacy: the earlier waits, 20,000 pause instructions (about 2 ms on this
// project's Zen 4 EPYC test machine), then yields for the caller and wait_until.
constexpr int kLegacySpinIterations = 20000;
// Between two clock reads while spinning (a read costs up to 0.1 us on a VM).
constexpr int kSpinsPerClockRead = 16;
// wait_until waits for rows another thread is computing, up to one chunk of a projection
// (about 0.3 ms at batch 16 on the bench model), so it spins this many times longer before
// sleeping between polls; past that the thread it waits for is most likely descheduled, for a
// time slice (milliseconds) rather than microseconds.
constexpr int64_t kWaitUntilSpinFactor = 10;
constexpr int64_t kPollSleepNs = 50'000;
constexpr uint64_t kClosed = uint64_t(1) << 16;
constexpr uint64_t kThreadsMask = kClosed - 1;
constexpr int kCounterShift = 17;
// Guided chunks stop shrinking at 1/(kMaxChunksPerThread nth) of the work: each chunk restarts
// its weight streams (about 2 us a chunk at decode, measured), and below that the restarts cost
// more than the balance gains (batch-8 decode was 5-17% slower with chunks down to 16 rows).
constexpr int64_t kMaxChunksPerThread = 8;

uint64_t counter_of(uint64_t state) { return state >> kCounterShift; }

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: what a wait costs, which its wall time overstates on a busy
// machine (a spinning thread may be descheduled). A system call (0.3-2.5 us on this project's
// VM), so only with EL_POOL_STATS=1.
int64_t thread_cpu_ns() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
#else
  return now_ns();
#endif
}

// Sleeps while *word == expected (or until a wake, a signal, or timeout_ns > 0 passes).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeout_ns = 0) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word is 32 bits");
#if defined(__linux__)
  timespec ts{time_t(timeout_ns / 1'000'000'000), long(timeout_ns % 1'000'000'000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout_ns > 0 ? &ts : nullptr,
          nullptr, 0);
#else  // no futex: poll (the pool's product targets are Linux)
  if (word.load(std::memory_order_acquire) == expected)
    std::this_thread::sleep_for(std::chrono::nanoseconds(timeout_ns > 0 ? std::min<int64_t>(timeout_ns, 50'000) : 50'000));
#endif
}

void futex_wake(std::atomic<uint32_t>& word, int count) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
#else
  (void)word;
  (void)count;
#endif
}

std::atomic<uint32_t>& futex_word(std::atomic<int>& a) {
  static_assert(sizeof(std::atomic<int>) == sizeof(std::atomic<uint32_t>), "a futex word is 32 bits");
  return reinterpret_cast<std::atomic<uint32_t>&>(a);
}

}  // namespace

thread_local ThreadPool::Current ThreadPool::current_{nullptr, nullptr};

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::clamp(n_threads, 1, int(kThreadsMask))),
      ranges_(new Range[size_t(n_threads_)]),
      counters_(new WaitCounters[size_t(n_threads_)]) {
  const char* wait = std::getenv("EL_POOL_WAIT");
  legacy_ = wait && std::strcmp(wait, "legacy") == 0;
  const char* spin_us = std::getenv("EL_POOL_SPIN_US");
  spin_ns_ = spin_us && *spin_us ? std::max<int64_t>(0, std::atoll(spin_us)) * 1000 : kDefaultSpinNs;
  const char* stats = std::getenv("EL_POOL_STATS");
  stats_ = stats && std::strcmp(stats, "1") == 0;
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  const uint64_t counter = counter_of(state_.load()) + 1;
  state_.store((counter << kCounterShift) | kClosed, std::memory_order_seq_cst);
  epoch_.store(uint32_t(counter), std::memory_order_seq_cst);
  futex_wake(epoch_, INT_MAX);
  for (auto& t : threads_) t.join();
}

ThreadPool::WaitStats ThreadPool::wait_stats() const {
  WaitStats out;
  for (int i = 0; i < n_threads_; ++i) {
    out.spin_ns += counters_[size_t(i)].spin_ns.load(std::memory_order_relaxed);
    out.sleep_ns += counters_[size_t(i)].sleep_ns.load(std::memory_order_relaxed);
    out.sleeps += counters_[size_t(i)].sleeps.load(std::memory_order_relaxed);
  }
  return out;
}

template <class Ready>
bool ThreadPool::spin(Ready&& ready, WaitCounters& c, int64_t budget_ns) const {
  const int64_t t0 = now_ns(), cpu0 = cpu_mark();
  bool ok = false;
  if (legacy_) {
    for (int spins = 0; !(ok = ready()) && spins < kLegacySpinIterations; ++spins) EL_CPU_RELAX();
  } else {
    for (int64_t t = t0; !(ok = ready()) && t - t0 < budget_ns;) {
      for (int i = 0; i < kSpinsPerClockRead; ++i) EL_CPU_RELAX();
      t = now_ns();
    }
  }
  c.add(c.spin_ns, cpu_mark() - cpu0);
  return ok;
}

int64_t ThreadPool::cpu_mark() const { return stats_ ? thread_cpu_ns() : 0; }
int64_t ThreadPool::wall_mark() const { return stats_ ? now_ns() : 0; }

void ThreadPool::wait_slow(bool (*done)(void* ctx), void* ctx) {
  const Current cur = current_;
  if (!cur.pool) {  // outside a dispatch: nothing to count, nothing to sleep for
    while (!done(ctx)) EL_CPU_RELAX();
    return;
  }
  if (cur.pool->spin([&] { return done(ctx); }, *cur.counters, cur.pool->spin_ns_ * kWaitUntilSpinFactor)) return;
  WaitCounters& c = *cur.counters;
  const ThreadPool& pool = *cur.pool;
  const int64_t t0 = pool.wall_mark(), cpu0 = pool.cpu_mark();
  while (!done(ctx)) {
    if (cur.pool->legacy_) {
      std::this_thread::yield();
    } else {
      c.add(c.sleeps, 1);
      std::this_thread::sleep_for(std::chrono::nanoseconds(kPollSleepNs));
    }
  }
  if (pool.legacy_) c.add(c.spin_ns, pool.cpu_mark() - cpu0);  // a yield loop burns CPU
  else c.add(c.sleep_ns, pool.wall_mark() - t0);
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
  const Current outer = current_;
  current_ = Current{this, &counters_[0]};
  // Range i is [n i / nth, n (i + 1) / nth), its inner ends rounded down to the grain.
  for (int i = 0; i < nth; ++i)
    ranges_[size_t(i)].ends.store(
        ends_of(range_begin(i, nth, job.n, job.grain), range_begin(i + 1, nth, job.n, job.grain)),
        std::memory_order_relaxed);
  const uint64_t counter = counter_of(state_.load(std::memory_order_relaxed)) + 1;
  const uint64_t open = (counter << kCounterShift) | uint64_t(nth);
  state_.store(open, std::memory_order_seq_cst);  // publishes job_ and the ranges
  epoch_.store(uint32_t(counter), std::memory_order_seq_cst);
  // seq_cst with the sleeper's increment then load of epoch_: either it sees the new epoch
  // and does not sleep, or we see it counted and wake it (all sleepers, one syscall).
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake(epoch_, INT_MAX);
  run_chunks(job, 0);
  // Close the dispatch: a helper that has not joined yet now never will, and the job's
  // data (on the caller's stack) stays valid until the ones inside have left.
  state_.store(open | kClosed, std::memory_order_seq_cst);
  WaitCounters& c = counters_[0];
  if (active_.load(std::memory_order_seq_cst) != 0 &&
      !spin([&] { return active_.load(std::memory_order_seq_cst) == 0; }, c, spin_ns_)) {
    const int64_t t0 = wall_mark(), cpu0 = cpu_mark();
    if (legacy_) {
      while (active_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
      c.add(c.spin_ns, cpu_mark() - cpu0);
    } else {
      // The last helper out wakes us when it sees caller_asleep_ (the same pairing as above).
      c.add(c.sleeps, 1);
      caller_asleep_.store(1, std::memory_order_seq_cst);
      for (int a; (a = active_.load(std::memory_order_seq_cst)) != 0;) futex_wait(futex_word(active_), uint32_t(a));
      caller_asleep_.store(0, std::memory_order_relaxed);
      c.add(c.sleep_ns, wall_mark() - t0);
    }
  }
  current_ = outer;
}

void ThreadPool::worker_loop(int ith) {
  current_ = Current{this, &counters_[size_t(ith)]};
  WaitCounters& c = counters_[size_t(ith)];
  uint64_t seen = 0;  // counter of the last dispatch this thread looked at
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (counter_of(s) == seen &&
        !spin([&] { return counter_of(s = state_.load(std::memory_order_acquire)) != seen; }, c, spin_ns_)) {
      const int64_t t0 = wall_mark();
      c.add(c.sleeps, 1);
      // epoch_ is stored just after state_, so it may still hold the dispatch before `seen`
      // (its caller descheduled between the two stores): sleep through that one too, until
      // a dispatch after `seen` is published; that dispatch's caller then sees us in sleepers_.
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      for (uint32_t e; (e = epoch_.load(std::memory_order_seq_cst)) == uint32_t(seen) || e == uint32_t(seen - 1);)
        futex_wait(epoch_, e);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      c.add(c.sleep_ns, wall_mark() - t0);
      s = state_.load(std::memory_order_acquire);
      if (counter_of(s) == seen) continue;  // never join the same dispatch twice
    }
    seen = counter_of(s);
    if (stop_.load(std::memory_order_acquire)) return;
    if ((s & kClosed) || ith >= int(s & kThreadsMask)) continue;
    // Join, then check the dispatch is still open (seq_cst pairs with the caller's close:
    // either it sees us in active_ and waits, or we see it closed and leave).
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (state_.load(std::memory_order_seq_cst) == s) run_chunks(job_, ith);
    if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_asleep_.load(std::memory_order_seq_cst))
      futex_wake(futex_word(active_), 1);
  }
}

}  // namespace el
