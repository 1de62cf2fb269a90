// strata aio: IoContext, an event loop that runs coroutines and their file I/O.
//
// One thread at a time runs a context's loop (RunUntil/Run); while it does, the context
// is that thread's current one (IoContext::Current()) and the awaitables of this package
// submit to it: file operations to its engine, wake-ups through Post. Coroutines that
// suspended on a context resume on its loop thread, so the requests of one queue never
// need locks against each other. Several contexts on several threads serve one image in
// parallel (multi-queue); what they share (a driver's metadata) is locked by the driver.
//
// Engines: io_uring (liburing; submissions are batched: everything the coroutines of one
// loop iteration submit goes to the kernel in one io_uring_enter), or threads (every
// operation runs on the shared blocking pool, QEMU's aio=threads).
#ifndef STRATA_AIO_IO_CONTEXT_H_
#define STRATA_AIO_IO_CONTEXT_H_

#include <atomic>
#include <coroutine>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "aio/file_op.h"

namespace strata::aio {

class Backend;

enum class Engine { kIoUring, kThreads };

// QEMU's aio option values: "threads", "io_uring", and "native" (Linux AIO in QEMU),
// which strata maps to io_uring, the kernel's successor to it.
absl::StatusOr<Engine> ParseEngine(absl::string_view name);
absl::string_view EngineName(Engine engine);

class IoContext {
 public:
  struct Options {
    Engine engine = Engine::kIoUring;
    unsigned ring_entries = 256;  // io_uring submission queue size
  };
  // Only Create constructs contexts (the key is private).
  class ConstructionKey {
    friend class IoContext;
    ConstructionKey() = default;
  };
  IoContext(ConstructionKey, Engine engine);

  // Fails if the engine cannot start (io_uring refused by the kernel or a seccomp filter:
  // the caller may fall back to kThreads).
  static absl::StatusOr<std::unique_ptr<IoContext>> Create(const Options& options);
  // The loop must not be running. Work still posted is dropped unrun. A Post racing
  // with destruction is safe only if its work was already run (the destructor waits for
  // the poster to leave Post); posting after destruction began is the caller's bug.
  ~IoContext();
  IoContext(const IoContext&) = delete;
  IoContext& operator=(const IoContext&) = delete;

  // The context whose loop runs on this thread, or nullptr.
  static IoContext* Current();

  // Runs the loop on this thread until `done()` is true (checked after each round of
  // work) or Stop() was called. One thread at a time.
  void RunUntil(absl::FunctionRef<bool()> done);
  // Runs until Stop(). Stop may be called from any thread; it is sticky until Run returns.
  void Run();
  void Stop();

  // Any thread: `h` resumes (or `fn` runs) on the loop thread, in posting order.
  void Post(std::coroutine_handle<> h);
  void Post(absl::AnyInvocable<void() &&> fn);

  // Loop thread only: starts `op` on the engine (file_op.h is the way to call it).
  void Submit(FileOp* op);

  Engine engine() const { return engine_; }

  // Whether a blocking step may run inline on the loop thread (loop thread only): when the
  // loop serves at most one request (RequestScope counts them) and no other work is
  // posted, nothing else would run meanwhile, and a hand-off to the engine or the pool
  // would only add latency (depth-1 use). As soon as a second request or a completion
  // waits, steps go to the engine again. Offload and file operations ask.
  bool RunsBlockingInline() const {
    return active_requests_ <= 1 && local_.empty() &&
           !remote_pending_.load(std::memory_order_relaxed);
  }
  // File operations submitted and not completed.
  int in_flight() const;

 private:
  // Runs what was posted (one round: work posted meanwhile waits for the next round).
  // Returns whether anything ran.
  bool RunPosted();

  const Engine engine_;
  std::unique_ptr<Backend> backend_;
  std::vector<absl::AnyInvocable<void() &&>> local_;  // posted by the loop thread itself
  std::vector<absl::AnyInvocable<void() &&>> local_batch_;  // the round being run
  absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void() &&>> remote_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> remote_pending_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  int active_requests_ = 0;
  friend class RequestScope;
};

// Counts one request on the current loop while alive (a local of the request's
// coroutine, so it lives across suspension). Does nothing on a thread without a loop.
class RequestScope {
 public:
  RequestScope() : context_(IoContext::Current()) {
    if (context_ != nullptr) ++context_->active_requests_;
  }
  ~RequestScope() {
    if (context_ != nullptr) --context_->active_requests_;
  }
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  IoContext* const context_;
};

// While alive, no IoContext is current on this thread: the awaitables of this package
// complete inline (RunSync uses it so a loop thread can call synchronous code).
class ScopedNoContext {
 public:
  ScopedNoContext();
  ~ScopedNoContext();
  ScopedNoContext(const ScopedNoContext&) = delete;
  ScopedNoContext& operator=(const ScopedNoContext&) = delete;

 private:
  IoContext* saved_;
};

}  // namespace strata::aio

#endif  // STRATA_AIO_IO_CONTEXT_H_
