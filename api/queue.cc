// strata api: strata::Queue, an aio::IoContext run by its owner or by a thread of its own.
#include "strata/queue.h"

#include <thread>
#include <utility>

#include "aio/io_context.h"

namespace strata {

// The loop's own thread (Start); joined before the context goes.
struct Queue::Thread {
  std::thread thread;
};

absl::StatusOr<QueueEngine> ParseQueueEngine(absl::string_view aio) {
  absl::StatusOr<aio::Engine> engine = aio::ParseEngine(aio);
  if (!engine.ok()) return engine.status();
  return *engine == aio::Engine::kIoUring ? QueueEngine::kIoUring : QueueEngine::kThreads;
}

namespace {

absl::StatusOr<std::unique_ptr<aio::IoContext>> NewContext(const Queue::Options& options) {
  aio::IoContext::Options o;
  o.engine = options.engine == QueueEngine::kIoUring ? aio::Engine::kIoUring
                                                      : aio::Engine::kThreads;
  o.ring_entries = options.ring_entries;
  absl::StatusOr<std::unique_ptr<aio::IoContext>> context = aio::IoContext::Create(o);
  if (!context.ok() && options.fall_back_to_threads && o.engine == aio::Engine::kIoUring) {
    context = aio::IoContext::Create({aio::Engine::kThreads});
  }
  return context;
}

}  // namespace

Queue::Queue(std::unique_ptr<aio::IoContext> context, bool own_thread)
    : context_(std::move(context)) {
  if (own_thread) {
    thread_ = std::make_unique<Thread>();
    thread_->thread = std::thread([this] { context_->Run(); });
  }
}

Queue::~Queue() {
  if (thread_ != nullptr) {
    context_->Stop();
    thread_->thread.join();
  }
}

absl::StatusOr<std::unique_ptr<Queue>> Queue::Start(const Options& options) {
  absl::StatusOr<std::unique_ptr<aio::IoContext>> context = NewContext(options);
  if (!context.ok()) return context.status();
  return std::unique_ptr<Queue>(new Queue(*std::move(context), true));
}

absl::StatusOr<std::unique_ptr<Queue>> Queue::Create(const Options& options) {
  absl::StatusOr<std::unique_ptr<aio::IoContext>> context = NewContext(options);
  if (!context.ok()) return context.status();
  return std::unique_ptr<Queue>(new Queue(*std::move(context), false));
}

void Queue::Post(absl::AnyInvocable<void() &&> fn) { context_->Post(std::move(fn)); }

void Queue::RunUntil(absl::FunctionRef<bool()> done) { context_->RunUntil(done); }

QueueEngine Queue::engine() const {
  return context_->engine() == aio::Engine::kIoUring ? QueueEngine::kIoUring
                                                      : QueueEngine::kThreads;
}

}  // namespace strata
