// strata nbd: the socket stream (see stream.h).
#include "nbd/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <vector>

#include "aio/file_op.h"
#include "block/status.h"

namespace strata::nbd {

ssize_t ReadSome(int fd, void* buf, size_t n) {
  for (;;) {
    ssize_t r = ::recv(fd, buf, n, MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

ssize_t WriteSome(int fd, const struct iovec* iov, int iovcnt) {
  struct msghdr msg = {};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  for (;;) {
    ssize_t r = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

namespace {

absl::Status ClosedError() { return absl::UnavailableError("Connection closed"); }

// Owns the socket. Transfers are tried at once (MSG_DONTWAIT) and wait for readiness only
// when the socket has nothing (reads) or no room (writes).
class SocketStream : public Stream {
 public:
  explicit SocketStream(int fd) : fd_(fd) {
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  }
  ~SocketStream() override { ::close(fd_); }

  aio::Task<absl::Status> ReadFully(void* buf, size_t n) override {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      ssize_t r = ReadSome(fd_, p, n);
      if (r == -EAGAIN) {
        int64_t events = co_await aio::Poll(fd_, POLLIN);
        if (events < 0) co_return ErrnoError(static_cast<int>(-events));
        continue;
      }
      if (r == 0) co_return ClosedError();
      if (r < 0) co_return ErrnoError(static_cast<int>(-r));
      p += r;
      n -= static_cast<size_t>(r);
    }
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> WriteFully(absl::Span<const struct iovec> iov) override {
    std::vector<struct iovec> rest(iov.begin(), iov.end());
    size_t first = 0;
    while (first < rest.size()) {
      if (rest[first].iov_len == 0) {
        ++first;
        continue;
      }
      const int count = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
      ssize_t r = WriteSome(fd_, rest.data() + first, count);
      if (r == -EAGAIN) {
        int64_t events = co_await aio::Poll(fd_, POLLOUT);
        if (events < 0) co_return ErrnoError(static_cast<int>(-events));
        continue;
      }
      if (r < 0) {
        if (r == -EPIPE || r == -ECONNRESET) co_return ClosedError();
        co_return ErrnoError(static_cast<int>(-r));
      }
      size_t done = static_cast<size_t>(r);
      while (done > 0) {
        size_t step = std::min(done, rest[first].iov_len);
        rest[first].iov_base = static_cast<uint8_t*>(rest[first].iov_base) + step;
        rest[first].iov_len -= step;
        done -= step;
        if (rest[first].iov_len == 0) ++first;
      }
    }
    co_return absl::OkStatus();
  }

  void Shutdown() override { ::shutdown(fd_, SHUT_RDWR); }
  int fd() const override { return fd_; }

 private:
  const int fd_;
};

}  // namespace

std::unique_ptr<Stream> NewSocketStream(int fd) { return std::make_unique<SocketStream>(fd); }

}  // namespace strata::nbd
