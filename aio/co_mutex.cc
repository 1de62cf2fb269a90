// strata aio: CoMutex (see co_mutex.h).
//
// The uncontended paths are one compare-and-swap each (TryLock kFree->kHeld or
// kFreeWaiters->kHeldWaiters, Unlock kHeld->kFree). Everything else goes through
// queue_mu_: a contender marks the lock as waited for (kHeld->kHeldWaiters) and queues
// itself in one critical section, so a releaser that finds kHeldWaiters takes queue_mu_
// and is sure to see the queue. While anyone waits the state never returns to kFree or
// kHeld (only a releaser, under queue_mu_, clears the mark), so no release can miss them.
#include "aio/co_mutex.h"

namespace strata::aio {

// The analysis checks CoMutex's callers; these definitions implement the lock itself
// (state_ is the lock; queue_mu_ is taken and released inside), which it cannot follow.

bool CoMutex::TryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int s = kFree;
  if (state_.compare_exchange_strong(s, kHeld, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    return true;
  }
  // Free while others wait: take it and leave the mark, so our release looks at them.
  return s == kFreeWaiters &&
         state_.compare_exchange_strong(s, kHeldWaiters, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void CoMutex::LockBlocking(bool retry) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!retry && TryLock()) return;
  absl::MutexLock lock(&queue_mu_);
  for (;;) {
    if (AcquireOrMarkWaitedLocked()) return;
    bool woken = false;
    if (retry) {
      threads_.push_front(&woken);
    } else {
      threads_.push_back(&woken);
    }
    queue_mu_.Await(absl::Condition(&woken));
    retry = true;
  }
}

void CoMutex::Unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int expected = kHeld;
  if (state_.compare_exchange_strong(expected, kFree, std::memory_order_release,
                                     std::memory_order_relaxed)) {
    return;
  }
  std::optional<CoroutineWaiter> wake;
  {
    absl::MutexLock lock(&queue_mu_);
    wake = ReleaseLocked();
  }
  // Nothing of *this from here on: the woken request may be the lock owner's last.
  if (wake) wake->context->Post(wake->handle);
}

bool CoMutex::AcquireOrMarkWaitedLocked() {
  int s = state_.load(std::memory_order_acquire);
  for (;;) {
    switch (s) {
      case kFree:
        // Nobody waits; only the fast paths race with us here.
        if (state_.compare_exchange_weak(s, kHeld, std::memory_order_acquire,
                                         std::memory_order_acquire)) {
          return true;
        }
        continue;
      case kFreeWaiters:
        // Free while others wait (TryLock may take it meanwhile, keeping the mark).
        if (state_.compare_exchange_weak(s, AnyWaiterLocked() ? kHeldWaiters : kHeld,
                                         std::memory_order_acquire,
                                         std::memory_order_acquire)) {
          return true;
        }
        continue;
      case kHeld:
        if (!state_.compare_exchange_weak(s, kHeldWaiters, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
          continue;  // released meanwhile: look again
        }
        return false;
      default:  // kHeldWaiters
        return false;
    }
  }
}

std::optional<CoMutex::CoroutineWaiter> CoMutex::ReleaseLocked() {
  // The caller holds the lock: the state is kHeld or kHeldWaiters, and only we change it.
  bool woke_thread = false;
  for (auto it = condition_waiters_.begin(); it != condition_waiters_.end(); ++it) {
    if (!(*it->ready)()) continue;
    *it->woken = true;  // its thread sees it once we release queue_mu_
    condition_waiters_.erase(it);
    woke_thread = true;
    break;
  }
  if (!woke_thread && !threads_.empty()) {
    *threads_.front() = true;
    threads_.pop_front();
  }
  std::optional<CoroutineWaiter> wake;
  if (coroutines_on_their_way_ == 0 && !coroutines_.empty()) {
    wake = coroutines_.front();
    coroutines_.pop_front();
    ++coroutines_on_their_way_;
    ++coroutine_wakes_;
  }
  state_.store(AnyWaiterLocked() ? kFreeWaiters : kFree, std::memory_order_release);
  return wake;
}

void CoMutex::Await(absl::FunctionRef<bool()> ready) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  while (!ready()) {
    bool woken = false;
    std::optional<CoroutineWaiter> wake;
    {
      absl::MutexLock lock(&queue_mu_);
      condition_waiters_.push_back(ConditionWaiter{&ready, &woken});
      wake = ReleaseLocked();
    }
    if (wake) wake->context->Post(wake->handle);
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(&woken));
    }
    LockBlocking(/*retry=*/true);
  }
}

Task<absl::Status> CoMutex::Acquire() {
  // A named awaiter and a plain loop: g++ 12 mishandles a temporary awaiter awaited in a
  // loop condition (the coroutine was never resumed).
  for (bool retry = false;; retry = true) {
    Attempt attempt(this, retry);
    if (co_await attempt) break;
  }
  co_return absl::OkStatus();
}

bool CoMutex::Attempt::await_ready() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (IoContext::Current() == nullptr) {
    mu_->Lock();
    acquired_ = true;
  } else if (!retry_) {
    // A retry goes through the queue's lock: it must say it is back (await_suspend).
    acquired_ = mu_->TryLock();
  }
  return acquired_;
}

bool CoMutex::Attempt::await_suspend(std::coroutine_handle<> h) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&mu_->queue_mu_);
  if (retry_) --mu_->coroutines_on_their_way_;
  // Taken meanwhile: go on at once, holding it. Queued: resumed by a release.
  acquired_ = mu_->AcquireOrMarkWaitedLocked();
  if (acquired_) return false;
  const CoroutineWaiter w{IoContext::Current(), h};
  if (retry_) {
    mu_->coroutines_.push_front(w);
  } else {
    mu_->coroutines_.push_back(w);
  }
  return true;
}

}  // namespace strata::aio
