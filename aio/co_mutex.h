// strata aio: CoMutex, a lock that coroutines wait for by parking and threads by blocking.
//
//   aio::CoMutex mu;
//   (void)co_await mu.Acquire();    // a coroutine on a loop parks while the lock is held
//   ... co_await some I/O ...       // the holder may keep it across suspensions
//   mu.Unlock();
//
//   aio::CoMutexLock lock(&mu);     // a thread that is not a loop blocks instead
//
// Why not absl::Mutex: a metadata lock held across I/O by a coroutine would make every
// other request that needs it block its loop thread, and a loop thread blocked on it
// while a coroutine of that same loop holds it would wait forever. Here a waiting
// coroutine costs no thread: it is queued, and when the lock is released it is resumed
// on its own loop to take it. A blocked thread is handed the lock directly; a coroutine
// never is, as it may wait behind work its loop's thread is running: were it handed the
// lock, that thread blocking for the same lock (synchronous code run inline on the loop)
// would wait for it forever.
//
// Contract:
// - A loop thread never calls Lock() or Await() (blocking): if a coroutine of that loop
//   held the lock, the loop would wait for itself. Acquire() is safe anywhere (off a loop
//   it blocks like Lock()).
// - The lock belongs to whoever acquired it, not to a thread: a coroutine may release it
//   on another thread than the one it acquired it on.
// - Writes made under the lock are visible to the next holder, however it acquired it.
#ifndef STRATA_AIO_CO_MUTEX_H_
#define STRATA_AIO_CO_MUTEX_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "aio/io_context.h"
#include "aio/task.h"

namespace strata::aio {

class ABSL_LOCKABLE CoMutex {
 public:
  CoMutex() = default;
  CoMutex(const CoMutex&) = delete;
  CoMutex& operator=(const CoMutex&) = delete;

  // Blocks the calling thread until it holds the lock. Not on a loop thread.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION();
  // Takes the lock if it is free and nobody is queued for it.
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);
  // Releases the lock, handing it to the first queued waiter if there is one.
  void Unlock() ABSL_UNLOCK_FUNCTION();
  // For the analysis: callers whose holding it cannot see (a coroutine after Acquire).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

  // Releases the lock until `ready()` holds, then returns with it held again, as
  // absl::Mutex::Await. `ready` runs with the lock held, after each release by another
  // holder. Blocking: not on a loop thread.
  void Await(absl::FunctionRef<bool()> ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this);

  // `(void)co_await mu.Acquire();` returns with the lock held (the status is always
  // OK): at once if it is free; on a loop, after parking until a release (then it tries
  // again); off a loop (no current IoContext), by blocking. The analysis cannot follow a
  // co_await: callers wrap it in a function annotated ABSL_EXCLUSIVE_LOCK_FUNCTION.
  Task<absl::Status> Acquire();

 private:
  // One attempt: ready with the lock if it is free (or, off a loop, once blocking got
  // it); otherwise the coroutine is queued and resumed at the next release, and
  // await_resume says whether it holds the lock (false: try again).
  class Attempt {
   public:
    explicit Attempt(CoMutex* mu) : mu_(mu) {}
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    bool await_resume() noexcept { return acquired_; }

   private:
    CoMutex* mu_;
    bool acquired_ = false;
  };

  // A queued acquirer: a coroutine (resumed on `context`) or a blocked thread (`granted`
  // set under queue_mu_ when the lock is handed to it).
  struct Waiter {
    IoContext* context = nullptr;
    std::coroutine_handle<> handle;
    bool* granted = nullptr;
  };
  // queue_mu_ held: takes the lock if free (true), else queues `w` (false).
  bool AcquireOrQueueLocked(const Waiter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // queue_mu_ held, the lock held by the caller: wakes every queued coroutine to try
  // again, and hands the lock to the first blocked thread, or frees it; counts a release
  // for Await's waiters.
  void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);

  // 0: free (nobody queued); 1: held, nobody queued; 2: held, waiters may be queued (the
  // releaser must look at the queue). Changed from 2, and to 2, only under queue_mu_.
  std::atomic<int> state_{0};
  // Threads inside Await: while any, every release is counted in releases_.
  std::atomic<int> condition_waiters_{0};
  absl::Mutex queue_mu_;
  std::deque<Waiter> waiters_ ABSL_GUARDED_BY(queue_mu_);
  uint64_t releases_ ABSL_GUARDED_BY(queue_mu_) = 0;
};

// Holds a CoMutex for a scope, blocking to take it (not on a loop thread).
class ABSL_SCOPED_LOCKABLE CoMutexLock {
 public:
  explicit CoMutexLock(CoMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~CoMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  CoMutexLock(const CoMutexLock&) = delete;
  CoMutexLock& operator=(const CoMutexLock&) = delete;

 private:
  CoMutex* const mu_;
};

}  // namespace strata::aio

#endif  // STRATA_AIO_CO_MUTEX_H_
