// strata aio: LoopThread, an IoContext running on a thread of its own (one queue).
#ifndef STRATA_AIO_LOOP_THREAD_H_
#define STRATA_AIO_LOOP_THREAD_H_

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "aio/io_context.h"

namespace strata::aio {

class LoopThread {
 public:
  // Creates the context and starts its loop.
  static absl::StatusOr<std::unique_ptr<LoopThread>> Start(const IoContext::Options& options);
  // Stops the loop and joins the thread. Requests still in flight are abandoned: drain
  // first (the caller knows what it submitted).
  ~LoopThread();

  IoContext& context() { return *context_; }

 private:
 public:
  // Use Start; public for make_unique.
  explicit LoopThread(std::unique_ptr<IoContext> context);

 private:
  std::unique_ptr<IoContext> context_;
  std::thread thread_;
};

}  // namespace strata::aio

#endif  // STRATA_AIO_LOOP_THREAD_H_
