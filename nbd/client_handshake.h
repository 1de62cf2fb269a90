// strata nbd: the client's side of fixed newstyle negotiation, shared by the nbd driver
// (drivers/nbd) and `qemu-nbd -L`.
//
// Coroutines (run them with aio::RunSync from a plain thread). Every reply is checked
// against the protocol (magic, the option it answers, lengths): a server that breaks it
// gets an error, never a crash or an endless read. Server error replies become statuses
// carrying the server's message.
#ifndef STRATA_NBD_CLIENT_HANDSHAKE_H_
#define STRATA_NBD_CLIENT_HANDSHAKE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aio/task.h"
#include "nbd/stream.h"

namespace strata::nbd {

// Upgrades a client connection to TLS after NBD_OPT_STARTTLS (nbd/tls.h).
class TlsClientCredentials {
 public:
  virtual ~TlsClientCredentials() = default;
  // The client side of the handshake on `*stream`, checking the server's certificate
  // against `hostname`; replaces *stream on success, leaves it on failure.
  virtual aio::Task<absl::Status> Connect(std::unique_ptr<Stream>* stream,
                                          const std::string& hostname) = 0;
};

// What the server said about an export (NBD_OPT_INFO / NBD_OPT_GO).
struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size = 0;
  uint16_t flags = 0;
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_block = 32 * 1024 * 1024;
};

// A metadata context the server agreed to (name and its id on this connection).
struct MetaContext {
  std::string name;
  uint32_t id = 0;
};

class ClientHandshake {
 public:
  // `stream` must stay valid; STARTTLS replaces the stream it points to.
  explicit ClientHandshake(std::unique_ptr<Stream>* stream) : stream_(stream) {}

  // Reads the greeting and answers with our flags. Fails for oldstyle servers and servers
  // that do not speak fixed newstyle.
  aio::Task<absl::Status> Start();
  // NBD_OPT_STARTTLS, then the TLS handshake.
  aio::Task<absl::Status> StartTls(TlsClientCredentials& tls, const std::string& hostname);
  // NBD_OPT_STRUCTURED_REPLY: whether the server agreed.
  aio::Task<absl::StatusOr<bool>> StructuredReply();
  // NBD_OPT_LIST: the exports' names and descriptions.
  aio::Task<absl::StatusOr<std::vector<std::pair<std::string, std::string>>>> List();
  // NBD_OPT_LIST_META_CONTEXT (list) or NBD_OPT_SET_META_CONTEXT for `export_name`.
  aio::Task<absl::StatusOr<std::vector<MetaContext>>> MetaContexts(
      bool list, const std::string& export_name, const std::vector<std::string>& queries);
  // NBD_OPT_INFO (go = false) or NBD_OPT_GO: after a successful GO the connection is in
  // the transmission phase. Falls back to NBD_OPT_EXPORT_NAME when the server does not
  // know GO.
  aio::Task<absl::StatusOr<ExportInfo>> Info(const std::string& export_name, bool go);
  // NBD_OPT_ABORT (the reply is optional; errors are ignored).
  aio::Task<absl::Status> Abort();

  bool no_zeroes() const { return no_zeroes_; }

 private:
  struct OptionReply {
    uint32_t type = 0;
    std::vector<uint8_t> data;
  };
  aio::Task<absl::Status> SendOption(uint32_t option, const std::vector<uint8_t>& data);
  aio::Task<absl::StatusOr<OptionReply>> ReadReply(uint32_t option);
  // The status for an error reply (its message is the server's text).
  static absl::Status ReplyError(uint32_t option, const OptionReply& reply);

  std::unique_ptr<Stream>* stream_;
  bool no_zeroes_ = false;
};

// The transmission flags as qemu-nbd -L names them ("flush fua trim ...").
std::string DescribeTransmissionFlags(uint16_t flags);

}  // namespace strata::nbd

#endif  // STRATA_NBD_CLIENT_HANDSHAKE_H_
