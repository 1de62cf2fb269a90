// strata aio: BlockingPool, a fixed set of threads for work that blocks.
//
// The request path never blocks a loop thread: a driver path that still does synchronous
// I/O runs here and its coroutine resumes on its loop afterwards (offload.h).
//
// Size: threads start when work arrives and none is idle, up to `max` (work that blocks
// may wait for other work, so a fixed size could deadlock); the first `base` stay, later
// ones exit after a few idle seconds. The
// thread count follows the blocking work in flight, not the queue depth: requests served
// natively by the loops (most reads and overwrites) use no pool thread.
//
// Two shared pools: Shared() for offloaded driver work (base 8 or STRATA_AIO_POOL_THREADS,
// max 64, as QEMU's thread pool), and SharedIo() for the `threads` engine's file
// operations, which only ever wait for the kernel (so they always make progress, whatever
// the offloaded work waits for).
#ifndef STRATA_AIO_BLOCKING_POOL_H_
#define STRATA_AIO_BLOCKING_POOL_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace strata::aio {

class BlockingPool {
 public:
  BlockingPool(int base_threads, int max_threads);
  // Finishes the queued work, then waits for the threads to leave.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // The process's shared pools, created on first use.
  static BlockingPool& Shared();
  static BlockingPool& SharedIo();
  // Sets Shared()'s base size; only before its first use. Returns false after it.
  static bool SetSharedSize(int threads);
  static int DefaultSize();

  // Runs `work` on one of the threads, in submission order as threads free up. Any
  // thread may call this.
  void Run(absl::AnyInvocable<void() &&> work);

  // Threads alive now.
  int size();
  // Work items handed to Run since the pool was made (tests count offloads with it).
  uint64_t runs();

 private:
  // `extra`: an added thread, which exits after an idle period.
  void WorkerLoop(bool extra);

  const int base_, max_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int alive_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t runs_ ABSL_GUARDED_BY(mu_) = 0;

};

}  // namespace strata::aio

#endif  // STRATA_AIO_BLOCKING_POOL_H_
