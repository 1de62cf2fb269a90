// strata nbd: client sockets (see connect.h).
#include "nbd/connect.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "block/status.h"

namespace strata::nbd {

namespace {

absl::Status ConnectError(const std::string& where, int err) {
  return ErrnoError(err, absl::StrCat("Failed to connect to '", where, "': ", StrError(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Stream>> ConnectUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return ErrnoError(ENAMETOOLONG,
                      absl::StrCat("UNIX socket path '", path, "' is too long"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ConnectError(path, errno);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    const int e = errno;
    ::close(fd);
    return ConnectError(path, e);
  }
  return NewSocketStream(fd);
}

absl::StatusOr<std::unique_ptr<Stream>> ConnectTcp(const std::string& host,
                                                   const std::string& port) {
  const std::string where = absl::StrCat(host, ":", port);
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* results = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
  if (rc != 0) {
    return ErrnoError(EINVAL, absl::StrCat("address resolution failed for ", where, ": ",
                                           gai_strerror(rc)));
  }
  int last_error = ECONNREFUSED;
  for (struct addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    do {
      rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      ::freeaddrinfo(results);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return NewSocketStream(fd);
    }
    last_error = errno;
    ::close(fd);
  }
  ::freeaddrinfo(results);
  return ConnectError(where, last_error);
}

}  // namespace strata::nbd
