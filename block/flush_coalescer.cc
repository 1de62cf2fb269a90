// strata: FlushCoalescer (flush_coalescer.h).
#include "block/flush_coalescer.h"

#include <utility>

namespace strata {

FlushCoalescer::Turn::~Turn() {
  if (owner_ != nullptr) owner_->EndTurn();
}

void FlushCoalescer::Turn::Succeeded(uint64_t generation) {
  if (owner_ == nullptr) return;
  absl::MutexLock lock(&owner_->mu_);
  owner_->turn_covers_ = generation;
}

void FlushCoalescer::EndTurn() {
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    // The mark never moves backwards.
    if (turn_covers_ && (!covered_through_ || *turn_covers_ > *covered_through_)) {
      covered_through_ = turn_covers_;
    }
    turn_covers_.reset();
    running_ = false;
    waiters.swap(waiters_);
  }
  // Every waiter looks again: the covered ones return, one of the rest takes the turn and
  // the others park behind it.
  for (const Waiter& w : waiters) w.context->Post(w.handle);
}

bool FlushCoalescer::AwaitTurn::await_suspend(std::coroutine_handle<> h) {
  absl::MutexLock lock(&self->mu_);
  if (!self->running_) return false;  // ended meanwhile: look again at once
  self->waiters_.push_back({aio::IoContext::Current(), h});
  return true;
}

aio::Task<FlushCoalescer::Turn> FlushCoalescer::CoTakeTurn(uint64_t generation) {
  // Only a flush that waited may be covered: it and the flush that covered it were both
  // in flight together, so no control operation (which quiesces the node first) can have
  // changed the driver's state between them behind the write generations' back.
  for (bool waited = false;; waited = true) {
    {
      absl::MutexLock lock(&mu_);
      if (waited && CoveredLocked(generation)) co_return Turn();
      if (!running_) {
        running_ = true;
        co_return Turn(this);
      }
    }
    co_await AwaitTurn{this};
  }
}

}  // namespace strata
