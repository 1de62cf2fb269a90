// strata aio: the threads engine: every operation runs on the shared blocking pool and
// its waiter resumes on the loop through IoContext::Post.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "aio/backend.h"
#include "aio/blocking_pool.h"
#include "aio/io_context.h"

namespace strata::aio {
namespace {

class ThreadBackend : public Backend {
 public:
  explicit ThreadBackend(IoContext* context) : context_(context) {}
  ~ThreadBackend() override {
    if (eventfd_ >= 0) ::close(eventfd_);
  }

  absl::Status Init() {
    eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventfd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
    return absl::OkStatus();
  }

  void Submit(FileOp* op) override {
    ++in_flight_;
    BlockingPool::SharedIo().Run([this, op]() {
      op->result = op->RunBlocking();
      context_->Post([this, op]() {
        --in_flight_;
        op->waiter.resume();
      });
    });
  }

  void Poll(bool block) override {
    if (!block) return;
    pollfd p{eventfd_, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    uint64_t value;
    ssize_t r = ::read(eventfd_, &value, sizeof(value));
    (void)r;
  }

  void Wake() override {
    uint64_t one = 1;
    ssize_t r = ::write(eventfd_, &one, sizeof(one));
    (void)r;
  }

  int in_flight() const override { return in_flight_.load(); }

 private:
  IoContext* const context_;
  int eventfd_ = -1;
  std::atomic<int> in_flight_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewThreadBackend(IoContext* context) {
  auto backend = std::make_unique<ThreadBackend>(context);
  absl::Status s = backend->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace strata::aio
