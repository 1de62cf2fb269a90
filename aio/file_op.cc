// strata aio: file operations run inline or on the current context (see file_op.h).
#include "aio/file_op.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>

#include "aio/io_context.h"

namespace strata::aio {

int64_t FileOp::RunBlocking() const {
  for (;;) {
    int64_t r = 0;
    switch (kind) {
      case Kind::kReadv:
        r = ::preadv(fd, iov, iovcnt, static_cast<off_t>(offset));
        break;
      case Kind::kWritev:
        r = ::pwritev(fd, iov, iovcnt, static_cast<off_t>(offset));
        break;
      case Kind::kFdatasync:
        r = ::fdatasync(fd);
        break;
      case Kind::kFallocate:
        r = ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
        break;
      case Kind::kPoll: {
        struct pollfd p = {fd, static_cast<short>(mode), 0};
        r = ::poll(&p, 1, -1);
        if (r > 0) r = p.revents;
        break;
      }
    }
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

bool FileOp::TryNowait() {
  for (;;) {
    int64_t r = kind == Kind::kReadv
                    ? ::preadv2(fd, iov, iovcnt, static_cast<off_t>(offset), RWF_NOWAIT)
                    : ::pwritev2(fd, iov, iovcnt, static_cast<off_t>(offset), RWF_NOWAIT);
    if (r >= 0) {
      result = r;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EOPNOTSUPP) return false;
    result = -errno;
    return true;
  }
}

InlinePolicy InlinePolicyFor(int fd, bool direct) {
  if (direct) return InlinePolicy::kNever;
  struct statfs fs;
  if (::fstatfs(fd, &fs) == 0 &&
      (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)) {
    return InlinePolicy::kAlways;
  }
  return InlinePolicy::kNowait;
}

bool FileOpAwaiter::await_ready() noexcept {
  op_.context = IoContext::Current();
  const bool transfer = op_.kind == FileOp::Kind::kReadv || op_.kind == FileOp::Kind::kWritev;
  if (op_.kind == FileOp::Kind::kPoll && op_.context != nullptr) return false;
  if (op_.context == nullptr || op_.context->RunsBlockingInline() ||
      (transfer && op_.inline_policy == InlinePolicy::kAlways)) {
    op_.result = op_.RunBlocking();
    return true;
  }
  return transfer && op_.inline_policy == InlinePolicy::kNowait && op_.TryNowait();
}

void FileOpAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  op_.waiter = h;
  op_.context->Submit(&op_);
}

}  // namespace strata::aio
