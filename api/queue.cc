// strata api: strata::Queue, an aio::IoContext run by its owner (Create) or by an
// aio::LoopThread (Start).
#include "strata/queue.h"

#include <utility>

#include "aio/io_context.h"
#include "aio/loop_thread.h"

namespace strata {

absl::StatusOr<QueueEngine> ParseQueueEngine(absl::string_view aio) {
  absl::StatusOr<aio::Engine> engine = aio::ParseEngine(aio);
  if (!engine.ok()) return engine.status();
  return *engine == aio::Engine::kIoUring ? QueueEngine::kIoUring : QueueEngine::kThreads;
}

namespace {

aio::IoContext::Options ContextOptions(const Queue::Options& options) {
  aio::IoContext::Options o;
  o.engine = options.engine == QueueEngine::kIoUring ? aio::Engine::kIoUring
                                                      : aio::Engine::kThreads;
  o.ring_entries = options.ring_entries;
  return o;
}

// `make(options)`, then with the thread pool if io_uring refused and the caller allows it.
template <typename Make>
auto WithFallback(const Queue::Options& options, Make make) -> decltype(make({})) {
  const aio::IoContext::Options o = ContextOptions(options);
  auto made = make(o);
  if (!made.ok() && options.fall_back_to_threads && o.engine == aio::Engine::kIoUring) {
    made = make({aio::Engine::kThreads});
  }
  return made;
}

}  // namespace

Queue::~Queue() = default;  // LoopThread's destructor stops and joins the loop

absl::StatusOr<std::unique_ptr<Queue>> Queue::Start(const Options& options) {
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> thread =
      WithFallback(options, [](const aio::IoContext::Options& o) {
        return aio::LoopThread::Start(o);
      });
  if (!thread.ok()) return thread.status();
  std::unique_ptr<Queue> queue(new Queue());
  queue->thread_ = *std::move(thread);
  queue->context_ = &queue->thread_->context();
  return queue;
}

absl::StatusOr<std::unique_ptr<Queue>> Queue::Create(const Options& options) {
  absl::StatusOr<std::unique_ptr<aio::IoContext>> context =
      WithFallback(options, [](const aio::IoContext::Options& o) {
        return aio::IoContext::Create(o);
      });
  if (!context.ok()) return context.status();
  std::unique_ptr<Queue> queue(new Queue());
  queue->own_context_ = *std::move(context);
  queue->context_ = queue->own_context_.get();
  return queue;
}

void Queue::Post(absl::AnyInvocable<void() &&> fn) { context_->Post(std::move(fn)); }

void Queue::RunUntil(absl::FunctionRef<bool()> done) { context_->RunUntil(done); }

QueueEngine Queue::engine() const {
  return context_->engine() == aio::Engine::kIoUring ? QueueEngine::kIoUring
                                                      : QueueEngine::kThreads;
}

}  // namespace strata
