// strata aio: BlockingPool, a fixed set of threads for work that blocks.
//
// The request path never blocks a loop thread: a syscall without an io_uring operation,
// or a driver path that still does synchronous I/O, runs here and its coroutine resumes
// on its loop afterwards (offload.h). The `threads` engine runs every file operation
// here. The pool has a fixed size (set before first use; default 8, or the environment
// variable STRATA_AIO_POOL_THREADS), so the thread count of a process does not grow with
// its queue depth.
#ifndef STRATA_AIO_BLOCKING_POOL_H_
#define STRATA_AIO_BLOCKING_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace strata::aio {

class BlockingPool {
 public:
  explicit BlockingPool(int threads);
  // Finishes the queued work, then joins the threads.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // The process's shared pool, created on first use with DefaultSize() threads.
  static BlockingPool& Shared();
  // Sets the shared pool's size; only before its first use. Returns false after it.
  static bool SetSharedSize(int threads);
  static int DefaultSize();

  // Runs `work` on one of the threads, in submission order as threads free up. Any
  // thread may call this.
  void Run(absl::AnyInvocable<void() &&> work);

  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void WorkerLoop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace strata::aio

#endif  // STRATA_AIO_BLOCKING_POOL_H_
