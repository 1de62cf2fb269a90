// strata aio: file operations run inline or on the current context (see file_op.h).
#include "aio/file_op.h"

#include <fcntl.h>
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
    }
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

bool FileOpAwaiter::await_ready() noexcept {
  op_.context = IoContext::Current();
  if (op_.context != nullptr) return false;
  op_.result = op_.RunBlocking();
  return true;
}

void FileOpAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  op_.waiter = h;
  op_.context->Submit(&op_);
}

}  // namespace strata::aio
