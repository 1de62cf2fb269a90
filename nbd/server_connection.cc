// strata nbd: a connection's life (see server_connection.h).
#include "nbd/server_connection.h"

#include <sys/socket.h>

namespace strata::nbd {

ServerConnection::ServerConnection(Server* server, std::unique_ptr<Stream> stream)
    : server_(server), stream_(std::move(stream)), shutdown_fd_(stream_->fd()) {}

ServerConnection::~ServerConnection() = default;

aio::Task<absl::Status> ServerConnection::Run() {
  absl::StatusOr<bool> negotiated = co_await Negotiate();
  if (!negotiated.ok()) {
    stream_->Shutdown();
    co_return absl::IsUnavailable(negotiated.status()) ? absl::OkStatus()
                                                       : negotiated.status();
  }
  absl::Status status = absl::OkStatus();
  if (*negotiated) status = co_await Serve();
  stream_->Shutdown();
  co_return status;
}

void ServerConnection::Shutdown() {
  // stream_ is replaced only on the loop during STARTTLS, before any Shutdown can matter;
  // the socket underneath stays the same, so shutting it down is enough.
  ::shutdown(shutdown_fd_, SHUT_RDWR);
}

}  // namespace strata::nbd
