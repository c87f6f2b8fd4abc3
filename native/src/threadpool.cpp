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

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
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
  job_nth_ = nth;
  // Every helper thread acknowledges each generation (idle ones too), so that none can
  // still be reading job_* when the next dispatch overwrites them.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
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
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    if (ith < job_nth_) job_fn_(job_ctx_, ith, job_nth_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace el
