// A persistent pool of compute threads. The calling thread is worker 0; n-1 helper threads
// wait for work by spinning briefly (so back-to-back dispatches of one forward pass cost
// no wake-up) and then sleeping on a condition variable (so an idle engine burns no CPU).
// One dispatch at a time: run() is not reentrant and must be called from one thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace el {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 65535
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(ith, nth) for ith in [0, nth) on nth threads (the caller is ith 0) and returns
  // when all calls have returned. nth is clamped to [1, size()]; nth == 1 runs inline.
  template <class F>
  void run(int nth, F&& fn) {
    if (nth > n_threads_) nth = n_threads_;
    if (nth <= 1) {
      fn(0, 1);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    dispatch(nth, [](void* ctx, int ith, int n) { (*static_cast<Fn*>(ctx))(ith, n); }, &fn);
  }

  // Splits [0, n) into nth contiguous chunks whose bounds are multiples of `align`
  // (except the end) and calls fn(begin, end) for each non-empty chunk.
  template <class F>
  void parallel_for(int nth, int64_t n, int64_t align, F&& fn) {
    run(nth, [&](int ith, int nt) {
      int64_t begin, end;
      split_range(n, align, ith, nt, begin, end);
      if (begin < end) fn(begin, end);
    });
  }

  static void split_range(int64_t n, int64_t align, int ith, int nth, int64_t& begin, int64_t& end);

 private:
  using Trampoline = void (*)(void* ctx, int ith, int nth);
  void dispatch(int nth, Trampoline fn, void* ctx);
  void worker_loop(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;

  // Published job; workers read these after seeing a new generation (acquire).
  Trampoline job_fn_ = nullptr;
  void* job_ctx_ = nullptr;

  // (dispatch count << 16) | threads in the job.
  // Each hot atomic on its own cache line: workers poll generation_ while the caller
  // polls pending_, and neither should invalidate the other's line.
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace el
