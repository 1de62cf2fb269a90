// strata aio: a loop on its own thread (see loop_thread.h).
#include "aio/loop_thread.h"

namespace strata::aio {

LoopThread::LoopThread(std::unique_ptr<IoContext> context)
    : context_(std::move(context)), thread_([this] { context_->Run(); }) {}

LoopThread::~LoopThread() {
  context_->Stop();
  thread_.join();
}

absl::StatusOr<std::unique_ptr<LoopThread>> LoopThread::Start(
    const IoContext::Options& options) {
  absl::StatusOr<std::unique_ptr<IoContext>> context = IoContext::Create(options);
  if (!context.ok()) return context.status();
  return std::make_unique<LoopThread>(*std::move(context));
}

}  // namespace strata::aio
