// strata: RequestGate, the drain-and-quiesce point of a node.
//
// Every request that enters a node (read, write, zero write, discard, flush, truncate,
// block status; sync or coroutine) holds the gate from entry to completion. A control
// operation (snapshot, amend, make_empty, check...) quiesces it: new requests wait, the
// ones in flight finish, the operation runs alone, and Resume lets the waiters in, in no
// particular order. Requests made by the quiescing thread itself pass (a driver's control
// hook may call its own node).
//
// The fast path (no quiescer) is two sequentially consistent atomic operations: entering
// increments the in-flight count and then reads the quiesced flag; quiescing sets the
// flag and then waits for the count to reach zero, so one of the two always sees the other.
//
// Contracts: Quiesce blocks its thread until in-flight requests finish: it must not be
// called from a request on the same node (it would wait for itself); a request parked at
// a blkdebug breakpoint of this node's subtree holds it until another thread resumes it. A waiting
// coroutine request parks on its loop (the loop serves others); a waiting synchronous one
// blocks its thread.
#ifndef STRATA_BLOCK_REQUEST_GATE_H_
#define STRATA_BLOCK_REQUEST_GATE_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "aio/io_context.h"

namespace strata {

class RequestGate {
 public:
  RequestGate() = default;
  RequestGate(const RequestGate&) = delete;
  RequestGate& operator=(const RequestGate&) = delete;

  // Enters, blocking while another thread holds the gate quiesced.
  void Enter();
  // Leaves; wakes a quiescer waiting for the last request.
  void Leave();

  // co_await CoEnter(): enters; on a loop thread a quiesced gate parks the coroutine until
  // Resume (the loop goes on serving others); with no loop current it blocks like Enter.
  class EnterAwaiter {
   public:
    explicit EnterAwaiter(RequestGate& gate) : gate_(gate) {}
    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() {}

   private:
    RequestGate& gate_;
  };
  EnterAwaiter CoEnter() { return EnterAwaiter(*this); }

  // Stops new requests (other threads' wait) and waits until none is in flight. Quiescers
  // are serialised: a second one waits for the first one's Resume.
  // (control_mu_ is held from Quiesce to Resume: a hand-off across calls that the lock
  // analysis cannot follow, so these two are exempt from it.)
  void Quiesce() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Lets waiting and new requests in again. Called by the thread that quiesced.
  void Resume() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  uint64_t in_flight() const { return in_flight_.load(); }
  // For tests: whether a quiescer has closed the gate; how many coroutines wait at it.
  bool quiesced() const { return quiesced_.load(); }
  size_t parked() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return parked_.size();
  }

 private:
  bool TryEnter();
  // True if the gate is not quiesced, or quiesced by the calling thread.
  bool OpenForCaller() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> quiesced_{false};
  absl::Mutex control_mu_;  // held from Quiesce to Resume
  absl::Mutex mu_;
  std::thread::id owner_ ABSL_GUARDED_BY(mu_);
  struct Parked {
    std::coroutine_handle<> handle;
    aio::IoContext* loop;
  };
  std::vector<Parked> parked_ ABSL_GUARDED_BY(mu_);
};

// Holds a gate from construction to destruction (a synchronous request), or from an
// entry already made (co_await CoEnter()) to destruction.
class GateRequest {
 public:
  explicit GateRequest(RequestGate& gate) : gate_(gate) { gate_.Enter(); }
  enum Entered { kEntered };
  GateRequest(RequestGate& gate, Entered) : gate_(gate) {}
  ~GateRequest() { gate_.Leave(); }
  GateRequest(const GateRequest&) = delete;
  GateRequest& operator=(const GateRequest&) = delete;

 private:
  RequestGate& gate_;
};

// Holds a gate quiesced from construction to destruction (a control operation).
class QuiescedScope {
 public:
  explicit QuiescedScope(RequestGate& gate) : gate_(gate) { gate_.Quiesce(); }
  ~QuiescedScope() { gate_.Resume(); }
  QuiescedScope(const QuiescedScope&) = delete;
  QuiescedScope& operator=(const QuiescedScope&) = delete;

 private:
  RequestGate& gate_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_REQUEST_GATE_H_
