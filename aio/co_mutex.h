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
// coroutine costs no thread: it is queued, and a release wakes it on its own loop.
//
// Each release frees the lock and wakes at most two waiters to try again, so a release
// costs the same however many wait: a thread (one in Await whose condition now holds,
// else the first blocked one), and the first queued coroutine unless one woken earlier
// is still on its way. Nobody is handed the lock while asleep: that would leave it idle
// until the waiter's thread or loop runs (one wake-up latency per release: two loops
// contending for it would convoy), and a coroutine handed it could wait behind its own
// loop's thread blocked for the same lock, forever. Whoever comes first takes a free
// lock; a waiter that was woken and finds it taken queues again at the head.
//
// Contract:
// - A loop thread never calls Lock() or Await() (blocking) while a coroutine of its loop
//   may hold the lock: the loop would wait for itself. Acquire() is safe anywhere (off a
//   loop it blocks like Lock()).
// - The lock belongs to whoever acquired it, not to a thread: a coroutine may release it
//   on another thread than the one it acquired it on.
// - Writes made under the lock are visible to the next holder, however it acquired it.
#ifndef STRATA_AIO_CO_MUTEX_H_
#define STRATA_AIO_CO_MUTEX_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "aio/io_context.h"
#include "aio/task.h"

namespace strata::aio {

class ABSL_LOCKABLE CoMutex {
 public:
  CoMutex() = default;
  CoMutex(const CoMutex&) = delete;
  CoMutex& operator=(const CoMutex&) = delete;

  // Blocks the calling thread until it holds the lock. Not on a loop thread.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { LockBlocking(/*retry=*/false); }
  // Takes the lock if it is free (even while others wait: a free lock goes to whoever
  // comes first).
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);
  // Whether the lock is free right now (a plain load: spinners wait on it before they
  // try TryLock's compare-and-swap, which would take the cache line from the holder).
  bool LooksFree() const {
    const int s = state_.load(std::memory_order_relaxed);
    return s == kFree || s == kFreeWaiters;
  }
  // Releases the lock and wakes the first waiters, if any.
  void Unlock() ABSL_UNLOCK_FUNCTION();
  // For the analysis: callers whose holding it cannot see (a coroutine after Acquire).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

  // Releases the lock until `ready()` holds, then returns with it held again, as
  // absl::Mutex::Await. `ready` is evaluated with the lock held: by each later holder as
  // it releases the lock (on that holder's thread), which wakes this thread when it
  // holds; then again here. Blocking: not on a loop thread.
  void Await(absl::FunctionRef<bool()> ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this);

  // `(void)co_await mu.Acquire();` returns with the lock held (the status is always
  // OK): at once if it is free; on a loop, after parking until a release wakes it (then
  // it tries again, first in line); off a loop (no current IoContext), by blocking. The
  // analysis cannot follow a co_await: callers wrap it in a function annotated
  // ABSL_EXCLUSIVE_LOCK_FUNCTION.
  Task<absl::Status> Acquire();

  // Coroutines woken by releases so far, for tests of the cost of a release.
  uint64_t coroutine_wakes() {
    absl::MutexLock lock(&queue_mu_);
    return coroutine_wakes_;
  }

 private:
  // One attempt of Acquire: ready with the lock if it is free (or, off a loop, once
  // blocking got it); otherwise the coroutine is queued and resumed by a release, and
  // await_resume says whether it holds the lock (false: try again, with `retry`).
  class Attempt {
   public:
    Attempt(CoMutex* mu, bool retry) : mu_(mu), retry_(retry) {}
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    bool await_resume() noexcept { return acquired_; }

   private:
    CoMutex* mu_;
    bool retry_;
    bool acquired_ = false;
  };

  // A queued coroutine, resumed on `context`.
  struct CoroutineWaiter {
    IoContext* context;
    std::coroutine_handle<> handle;
  };
  // A thread in Await; `woken` is set by the first release that finds `ready` true.
  struct ConditionWaiter {
    absl::FunctionRef<bool()>* ready;
    bool* woken;
  };

  // Lock(), or a thread's next try after a wake-up (`retry`: queued at the head).
  void LockBlocking(bool retry) ABSL_EXCLUSIVE_LOCK_FUNCTION();
  // queue_mu_ held: takes the lock if it is free (true), else marks it waited for
  // (false), after which the caller queues itself before releasing queue_mu_.
  bool AcquireOrMarkWaitedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // queue_mu_ held, the lock held by the caller: frees it and wakes a thread and a
  // coroutine (see the top). The thread is woken here; the coroutine is returned, to be
  // posted once queue_mu_ is released.
  std::optional<CoroutineWaiter> ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // queue_mu_ held: whether the state must keep releases and acquirers on the slow path.
  bool AnyWaiterLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return !threads_.empty() || !coroutines_.empty() || !condition_waiters_.empty() ||
           coroutines_on_their_way_ > 0;
  }

  // kFree and kHeld: nobody waits, and the fast paths (TryLock, Unlock) may move between
  // them with one compare-and-swap. kHeldWaiters and kFreeWaiters: someone waits (or a
  // woken coroutine is on its way), and every change goes through queue_mu_, where the
  // queue is seen.
  enum State : int { kFree = 0, kHeld = 1, kHeldWaiters = 2, kFreeWaiters = 3 };
  std::atomic<int> state_{kFree};
  absl::Mutex queue_mu_;
  std::deque<bool*> threads_ ABSL_GUARDED_BY(queue_mu_);  // each set when woken
  std::deque<CoroutineWaiter> coroutines_ ABSL_GUARDED_BY(queue_mu_);
  std::vector<ConditionWaiter> condition_waiters_ ABSL_GUARDED_BY(queue_mu_);
  // Coroutines woken and not yet back for the lock.
  int coroutines_on_their_way_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t coroutine_wakes_ ABSL_GUARDED_BY(queue_mu_) = 0;
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
