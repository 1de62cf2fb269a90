// strata qcow2: the shared cache-clean timer thread (see qcow2_cache_cleaner.h).
#include "drivers/qcow2/qcow2_cache_cleaner.h"

#include "absl/time/clock.h"

namespace strata::qcow2 {

CacheCleaner::Registration& CacheCleaner::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    owner_ = other.owner_;
    id_ = other.id_;
    other.owner_ = nullptr;
  }
  return *this;
}

void CacheCleaner::Registration::Reset() {
  if (owner_ != nullptr) owner_->Unregister(id_);
  owner_ = nullptr;
}

CacheCleaner& CacheCleaner::Global() {
  static CacheCleaner cleaner;
  return cleaner;
}

CacheCleaner::Registration CacheCleaner::Register(absl::Duration interval,
                                                  std::function<void()> clean) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  entries_[id] = Entry{interval, absl::Now() + interval, std::move(clean)};
  changed_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  return Registration(this, id);
}

void CacheCleaner::Unregister(uint64_t id) {
  absl::MutexLock lock(&mu_);
  entries_.erase(id);
  changed_ = true;
  auto idle = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ != id; };
  mu_.Await(absl::Condition(&idle));
}

CacheCleaner::~CacheCleaner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CacheCleaner::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, e] : entries_) next = std::min(next, e.next);
    changed_ = false;
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || changed_; };
    mu_.AwaitWithDeadline(absl::Condition(&wake), next);
    if (stop_) break;
    // One due callback at a time, run without mu_ (it takes its image's lock; images
    // register under that lock). Unregister waits while its callback runs.
    const absl::Time now = absl::Now();
    for (auto it = entries_.begin(); it != entries_.end() && !stop_;) {
      if (it->second.next > now) {
        ++it;
        continue;
      }
      const uint64_t id = it->first;
      it->second.next = now + it->second.interval;
      std::function<void()> clean = it->second.clean;
      running_ = id;
      mu_.Unlock();
      clean();
      mu_.Lock();
      running_ = 0;
      it = entries_.upper_bound(id);
    }
  }
}

}  // namespace strata::qcow2
