// strata nbd: Client, one NBD connection in the transmission phase, shared by many
// concurrent requests (the nbd driver's engine, drivers/nbd).
//
// The socket belongs to a loop of its own (aio::LoopThread): a sender coroutine writes
// the queued requests, many at a time in one writev, and a receiver coroutine reads the
// replies (simple or structured, in any order) and completes the request each one names
// by its cookie. Callers may be anywhere: a coroutine on another loop resumes on its own
// loop when its reply is in; a caller with no loop (aio::RunSync, tools) blocks until
// then. So depth costs no thread, and the connection's loop never runs caller code.
//
// Failures: a server error reply fails that request with the server's errno (the NBD
// error values are Linux errnos). A broken connection or a reply that breaks the protocol
// ends the connection; with reconnect_delay_seconds > 0 the client then connects again in
// the background and requests (those in flight included) wait up to that long and are
// sent again on the new connection, as QEMU's reconnect-delay does; after it, or with no
// delay, they fail with EIO, and so does every later request until a reconnect succeeds.
#ifndef STRATA_NBD_CLIENT_H_
#define STRATA_NBD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aio/task.h"
#include "block/io_vector.h"
#include "nbd/client_handshake.h"

namespace strata::nbd {

// Where the server is and what to ask it for.
struct ClientOptions {
  // Unix socket path; when empty, TCP to host:port.
  std::string unix_path;
  std::string host;
  std::string port = "10809";
  std::string export_name;
  // TLS: credentials (nullptr: plain) and the name the server's certificate must carry
  // (default: host).
  std::shared_ptr<TlsClientCredentials> tls;
  std::string tls_hostname;
  // The metadata context block status asks for (QEMU's x-dirty-bitmap replaces it).
  std::string meta_context = "base:allocation";
  double reconnect_delay_seconds = 0;
};

// One extent of a block status reply: `length` bytes from the queried offset.
struct NbdExtent {
  uint64_t length = 0;
  uint32_t flags = 0;  // kStateHole / kStateZero for base:allocation
};

class Client {
 public:
  // Connects, negotiates (STARTTLS when asked, structured replies, the meta context, GO)
  // and starts the connection's loop. Blocking; any thread without a current loop.
  // Errors carry QEMU's words ("Failed to connect to '...': ...", the server's refusal).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  // Sends NBD_CMD_DISC (if connected), closes the socket and stops the loop. Requests
  // must have completed (the driver's node drains before closing).
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ExportInfo& info() const { return info_; }
  bool structured_replies() const { return structured_; }
  // Whether block status requests are possible (structured + the context agreed).
  bool has_meta_context() const { return meta_context_id_.has_value(); }

  // The requests. `flags` are the NBD command flags (kCmdFlag*). Lengths must fit the
  // server's maximum block size (the driver splits); all may be in flight at once.
  aio::Task<absl::Status> Read(uint64_t offset, const IoVector& qiov);
  aio::Task<absl::Status> Write(uint64_t offset, const IoVector& qiov, uint16_t flags);
  aio::Task<absl::Status> WriteZeroes(uint64_t offset, uint32_t length, uint16_t flags);
  aio::Task<absl::Status> Trim(uint64_t offset, uint32_t length);
  aio::Task<absl::Status> Flush();
  aio::Task<absl::Status> Cache(uint64_t offset, uint32_t length);
  // The status of the run at `offset` (at most `length` bytes; NBD_CMD_FLAG_REQ_ONE).
  aio::Task<absl::StatusOr<NbdExtent>> BlockStatus(uint64_t offset, uint32_t length);

  // Internal (public for the implementation file's helpers).
  struct Request;
  class Connection;

 private:
  explicit Client(const ClientOptions& options);
  aio::Task<absl::Status> Submit(Request& request);

  const ClientOptions options_;
  ExportInfo info_;
  bool structured_ = false;
  std::optional<uint32_t> meta_context_id_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace strata::nbd

#endif  // STRATA_NBD_CLIENT_H_
