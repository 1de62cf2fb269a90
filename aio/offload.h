// strata aio: Offload, running blocking work without blocking the loop.
//
//   absl::Status s = co_await aio::Offload([&] { return SomethingSynchronous(); });
//
// On a thread with a current IoContext the work runs on the shared blocking pool and the
// coroutine resumes on its loop with the result; on any other thread, or on a loop that
// serves only this request (IoContext::RunsBlockingInline) while no parking point is
// armed (ParkingPoints), it runs inline. The work runs with no current context
// (synchronous code underneath stays synchronous).
// References the work captures must stay valid until the await returns (they do when they
// point into the awaiting coroutine's frame).
#ifndef STRATA_AIO_OFFLOAD_H_
#define STRATA_AIO_OFFLOAD_H_

#include <atomic>
#include <cstdint>
#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "aio/blocking_pool.h"
#include "aio/io_context.h"

namespace strata::aio {

// Parking points: places where blocking work may wait for something only a later
// request or command brings, such as a blkdebug breakpoint (a request reaching it waits
// for `resume`) or a request parked there (requests behind it wait for it). While any is
// armed in the process, offloaded work never runs inline on a loop, even on one serving a
// single request: it would stall the loop, and the requests submitted to it meanwhile
// (QEMU's coroutines go on running them). Whoever arms one counts it here and takes it
// back when it is gone.
class ParkingPoints {
 public:
  static void Add(int delta) { Count().fetch_add(delta, std::memory_order_acq_rel); }
  static bool AnyArmed() { return Count().load(std::memory_order_acquire) > 0; }

 private:
  static std::atomic<int>& Count() {
    static std::atomic<int> count{0};
    return count;
  }
};

// Work items Offload has handed to the pool since the process started. Tests count the
// requests a path sends to the pool with it: unlike BlockingPool::runs it leaves out the
// pool's other users (a coroutine waiting there for a lock held by pool work), whose
// number follows the timing of the run.
class OffloadedWork {
 public:
  static uint64_t Total() { return Count().load(std::memory_order_acquire); }
  static void Add() { Count().fetch_add(1, std::memory_order_acq_rel); }

 private:
  static std::atomic<uint64_t>& Count() {
    static std::atomic<uint64_t> count{0};
    return count;
  }
};

template <typename Work>
class OffloadAwaiter {
 public:
  using Result = std::invoke_result_t<Work&>;
  explicit OffloadAwaiter(Work work) : work_(std::move(work)) {}

  bool await_ready() {
    context_ = IoContext::Current();
    if (context_ != nullptr &&
        !(context_->RunsBlockingInline() && !ParkingPoints::AnyArmed())) {
      return false;
    }
    ScopedNoContext no_context;
    result_.emplace(work_());
    return true;
  }
  void await_suspend(std::coroutine_handle<> h) {
    OffloadedWork::Add();
    BlockingPool::Shared().Run([this, h]() {
      result_.emplace(work_());
      context_->Post(h);
    });
  }
  Result await_resume() { return std::move(*result_); }

 private:
  Work work_;
  IoContext* context_ = nullptr;
  std::optional<Result> result_;
};

template <typename Work>
OffloadAwaiter<Work> Offload(Work work) {
  return OffloadAwaiter<Work>(std::move(work));
}

}  // namespace strata::aio

#endif  // STRATA_AIO_OFFLOAD_H_
