// A persistent pool of compute threads. The calling thread always takes part; helper
// threads wait for work by spinning briefly (so back-to-back dispatches of one forward pass
// cost no wake-up) and then sleeping in the kernel (a futex on Linux), so the gaps between
// decode steps, and a helper descheduled on a busy machine, cost no CPU time. A dispatch wakes
// sleeping helpers with one syscall, only when one sleeps. The caller's wait for helpers still
// inside a dispatch, and wait_until, spin for a bounded time and then sleep too.
//
// Work is split into chunks that participants claim, so the caller never waits for a helper
// that has not started (on a busy machine a descheduled helper would otherwise stall every
// dispatch): it runs the unclaimed chunks itself and waits only for chunks already in
// progress. Each thread owns one contiguous range of the indices (range ith of nth equal
// ones) and claims it from the front, half of what is left at a time; once it is empty, the
// thread takes the back half of what is left of the fullest other range, until none is left.
// So a thread's chunks are mostly one ascending run (its weight rows are one long stream, and
// the rows it wrote are the ones it reads again: project()'s LoRA expands), and the threads
// still finish together: the last chunks are short. Chunks stop shrinking at 1/(8 nth) of
// the work, where restarting streams starts to cost more than the balance gains.
// One dispatch at a time, from one thread.
//
// Benchmark switches (read when a pool is created; bench:pool compares them in one process):
// EL_POOL_WAIT=legacy restores the earlier waits (20,000 pause instructions, then helpers sleep
// but the caller and wait_until yield until done); EL_POOL_SPIN_US sets the spin budget;
// EL_POOL_STATS=1 times the waits (wait_stats).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace el {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // clamped to [1, 65535]
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // How the threads waited, summed over them since the pool was created: CPU time spent
  // polling (for a dispatch, for helpers to finish, in wait_until; the thread's CPU clock),
  // wall time asleep in the kernel (counted on waking), both only with EL_POOL_STATS=1 (the
  // clocks cost system calls), and times gone to sleep (on going; always).
  struct WaitStats {
    int64_t spin_ns = 0;
    int64_t sleep_ns = 0;
    int64_t sleeps = 0;
  };
  WaitStats wait_stats() const;
  // The waits this pool was created with (EL_POOL_WAIT, EL_POOL_SPIN_US).
  bool legacy_waits() const { return legacy_; }
  bool wait_stats_on() const { return stats_; }
  int64_t spin_ns() const { return spin_ns_; }

  // Calls fn(begin, end, ith) for chunks covering [0, n) once, on up to nth
  // threads; ith in [0, nth) names the thread running the call (the caller is 0), for
  // per-thread scratch. Every chunk starts at a multiple of `grain` and, but for one ending at
  // n, is a multiple of it; a chunk is never under grain or 1/(8 nth) of n, except the last
  // piece of a range. Returns when every chunk is done. nth <= 1 runs the chunks inline, in
  // order, each about a quarter of what is left (chunk_end), as does n > kMaxIndices.
  template <class F>
  void parallel_for(int nth, int64_t n, int64_t grain, F&& fn) {
    parallel_for(nth, n, grain, std::forward<F>(fn), nullptr);
  }

  // The same, then each thread that took part calls then(ith) once it finds no chunk left:
  // a second phase on the first's threads without a second dispatch (nothing runs for n <= 0).
  // It may wait (wait_until) for chunks still running on other threads: every chunk is
  // claimed by then, and a claimed chunk is always running.
  template <class F, class Then>
  void parallel_for(int nth, int64_t n, int64_t grain, F&& fn, Then&& then) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (nth > n_threads_) nth = n_threads_;
    using Fn = std::remove_reference_t<F>;
    using ThenFn = std::remove_reference_t<Then>;
    constexpr bool has_then = !std::is_same_v<std::decay_t<Then>, std::nullptr_t>;
    if (ranges(nth, n, grain) == 1) {
      for (int64_t b = 0; b < n;) {
        const int64_t e = chunk_end(b, n, grain, 1);
        fn(b, e, 0);
        b = e;
      }
      if constexpr (has_then) then(0);
      return;
    }
    Job job{[](void* ctx, int64_t b, int64_t e, int ith) { (*static_cast<Fn*>(ctx))(b, e, ith); }, &fn, nullptr,
            nullptr, n, grain, nth};
    if constexpr (has_then) {
      job.then = [](void* ctx, int ith) { (*static_cast<ThenFn*>(ctx))(ith); };
      job.then_ctx = &then;
    }
    dispatch(nth, job);
  }

  // Polls done() until it holds, spinning for ten times the pool's budget and then sleeping
  // briefly between polls: for work that waits on chunks other threads are running, such as results
  // their earlier chunks publish. Only from inside a dispatch (fn or then).
  template <class Done>
  static void wait_until(Done&& done) {
    if (done()) return;
    wait_slow([](void* ctx) { return bool((*static_cast<std::remove_reference_t<Done>*>(ctx))()); }, &done);
  }

  // The guided chunk that starts at `begin` (a multiple of grain), as the inline path cuts it.
  static int64_t chunk_end(int64_t begin, int64_t n, int64_t grain, int nth);
  // The ranges of a dispatch (parallel_for(nth, n, grain, ...)): how many (one per thread that
  // may take part; 1 when it runs inline), and where range i starts (range count ends at n).
  // A chunk never spans two ranges.
  int ranges(int nth, int64_t n, int64_t grain) const {
    nth = std::min(nth, n_threads_);
    return nth <= 1 || n <= std::max<int64_t>(grain, 1) || n > kMaxIndices ? 1 : nth;
  }
  static int64_t range_begin(int i, int count, int64_t n, int64_t grain) {
    grain = std::max<int64_t>(grain, 1);
    return i >= count ? n : n * i / count / grain * grain;
  }
  // Where the range [front, back) of a dispatch of n indices on nth threads is cut: its owner
  // claims [front, cut) from the front (own_cut), another thread [cut, back) from the back
  // (steal_cut). Both leave half of the range, on the grain, and take at least
  // max(grain, n / (8 nth)) or all of it.
  static int64_t own_cut(int64_t front, int64_t back, int64_t n, int64_t grain, int nth);
  static int64_t steal_cut(int64_t front, int64_t back, int64_t n, int64_t grain, int nth);

 private:
  static constexpr int64_t kMaxIndices = 0xffffffff;  // a range's ends are 32-bit (Range)

  // One thread's wait counters, written only by that thread.
  struct alignas(64) WaitCounters {
    std::atomic<int64_t> spin_ns{0}, sleep_ns{0}, sleeps{0};
    void add(std::atomic<int64_t>& c, int64_t v) { c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed); }
  };
  // The pool and counters of the dispatch the calling thread is in (for wait_until).
  struct Current {
    const ThreadPool* pool;
    WaitCounters* counters;
  };
  static thread_local Current current_;
  static void wait_slow(bool (*done)(void* ctx), void* ctx);
  // Spins until ready() or budget_ns is spent (legacy: 20,000 pauses); true when ready.
  template <class Ready>
  bool spin(Ready&& ready, WaitCounters& c, int64_t budget_ns) const;
  int64_t cpu_mark() const;   // the thread's CPU clock with EL_POOL_STATS=1, else 0
  int64_t wall_mark() const;  // the wall clock with EL_POOL_STATS=1, else 0

  struct Job {
    void (*fn)(void* ctx, int64_t begin, int64_t end, int ith);
    void* ctx;
    void (*then)(void* ctx, int ith);  // optional second phase
    void* then_ctx;
    int64_t n;
    int64_t grain;
    int nth;
  };
  void dispatch(int nth, const Job& job);
  void run_chunks(const Job& job, int ith);
  void worker_loop(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  Job job_{};  // written before a dispatch is published, read by the threads that join it

  // state_ = (dispatch counter << 17) | (closed << 16) | threads allowed in the dispatch.
  // Each hot atomic on its own cache line.
  alignas(64) std::atomic<uint64_t> state_{0};
  // Per thread, the part of its range no one has claimed: front in the low 32 bits, back in
  // the high 32, so that a claim from either end is one compare-and-swap.
  struct alignas(64) Range {
    std::atomic<uint64_t> ends{0};
  };
  std::unique_ptr<Range[]> ranges_;
  std::unique_ptr<WaitCounters[]> counters_;  // per thread
  alignas(64) std::atomic<int> active_{0};  // helpers inside the current dispatch (a futex word)
  alignas(64) std::atomic<int> caller_asleep_{0};  // the caller sleeps until active_ is 0
  // The dispatch counter's low 32 bits, stored after state_: the futex word helpers sleep on.
  alignas(64) std::atomic<uint32_t> epoch_{0};
  std::atomic<int> sleepers_{0};  // helpers asleep on epoch_
  std::atomic<bool> stop_{false};
  bool legacy_ = false;
  bool stats_ = false;
  int64_t spin_ns_ = 0;
};

}  // namespace el
