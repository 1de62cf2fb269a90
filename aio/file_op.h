// strata aio: FileOp, one operation on a file descriptor, and the awaitables that run it.
//
//   int64_t n = co_await aio::Preadv(fd, iov, iovcnt, offset);   // bytes, or -errno
//
// On a thread whose IoContext is current, the operation goes to that context's engine
// (an io_uring submission, or the I/O pool for the threads engine) and the coroutine
// resumes on the loop when it completes, unless its InlinePolicy lets it finish at once
// without waiting for a device. On any other thread the syscall runs inline and the
// coroutine does not suspend. A transfer may be short (as the syscall's); callers
// loop. The iovec array and buffers must stay valid until the await returns.
#ifndef STRATA_AIO_FILE_OP_H_
#define STRATA_AIO_FILE_OP_H_

#include <sys/uio.h>

#include <coroutine>
#include <cstdint>

namespace strata::aio {

class IoContext;

// When a loop thread may run a data transfer itself instead of handing it to the engine.
// Handing off costs a context switch or two (the kernel punts buffered I/O that could
// wait to its own workers); a transfer that cannot wait for a device is cheaper inline.
enum class InlinePolicy {
  kNever,   // always the engine (O_DIRECT: every transfer waits for the device)
  kNowait,  // try preadv2/pwritev2 with RWF_NOWAIT first (page-cache hits finish inline)
  kAlways,  // memory-backed files (tmpfs): transfers never wait for a device
};

struct FileOp {
  // kPoll waits until `fd` is ready for the poll(2) events in `mode` and yields the
  // events that happened (sockets: nonblocking transfers retry after it). It always goes
  // to the engine when a loop is current, even when the loop serves one request only:
  // it may wait for a peer forever.
  enum class Kind { kReadv, kWritev, kFdatasync, kFallocate, kPoll };
  Kind kind = Kind::kReadv;
  int fd = -1;
  const struct iovec* iov = nullptr;
  int iovcnt = 0;
  uint64_t offset = 0;
  uint64_t length = 0;  // kFallocate
  int mode = 0;         // kFallocate; kPoll: the events (POLLIN, POLLOUT)
  int64_t result = 0;   // bytes transferred, 0, or -errno
  std::coroutine_handle<> waiter;  // resumed on `context` when done
  IoContext* context = nullptr;
  InlinePolicy inline_policy = InlinePolicy::kNever;  // kReadv/kWritev only

  // Runs the syscall on this thread (EINTR retried); returns what `result` holds.
  int64_t RunBlocking() const;
  // Tries the transfer without waiting (RWF_NOWAIT); false if it would have to wait.
  bool TryNowait();
};

// co_await-able: runs `op` as described above and yields its result.
class FileOpAwaiter {
 public:
  explicit FileOpAwaiter(const FileOp& op) : op_(op) {}
  bool await_ready() noexcept;
  void await_suspend(std::coroutine_handle<> h) noexcept;
  int64_t await_resume() const noexcept { return op_.result; }

 private:
  FileOp op_;
};

inline FileOp MakeFileOp(FileOp::Kind kind, int fd, const struct iovec* iov = nullptr,
                         int iovcnt = 0, uint64_t offset = 0) {
  FileOp op;
  op.kind = kind;
  op.fd = fd;
  op.iov = iov;
  op.iovcnt = iovcnt;
  op.offset = offset;
  return op;
}
inline FileOpAwaiter Preadv(int fd, const struct iovec* iov, int iovcnt, uint64_t offset,
                            InlinePolicy policy = InlinePolicy::kNever) {
  FileOp op = MakeFileOp(FileOp::Kind::kReadv, fd, iov, iovcnt, offset);
  op.inline_policy = policy;
  return FileOpAwaiter(op);
}
inline FileOpAwaiter Pwritev(int fd, const struct iovec* iov, int iovcnt, uint64_t offset,
                             InlinePolicy policy = InlinePolicy::kNever) {
  FileOp op = MakeFileOp(FileOp::Kind::kWritev, fd, iov, iovcnt, offset);
  op.inline_policy = policy;
  return FileOpAwaiter(op);
}
// The policy for data transfers on `fd`: kNever with O_DIRECT, kAlways on a memory-backed
// file system, else kNowait.
InlinePolicy InlinePolicyFor(int fd, bool direct);
inline FileOpAwaiter Fdatasync(int fd) {
  return FileOpAwaiter(MakeFileOp(FileOp::Kind::kFdatasync, fd));
}
// Waits until `fd` is ready for `events` (POLLIN, POLLOUT); yields the events that
// happened (POLLHUP and POLLERR included) or -errno.
inline FileOpAwaiter Poll(int fd, int events) {
  FileOp op = MakeFileOp(FileOp::Kind::kPoll, fd);
  op.mode = events;
  return FileOpAwaiter(op);
}
inline FileOpAwaiter Fallocate(int fd, int mode, uint64_t offset, uint64_t length) {
  FileOp op = MakeFileOp(FileOp::Kind::kFallocate, fd);
  op.mode = mode;
  op.offset = offset;
  op.length = length;
  return FileOpAwaiter(op);
}

}  // namespace strata::aio

#endif  // STRATA_AIO_FILE_OP_H_
