// strata/queue.h (public API): Queue, one event loop that runs asynchronous requests.
//
//   auto queue = strata::Queue::Start({});                  // a loop on its own thread
//   strata::IoRequest r;
//   r.op = strata::IoOp::kRead;
//   r.offset = 0;
//   r.qiov = strata::IoVector(buf, 4096);
//   image->Submit(**queue, std::move(r), [](absl::Status s) { /* on the queue's thread */ });
//
// A queue drives io_uring (or, where the kernel refuses it, a thread pool) and runs
// thousands of requests in flight on one thread: a request that waits parks, the loop
// serves others. Give each virtqueue (or each vCPU's submission path) a queue of its own;
// any number of queues may serve one Image. A queue made with Create runs only while its
// owner calls RunUntil on one thread (an embedder's own loop thread); Start runs it on a
// thread of its own until the Queue is destroyed.
//
// Thread safety: Post and Image::Submit from any thread; RunUntil from one thread at a
// time. Destroying a queue abandons requests still in flight: wait for their completions
// first.
#ifndef STRATA_STRATA_QUEUE_H_
#define STRATA_STRATA_QUEUE_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace strata {

namespace aio {  // internal
class IoContext;
class LoopThread;
}  // namespace aio

enum class QueueEngine { kIoUring, kThreads };

// QEMU's aio option values: "threads", "io_uring", and "native" (Linux AIO in QEMU),
// which strata maps to io_uring. Anything else: EINVAL "Invalid aio option: X".
absl::StatusOr<QueueEngine> ParseQueueEngine(absl::string_view aio);

class Queue {
 public:
  struct Options {
    QueueEngine engine = QueueEngine::kIoUring;
    unsigned ring_entries = 256;  // io_uring submission queue size
    // If io_uring cannot start (old kernel, seccomp), use the thread pool instead of
    // failing.
    bool fall_back_to_threads = true;
  };
  // A queue whose loop runs on a new thread until destruction.
  static absl::StatusOr<std::unique_ptr<Queue>> Start(const Options& options);
  // A queue whose loop runs only inside RunUntil, on the caller's thread.
  static absl::StatusOr<std::unique_ptr<Queue>> Create(const Options& options);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // `fn` runs on the queue's thread, in posting order.
  void Post(absl::AnyInvocable<void() &&> fn);
  // Create()d queues: runs the loop on this thread until `done()` (checked after each
  // round of work) is true.
  void RunUntil(absl::FunctionRef<bool()> done);
  QueueEngine engine() const;

 private:
  friend class ApiAccess;  // The library's own way to the loop.
  Queue() = default;
  // One of the two owns the loop: a LoopThread (Start) or the context alone (Create).
  std::unique_ptr<aio::LoopThread> thread_;
  std::unique_ptr<aio::IoContext> own_context_;
  aio::IoContext* context_ = nullptr;
};

}  // namespace strata

#endif  // STRATA_STRATA_QUEUE_H_
