// strata: RequestGate (see request_gate.h for the ordering argument).
#include "block/request_gate.h"

namespace strata {

bool RequestGate::TryEnter() {
  in_flight_.fetch_add(1);
  if (!quiesced_.load()) return true;
  {
    absl::MutexLock lock(&mu_);
    if (OpenForCaller()) return true;
  }
  Leave();
  return false;
}

bool RequestGate::OpenForCaller() const {
  return !quiesced_.load() || owner_ == std::this_thread::get_id();
}

void RequestGate::Enter() {
  if (TryEnter()) return;
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](RequestGate* g) ABSL_NO_THREAD_SAFETY_ANALYSIS { return g->OpenForCaller(); },
      this));
  in_flight_.fetch_add(1);
}

void RequestGate::Leave() {
  if (in_flight_.fetch_sub(1) == 1 && quiesced_.load()) {
    // The quiescer waits on mu_ for the count: releasing mu_ makes it look again.
    absl::MutexLock lock(&mu_);
  }
}

bool RequestGate::EnterAwaiter::await_ready() {
  if (gate_.TryEnter()) return true;
  if (aio::IoContext::Current() == nullptr) {
    gate_.Enter();
    return true;
  }
  return false;
}

bool RequestGate::EnterAwaiter::await_suspend(std::coroutine_handle<> h) {
  absl::MutexLock lock(&gate_.mu_);
  if (gate_.OpenForCaller()) {
    gate_.in_flight_.fetch_add(1);
    return false;  // resumes at once
  }
  gate_.parked_.push_back({h, aio::IoContext::Current()});
  return true;
}

void RequestGate::Quiesce() {
  control_mu_.Lock();
  absl::MutexLock lock(&mu_);
  owner_ = std::this_thread::get_id();
  quiesced_.store(true);
  mu_.Await(absl::Condition(
      +[](std::atomic<uint64_t>* n) { return n->load() == 0; }, &in_flight_));
}

void RequestGate::Resume() {
  std::vector<Parked> parked;
  {
    absl::MutexLock lock(&mu_);
    quiesced_.store(false);
    owner_ = std::thread::id();
    parked.swap(parked_);
    // Each parked request enters now, before anyone can quiesce again.
    in_flight_.fetch_add(parked.size());
  }
  for (const Parked& p : parked) p.loop->Post(p.handle);
  control_mu_.Unlock();
}

}  // namespace strata
