// strata/nbd.h (public API): serving an Image over NBD, listing a server's exports, and
// the TLS credentials both use.
//
//   strata::NbdExportSpec e;
//   e.name = "disk0";
//   auto listeners = strata::OpenNbdListeners({.unix_path = "/run/vm/disk0.sock"});
//   strata::NbdServer::Options o;
//   o.listeners = *std::move(listeners);
//   auto server = strata::NbdServer::Start(*image, e, o);   // serves on loops of its own
//   (*server)->Wait();                                       // until RequestStop
//   (*server)->Stop();
//
// Clients (the nbd driver, "nbd+unix:///disk0?socket=..." filenames) are opened through
// strata::Image like any other image.
//
// Thread safety: the functions are thread-safe; an NbdServer's methods may be called from
// any thread (Stop not from its own callbacks). TLS credentials are immutable once loaded.
#ifndef STRATA_STRATA_NBD_H_
#define STRATA_STRATA_NBD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata {

class Image;
namespace nbd {  // internal
class Export;
class Server;
class TlsClientCredentials;
class TlsServerCredentials;
}  // namespace nbd

// --- TLS (QEMU's tls-creds-x509 / tls-creds-psk objects) ---
struct TlsCredsOptions {
  enum class Kind { kX509, kPsk };
  Kind kind = Kind::kX509;
  bool server = true;      // endpoint=server|client
  std::string dir;         // where the files are
  bool verify_peer = true;  // x509: check the peer's certificate (server: demand one)
  std::string username = "qemu";  // psk, client side
  std::string priority;    // GnuTLS priority string; empty = QEMU's default
};
// Decides whether a peer may use the server, given its identity: the distinguished name
// of its x509 certificate, or its PSK username. QEMU's --tls-authz.
using TlsAuthorizer = std::function<bool(const std::string& identity)>;

// Loads credentials. Errors in QEMU's words ("Unable to access credentials PATH: ...").
// `authorize` may be empty (everyone with valid credentials may connect).
absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> LoadTlsServerCredentials(
    const TlsCredsOptions& options, TlsAuthorizer authorize);
absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> LoadTlsClientCredentials(
    const TlsCredsOptions& options);
// The process's credentials by id, where an nbd node's `tls-creds=ID` finds them.
// Registering an id again replaces it.
void RegisterTlsClientCredentials(const std::string& id,
                                  std::shared_ptr<nbd::TlsClientCredentials> credentials);
// Records that `id` names server credentials (a client cannot use them).
void RegisterTlsServerCredentialsId(const std::string& id);
// Errors as QEMU words them ("No TLS credentials with id 'ID'", ...).
absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> FindTlsClientCredentials(
    const std::string& id);

// --- Serving ---
struct NbdListenAddress {
  std::string unix_path;  // used when not empty
  std::string host = "0.0.0.0";
  uint16_t port = 10809;
};
// Listening sockets for `address` (every address the host resolves to); the caller owns
// them until NbdServer::Start takes them. Errors in qemu-nbd's words.
absl::StatusOr<std::vector<int>> OpenNbdListeners(const NbdListenAddress& address);

// What one export offers (qemu-nbd's -x, -D, -r, -A, -B, -e, -o, --detect-zeroes).
struct NbdExportSpec {
  std::string name;  // "" is the default export
  std::string description;
  bool read_only = false;
  bool allocation_depth = false;      // the qemu:allocation-depth context
  std::vector<std::string> bitmaps;   // qemu:dirty-bitmap:NAME contexts
  bool multi_conn = false;            // clients may share writes across connections
  uint64_t offset = 0;                // where the export starts in the image
  uint64_t size = 0;                  // bytes from `offset` on
  enum class DetectZeroes { kOff, kOn, kUnmap };
  DetectZeroes detect_zeroes = DetectZeroes::kOff;
};

// Whether bitmap `name` exists in the image or its backing chain and can be exported;
// QEMU's error otherwise.
absl::Status CheckNbdExportBitmap(Image& image, const std::string& name);

class NbdServer {
 public:
  struct Options {
    std::vector<int> listeners;  // taken over (closed by the server)
    std::shared_ptr<nbd::TlsServerCredentials> tls;  // set: clients must STARTTLS
    int max_connections = 1;  // served at once; more wait in the listen queue
    int loops = 1;            // event loops serving the connections
    // Called on a server loop after a connection ended, with the number still open. It
    // may call RequestStop, not Stop.
    std::function<void(NbdServer& server, int open_connections)> on_connection_closed;
  };
  // Serves `image` (which must outlive the server) as one export.
  static absl::StatusOr<std::unique_ptr<NbdServer>> Start(Image& image,
                                                          const NbdExportSpec& spec,
                                                          Options options);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Makes Wait return. Any thread, callbacks included.
  void RequestStop();
  // Blocks until RequestStop.
  void Wait();
  // Stops accepting, disconnects every client, waits until they are gone. Idempotent.
  void Stop();

 private:
  NbdServer() = default;
  std::unique_ptr<nbd::Export> export_;
  std::unique_ptr<nbd::Server> server_;
};

// --- Listing another server's exports (qemu-nbd -L) ---
struct NbdExportListing {
  std::string name;
  std::string description;
  bool described = false;  // the fields below came (the server answered NBD_OPT_INFO)
  uint64_t size = 0;
  uint16_t flags = 0;
  std::string flags_text;  // "send_flush send_fua ..." as qemu-nbd prints them
  uint32_t min_block = 0, preferred_block = 0, max_block = 0;
  bool contexts_known = false;        // the server answered the meta context query
  std::vector<std::string> contexts;  // its metadata contexts
};
struct NbdListing {
  bool listed = false;         // the server answered the list request
  size_t exports_available = 0;
  std::vector<NbdExportListing> exports;  // described so far
  absl::Status error;          // what stopped the listing (OK if it completed)
};
// Connects to `unix_path`, or to `host`:`port` (a number or service name), optionally
// with TLS (`hostname` checked against the server's certificate), and describes each
// export. A failure to connect is the returned error; a failure midway is in `error`.
absl::StatusOr<NbdListing> ListNbdExports(const std::string& unix_path, const std::string& host,
                                          const std::string& port,
                                          nbd::TlsClientCredentials* tls,
                                          const std::string& hostname);

}  // namespace strata

#endif  // STRATA_STRATA_NBD_H_
