// strata aio: CoMutex (see co_mutex.h).
//
// The uncontended paths are one compare-and-swap each (TryLock 0->1, Unlock 1->0).
// Everything else goes through queue_mu_: a contender marks the lock contended (1->2)
// and queues itself in one critical section, so a releaser that finds 2 takes queue_mu_
// and is sure to see the queue. A blocked thread is handed the lock without it being
// freed; queued coroutines are all woken to try again (the lock is free for them unless
// a thread was handed it), which keeps "free" meaning "nobody queued".
#include "aio/co_mutex.h"

namespace strata::aio {

// The analysis checks CoMutex's callers; these definitions implement the lock itself
// (state_ is the lock; queue_mu_ is taken and released inside), which it cannot follow.

bool CoMutex::TryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int expected = 0;
  return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void CoMutex::Lock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (TryLock()) return;
  bool granted = false;
  absl::MutexLock lock(&queue_mu_);
  if (AcquireOrQueueLocked(Waiter{nullptr, {}, &granted})) return;
  queue_mu_.Await(absl::Condition(&granted));
}

void CoMutex::Unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int expected = 1;
  if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                     std::memory_order_relaxed)) {
    if (condition_waiters_.load(std::memory_order_acquire) == 0) return;
    absl::MutexLock lock(&queue_mu_);
    ++releases_;
    return;
  }
  absl::MutexLock lock(&queue_mu_);
  ReleaseLocked();
}

bool CoMutex::AcquireOrQueueLocked(const Waiter& w) {
  int s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (s == 0) {
      // Free: the queue is empty (it is freed only with no waiter, under queue_mu_).
      if (state_.compare_exchange_weak(s, 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
      continue;
    }
    if (s == 1 && !state_.compare_exchange_weak(s, 2, std::memory_order_relaxed,
                                                std::memory_order_relaxed)) {
      continue;  // released or contended meanwhile: look again
    }
    waiters_.push_back(w);
    return false;
  }
}

void CoMutex::ReleaseLocked() {
  ++releases_;
  std::deque<Waiter> threads;
  for (const Waiter& w : waiters_) {
    if (w.granted != nullptr) {
      threads.push_back(w);
    } else {
      w.context->Post(w.handle);  // tries again on its loop
    }
  }
  waiters_.swap(threads);
  if (waiters_.empty()) {
    state_.store(0, std::memory_order_release);
    return;
  }
  const Waiter w = waiters_.front();
  waiters_.pop_front();
  // The lock passes to the thread without being freed; its Await on queue_mu_ sees
  // `granted` when we release queue_mu_.
  state_.store(waiters_.empty() ? 1 : 2, std::memory_order_release);
  *w.granted = true;
}

void CoMutex::Await(absl::FunctionRef<bool()> ready) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  while (!ready()) {
    {
      absl::MutexLock lock(&queue_mu_);
      condition_waiters_.fetch_add(1, std::memory_order_acq_rel);
      ReleaseLocked();
      // Every release from here on (by whoever holds the lock next) is counted.
      const uint64_t seen = releases_;
      struct Changed {
        const uint64_t* releases;
        uint64_t seen;
      } changed{&releases_, seen};
      queue_mu_.Await(absl::Condition(
          +[](Changed* c) ABSL_NO_THREAD_SAFETY_ANALYSIS { return *c->releases != c->seen; }, &changed));
      condition_waiters_.fetch_sub(1, std::memory_order_acq_rel);
    }
    Lock();
  }
}

Task<absl::Status> CoMutex::Acquire() {
  // A named awaiter and a plain loop: g++ 12 mishandles a temporary awaiter awaited in a
  // loop condition (the coroutine was never resumed).
  for (;;) {
    Attempt attempt(this);
    if (co_await attempt) break;
  }
  co_return absl::OkStatus();
}

bool CoMutex::Attempt::await_ready() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (mu_->TryLock()) {
    acquired_ = true;
  } else if (IoContext::Current() == nullptr) {
    mu_->Lock();
    acquired_ = true;
  }
  return acquired_;
}

bool CoMutex::Attempt::await_suspend(std::coroutine_handle<> h) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&mu_->queue_mu_);
  // Taken meanwhile: go on at once, holding it. Queued: resumed by a releaser's Post.
  acquired_ = mu_->AcquireOrQueueLocked(Waiter{IoContext::Current(), h, nullptr});
  return !acquired_;
}

}  // namespace strata::aio
