// strata nbd: Stream, a byte stream to a peer (a connected socket, or TLS over one).
//
// Coroutine methods (aio/task.h): awaited on a loop thread they park the request while the
// socket is not ready (aio::Poll) and never block the loop; awaited with no loop current
// (aio::RunSync, the client's threads) they block the calling thread. One read and one
// write may be in progress at the same time, not two of either.
//
// Errors: the peer closing the connection reads as kUnavailable "Connection closed";
// socket errors carry their errno (status.h). After Shutdown every pending and later
// call fails.
#ifndef STRATA_NBD_STREAM_H_
#define STRATA_NBD_STREAM_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "aio/task.h"

namespace strata::nbd {

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads exactly `n` bytes into `buf`.
  virtual aio::Task<absl::Status> ReadFully(void* buf, size_t n) = 0;
  // Writes every byte `iov` describes. The array is not modified; buffers stay valid until
  // the await returns.
  virtual aio::Task<absl::Status> WriteFully(absl::Span<const struct iovec> iov) = 0;
  // Ends the connection in both directions: waiting calls return with an error soon.
  // Any thread.
  virtual void Shutdown() = 0;
  // The socket underneath (for STARTTLS, which wraps it).
  virtual int fd() const = 0;
};

// A connected socket. Takes ownership of `fd` and makes it nonblocking.
std::unique_ptr<Stream> NewSocketStream(int fd);

// Reads or writes until the socket would block: the step of a socket stream, shared with
// the TLS transport. Return bytes moved (> 0), 0 at end of stream (reads), -EAGAIN when
// the socket is not ready, or -errno.
ssize_t ReadSome(int fd, void* buf, size_t n);
ssize_t WriteSome(int fd, const struct iovec* iov, int iovcnt);

}  // namespace strata::nbd

#endif  // STRATA_NBD_STREAM_H_
