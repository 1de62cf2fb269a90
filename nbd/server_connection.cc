// strata nbd: a connection's life (see server_connection.h).
#include "nbd/server_connection.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "block/diagnostics.h"

namespace strata::nbd {

ServerConnection::ServerConnection(Server* server, std::unique_ptr<Stream> stream)
    : server_(server), stream_(std::move(stream)), shutdown_fd_(stream_->fd()) {}

ServerConnection::~ServerConnection() = default;

aio::Task<absl::Status> ServerConnection::Run() {
  absl::StatusOr<bool> negotiated = co_await Negotiate();
  // A client that simply went away is no news; anything else is worth a line, in
  // qemu-nbd's words.
  if (!negotiated.ok()) {
    stream_->Shutdown();
    if (!absl::IsUnavailable(negotiated.status())) {
      Diagnose(DiagnosticKind::kNegotiation,
               absl::StrCat("option negotiation failed: ", negotiated.status().message()));
    }
    co_return negotiated.status();
  }
  absl::Status status = absl::OkStatus();
  if (*negotiated) status = co_await Serve();
  stream_->Shutdown();
  if (!status.ok() && !absl::IsUnavailable(status)) {
    Diagnose(DiagnosticKind::kConnection,
             absl::StrCat("Disconnect client, due to: ", status.message()));
  }
  co_return status;
}

void ServerConnection::Shutdown() {
  // stream_ is replaced only on the loop during STARTTLS, before any Shutdown can matter;
  // the socket underneath stays the same, so shutting it down is enough.
  ::shutdown(shutdown_fd_, SHUT_RDWR);
}

}  // namespace strata::nbd
