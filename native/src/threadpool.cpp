#include "threadpool.h"

#include <algorithm>

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
// About 50-100 us of polling: longer than the single-threaded gaps inside one forward pass
// (norms, RoPE), far shorter than the pause between two decode calls.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::clamp(n_threads, 1, 0xFFFF)) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1 << 16, std::memory_order_seq_cst);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::split_range(int64_t n, int64_t align, int ith, int nth, int64_t& begin, int64_t& end) {
  if (align < 1) align = 1;
  const int64_t units = (n + align - 1) / align;
  const int64_t per = units / nth, extra = units % nth;
  const int64_t ub = ith * per + std::min<int64_t>(ith, extra);
  const int64_t ue = ub + per + (ith < extra ? 1 : 0);
  begin = std::min(n, ub * align);
  end = std::min(n, ue * align);
}

void ThreadPool::dispatch(int nth, Trampoline fn, void* ctx) {
  job_fn_ = fn;
  job_ctx_ = ctx;
  // The thread count travels in the generation word, so a thread outside this job never
  // reads job_* (which the next dispatch may be overwriting); the ones inside acknowledge.
  pending_.store(nth - 1, std::memory_order_relaxed);
  const uint64_t next = ((generation_.load(std::memory_order_relaxed) >> 16) + 1) << 16;
  generation_.store(next | uint64_t(nth), std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  fn(ctx, 0, nth);
  int spins = 0;
  while (pending_.load(std::memory_order_acquire) != 0) {
    if (++spins < kSpinIterations) EL_CPU_RELAX();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker_loop(int ith) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spins = 0; gen == seen && spins < kSpinIterations; ++spins) {
      EL_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    const int nth = int(gen & 0xFFFF);
    if (ith < nth) {
      job_fn_(job_ctx_, ith, nth);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace el
