// strata aio: the io_uring engine (liburing).
//
// Submission queue entries are filled as coroutines ask and handed to the kernel once per
// loop iteration (Poll), so a burst of requests costs one io_uring_enter. An eventfd read
// stays armed in the ring so that Post from other threads can wake a loop blocked in
// io_uring_submit_and_wait.
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aio/backend.h"
#include "aio/io_context.h"

namespace strata::aio {
namespace {

constexpr uint64_t kWakeTag = 1;  // user_data of the eventfd read (ops are pointers)

class UringBackend : public Backend {
 public:
  UringBackend() = default;
  ~UringBackend() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (eventfd_ >= 0) ::close(eventfd_);
  }

  absl::Status Init(unsigned entries) {
    eventfd_ = ::eventfd(0, EFD_CLOEXEC);
    if (eventfd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
#ifdef IORING_SETUP_COOP_TASKRUN
    // Completions run as task work when the loop thread enters the kernel anyway, not by
    // interrupting it. (Not SINGLE_ISSUER: that binds the ring to the thread that created
    // it, and a context is created on one thread and run on another.) Older kernels
    // refuse the flag: retry without.
    params.flags = IORING_SETUP_COOP_TASKRUN;
#endif
    int r = io_uring_queue_init_params(entries, &ring_, &params);
    if (r == -EINVAL) {
      std::memset(&params, 0, sizeof(params));
      r = io_uring_queue_init_params(entries, &ring_, &params);
    }
    if (r < 0) return absl::UnavailableError(absl::StrCat("io_uring: ", strerror(-r)));
    ring_ready_ = true;
    return absl::OkStatus();
  }

  void Submit(FileOp* op) override {
    io_uring_sqe* sqe = GetSqe();
    switch (op->kind) {
      case FileOp::Kind::kReadv:
        io_uring_prep_readv(sqe, op->fd, op->iov, op->iovcnt, op->offset);
        break;
      case FileOp::Kind::kWritev:
        io_uring_prep_writev(sqe, op->fd, op->iov, op->iovcnt, op->offset);
        break;
      case FileOp::Kind::kFdatasync:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
      case FileOp::Kind::kFallocate:
        io_uring_prep_fallocate(sqe, op->fd, op->mode, op->offset, op->length);
        break;
      case FileOp::Kind::kPoll:
        io_uring_prep_poll_add(sqe, op->fd, static_cast<unsigned>(op->mode));
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    ++in_flight_;
  }

  void Poll(bool block) override {
    if (!wake_armed_) {
      io_uring_sqe* sqe = GetSqe();
      io_uring_prep_read(sqe, eventfd_, &wake_buffer_, sizeof(wake_buffer_), 0);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      wake_armed_ = true;
    }
    // Errors here (EINTR, EBUSY with a full completion queue) only mean "reap and retry".
    if (block) {
      io_uring_submit_and_wait(&ring_, 1);
    } else {
      io_uring_submit(&ring_);
    }
    done_.clear();
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if (cqe->user_data == kWakeTag) {
        wake_armed_ = false;
        continue;
      }
      FileOp* op = reinterpret_cast<FileOp*>(cqe->user_data);
      op->result = cqe->res;
      done_.push_back(op);
    }
    io_uring_cq_advance(&ring_, seen);
    // Resuming may submit more (and even Poll is not re-entered: only the loop calls it).
    std::vector<FileOp*> batch;
    batch.swap(done_);
    in_flight_ -= static_cast<int>(batch.size());
    for (FileOp* op : batch) op->waiter.resume();
    if (done_.empty()) done_.swap(batch);  // keep the capacity
  }

  void Wake() override {
    uint64_t one = 1;
    ssize_t r = ::write(eventfd_, &one, sizeof(one));
    (void)r;  // EAGAIN: the counter is saturated, a wake-up is pending anyway
  }

  int in_flight() const override { return in_flight_; }

 private:
  io_uring_sqe* GetSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      // The submission queue is full: hand it to the kernel (which empties it) now.
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  io_uring ring_;
  bool ring_ready_ = false;
  int eventfd_ = -1;
  uint64_t wake_buffer_ = 0;
  bool wake_armed_ = false;
  int in_flight_ = 0;
  std::vector<FileOp*> done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewUringBackend(IoContext* context, unsigned entries) {
  auto backend = std::make_unique<UringBackend>();
  absl::Status s = backend->Init(entries);
  if (!s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace strata::aio
