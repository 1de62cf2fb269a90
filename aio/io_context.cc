// strata aio: the event loop (see io_context.h).
#include "aio/io_context.h"

#include <utility>

#include "aio/backend.h"

namespace strata::aio {
namespace {

thread_local IoContext* t_current = nullptr;

// Makes `context` current on this thread for a scope.
class ScopedCurrent {
 public:
  explicit ScopedCurrent(IoContext* context) : saved_(std::exchange(t_current, context)) {}
  ~ScopedCurrent() { t_current = saved_; }

 private:
  IoContext* saved_;
};

}  // namespace

absl::StatusOr<Engine> ParseEngine(absl::string_view name) {
  if (name == "threads") return Engine::kThreads;
  if (name == "io_uring" || name == "native") return Engine::kIoUring;
  return absl::InvalidArgumentError(std::string("Invalid aio option: ") + std::string(name));
}

absl::string_view EngineName(Engine engine) {
  return engine == Engine::kIoUring ? "io_uring" : "threads";
}

IoContext::IoContext(ConstructionKey, Engine engine) : engine_(engine) {}

IoContext::~IoContext() {
  // Waits for a Post still inside its critical section on another thread (see Post).
  absl::MutexLock lock(&mu_);
}

absl::StatusOr<std::unique_ptr<IoContext>> IoContext::Create(const Options& options) {
  auto context = std::make_unique<IoContext>(ConstructionKey(), options.engine);
  absl::StatusOr<std::unique_ptr<Backend>> backend =
      options.engine == Engine::kIoUring
          ? NewUringBackend(context.get(), options.ring_entries)
          : NewThreadBackend(context.get());
  if (!backend.ok()) return backend.status();
  context->backend_ = *std::move(backend);
  return context;
}

IoContext* IoContext::Current() { return t_current; }

int IoContext::in_flight() const { return backend_->in_flight(); }

void IoContext::Submit(FileOp* op) {
  op->context = this;
  backend_->Submit(op);
}

void IoContext::Post(std::coroutine_handle<> h) {
  Post([h]() { h.resume(); });
}

void IoContext::Post(absl::AnyInvocable<void() &&> fn) {
  if (t_current == this) {
    local_.push_back(std::move(fn));
    return;
  }
  // Everything happens under mu_: once the loop has run `fn` its owner may destroy the
  // context, and the destructor takes mu_, so this thread must not touch the context
  // after releasing it.
  absl::MutexLock lock(&mu_);
  remote_.push_back(std::move(fn));
  // Paired with the loop's store to sleeping_ and load of remote_pending_ (both seq_cst):
  // either the loop sees the work before it sleeps, or this thread sees it asleep.
  remote_pending_.store(true);
  if (sleeping_.load()) backend_->Wake();
}

bool IoContext::RunPosted() {
  bool ran = false;
  if (remote_pending_.load()) {
    std::vector<absl::AnyInvocable<void() &&>> batch;
    {
      absl::MutexLock lock(&mu_);
      remote_pending_.store(false);
      batch.swap(remote_);
    }
    for (auto& fn : batch) std::move(fn)();
    ran = ran || !batch.empty();
  }
  if (!local_.empty()) {
    // Swap with a spare that keeps its capacity: no allocation per round.
    local_batch_.swap(local_);
    for (auto& fn : local_batch_) std::move(fn)();
    local_batch_.clear();
    ran = true;
  }
  return ran;
}

void IoContext::RunUntil(absl::FunctionRef<bool()> done) {
  ScopedCurrent current(this);
  for (;;) {
    RunPosted();
    if (done() || stop_.load()) break;
    if (!local_.empty() || remote_pending_.load()) {
      backend_->Poll(/*block=*/false);
      continue;
    }
    sleeping_.store(true);
    if (remote_pending_.load()) {
      sleeping_.store(false);
      continue;
    }
    backend_->Poll(/*block=*/true);
    sleeping_.store(false);
  }
  stop_.store(false);
}

void IoContext::Run() {
  RunUntil([] { return false; });
}

void IoContext::Stop() {
  stop_.store(true);
  backend_->Wake();
}

ScopedNoContext::ScopedNoContext() : saved_(std::exchange(t_current, nullptr)) {}
ScopedNoContext::~ScopedNoContext() { t_current = saved_; }

}  // namespace strata::aio
