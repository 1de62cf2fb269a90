// strata nbd: Server, the NBD server (fixed newstyle negotiation, structured replies,
// metadata contexts, TLS) serving Exports over TCP and Unix sockets.
//
// Threads: the server runs `loops` event loops (aio::LoopThread). Loop 0 accepts; each
// connection lives on one loop (round robin), where its requests run as coroutines: many
// requests in flight per connection, and connections on different loops in parallel.
// Replies go out in completion order (the protocol matches them by handle).
//
// Lifetime: Start, then Stop (or the destructor) closes the listeners, ends every
// connection (requests in flight finish first) and joins the loops. Exports and their
// backends must outlive the server.
#ifndef STRATA_NBD_SERVER_H_
#define STRATA_NBD_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "aio/loop_thread.h"
#include "nbd/export.h"
#include "nbd/stream.h"

namespace strata::nbd {

class Server;
class ServerConnection;

// Upgrades a connection to TLS (NBD_OPT_STARTTLS). Implemented by nbd/tls.h.
class TlsServerCredentials {
 public:
  virtual ~TlsServerCredentials() = default;
  // Runs the server side of the handshake on `*stream` (on the connection's loop). On
  // success *stream is replaced by the TLS stream (which owns the old one); on failure it
  // is left as it was (the caller drops the connection).
  virtual aio::Task<absl::Status> Accept(std::unique_ptr<Stream>* stream) = 0;
};

// Where to listen: a Unix socket path, or a TCP host (name or address) and port.
struct ListenAddress {
  std::string unix_path;  // used when not empty
  std::string host = "0.0.0.0";
  uint16_t port = 10809;
};

// Listening sockets for `address` (every address the host name resolves to). Errors
// carry qemu-nbd's wording: "Failed to bind socket: Address already in use".
absl::StatusOr<std::vector<int>> OpenListeners(const ListenAddress& address);

struct ServerConfig {
  std::vector<const Export*> exports;  // not owned
  // When set, clients must upgrade with NBD_OPT_STARTTLS before anything else.
  std::shared_ptr<TlsServerCredentials> tls;
  // Connections served at once (qemu-nbd -e); further clients wait in the listen queue.
  int max_connections = 1;
  // Event loops (at least 1).
  int loops = 1;
  // Called on loop 0 after a connection ended, with the number still open (qemu-nbd exits
  // when the last client leaves unless -t). It must not call Stop; RequestStop is fine.
  std::function<void(Server& server, int open_connections)> on_connection_closed;
};

class Server {
 public:
  // Starts the loops and accepts on `listeners` (takes ownership of the descriptors).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerConfig config,
                                                       std::vector<int> listeners);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, disconnects every client and waits until they are gone. Idempotent;
  // any thread but a server loop.
  void Stop();
  // Asks Wait to return; does not stop anything itself. Any thread, callbacks included.
  void RequestStop();
  // Blocks until RequestStop or Stop was called.
  void Wait();

  // Internal: used by connections.
  const ServerConfig& config() const { return config_; }
  const Export* FindExport(absl::string_view name) const;

  explicit Server(ServerConfig config);  // use Start

 private:
  friend class ServerConnection;
  aio::Task<absl::Status> AcceptLoop(int listener);
  // Loop 0: hands a new client to the next loop.
  void Launch(int fd);
  // Loop 0: a connection's coroutine has returned; frees it and wakes a parked accept.
  void ConnectionEnded(ServerConnection* connection);

  const ServerConfig config_;
  std::vector<std::unique_ptr<aio::LoopThread>> loops_;
  std::vector<int> listeners_;
  size_t next_loop_ = 0;  // loop 0 only

  absl::Mutex mu_;
  std::vector<std::unique_ptr<ServerConnection>> connections_ ABSL_GUARDED_BY(mu_);
  int accept_loops_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  // Loop 0 only: the accept loops parked because max_connections are open.
  std::vector<std::coroutine_handle<>> parked_accepts_;
  int open_connections_ = 0;  // loop 0 only
};

}  // namespace strata::nbd

#endif  // STRATA_NBD_SERVER_H_
