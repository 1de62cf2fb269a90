// strata: SerialisedRanges (serialised_ranges.h).
#include "block/serialised_ranges.h"

#include <utility>

namespace strata {

bool SerialisedRanges::FreeLocked(uint64_t begin, uint64_t end) const {
  for (const Range& r : held_) {
    if (r.begin < end && begin < r.end) return false;
  }
  return true;
}

void SerialisedRanges::Begin(uint64_t begin, uint64_t end) {
  absl::MutexLock lock(&mu_);
  const RangeFree free{this, begin, end};
  mu_.Await(absl::Condition(&free, &RangeFree::Holds));
  held_.push_back({begin, end});
}

bool SerialisedRanges::TryBegin(uint64_t begin, uint64_t end) {
  absl::MutexLock lock(&mu_);
  if (!FreeLocked(begin, end)) return false;
  held_.push_back({begin, end});
  return true;
}

bool SerialisedRanges::AwaitRelease::await_suspend(std::coroutine_handle<> h) {
  absl::MutexLock lock(&self->mu_);
  aio::IoContext* loop = aio::IoContext::Current();
  if (loop == nullptr) {  // an inline caller: its thread may block
    const RangeFree free{self, begin, end};
    self->mu_.Await(absl::Condition(&free, &RangeFree::Holds));
    return false;
  }
  if (self->FreeLocked(begin, end)) return false;  // ended meanwhile: try again at once
  self->waiters_.push_back({loop, h});
  return true;
}

void SerialisedRanges::End(uint64_t begin, uint64_t end) {
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->begin == begin && it->end == end) {
        held_.erase(it);
        break;
      }
    }
    waiters.swap(waiters_);
  }
  // Every parked coroutine looks again; those still overlapping park anew.
  for (const Waiter& w : waiters) w.context->Post(w.handle);
}

}  // namespace strata
