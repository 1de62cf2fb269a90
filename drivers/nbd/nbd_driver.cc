// strata: the `nbd` protocol driver (QEMU's nbd): a disk served by an NBD server, reached
// over TCP or a Unix socket, optionally with TLS. Requests go through nbd::Client (one
// connection, many requests in flight, a loop of its own); block status comes from the
// server's base:allocation context; formats (qcow2, raw) sit on top as on a file.
#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "aio/run_sync.h"
#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"
#include "drivers/nbd/nbd_address.h"
#include "nbd/client.h"
#include "nbd/protocol.h"
#include "nbd/tls_registry.h"

namespace strata {
namespace {

using nbd::Client;

// Requests without payload (trim, write-zeroes) are split at this many bytes; the
// protocol's length field is 32 bits.
constexpr uint64_t kMaxNoPayloadRequest = 1u << 30;

// Thread-safe: the client serialises nothing but its socket.
class NbdInstance : public DriverInstance {
 public:
  NbdInstance(BlockDriverState* node, std::unique_ptr<Client> client)
      : node_(node), client_(std::move(client)) {
    const nbd::ExportInfo& info = client_->info();
    alignment_ = std::max<uint32_t>(info.min_block, 1);
    max_transfer_ = std::min<uint32_t>(info.max_block, nbd::kMaxBufferSize);
    max_transfer_ -= max_transfer_ % alignment_;
  }

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    return aio::RunSync(CoPreadv(offset, bytes, qiov, flags));
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    return aio::RunSync(CoPwritev(offset, bytes, qiov, flags));
  }

  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t) override {
    // The node rounds the length up to 512 bytes; the server's size may not be. The part
    // past the server's end reads as zeroes (QEMU does the same).
    const uint64_t size = client_->info().size;
    if (offset + bytes > size) {
      const uint64_t inside = offset >= size ? 0 : size - offset;
      qiov.Memset(inside, 0, bytes - inside);
      bytes = inside;
    }
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min<uint64_t>(bytes - done, max_transfer_);
      STRATA_CO_RETURN_IF_ERROR(co_await client_->Read(offset + done, qiov.Slice(done, n)));
      done += n;
    }
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override {
    if (flags & kReqWriteCompressed) co_return ErrnoError(ENOTSUP);
    const bool fua = (flags & kReqFua) != 0;
    const uint16_t nbd_flags = fua && Has(nbd::kFlagSendFua) ? nbd::kCmdFlagFua : 0;
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min<uint64_t>(bytes - done, max_transfer_);
      STRATA_CO_RETURN_IF_ERROR(
          co_await client_->Write(offset + done, qiov.Slice(done, n), nbd_flags));
      done += n;
    }
    // A server without FUA: a flush makes the write stable.
    if (fua && nbd_flags == 0) co_return co_await CoFlushToDisk();
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> CoFlushToDisk() override {
    if (!Has(nbd::kFlagSendFlush)) co_return absl::OkStatus();
    co_return co_await client_->Flush();
  }
  absl::Status FlushToDisk() override { return aio::RunSync(CoFlushToDisk()); }

  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    if (!Has(nbd::kFlagSendWriteZeroes)) return ErrnoError(ENOTSUP);
    uint16_t nbd_flags = 0;
    if (!(flags & kReqMayUnmap)) nbd_flags |= nbd::kCmdFlagNoHole;
    if (flags & kReqNoFallback) {
      if (!Has(nbd::kFlagSendFastZero)) return ErrnoError(ENOTSUP);
      nbd_flags |= nbd::kCmdFlagFastZero;
    }
    if ((flags & kReqFua) && Has(nbd::kFlagSendFua)) nbd_flags |= nbd::kCmdFlagFua;
    return ForEachPiece(offset, bytes, [&](uint64_t at, uint32_t n) {
      return aio::RunSync(client_->WriteZeroes(at, n, nbd_flags));
    });
  }

  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    if (!Has(nbd::kFlagSendTrim)) return absl::OkStatus();
    return ForEachPiece(offset, bytes, [&](uint64_t at, uint32_t n) {
      return aio::RunSync(client_->Trim(at, n));
    });
  }

  absl::Status Truncate(uint64_t length, bool exact, PreallocMode) override {
    const uint64_t size = client_->info().size;
    if (length != size && exact) return ErrnoError(ENOTSUP, "Cannot resize NBD nodes");
    if (length > size) return ErrnoError(EINVAL, "Cannot grow NBD nodes");
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> GetLength() override { return client_->info().size; }

  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    BlockStatus s = ProtocolDataStatus(node_, offset, bytes);
    const uint64_t size = client_->info().size;
    if (offset >= size) {  // the sector tail past the server's end
      s.data = false;
      s.zero = true;
      s.offset_valid = false;
      return s;
    }
    bytes = std::min(bytes, size - offset);
    s.bytes = bytes;
    if (!client_->has_meta_context()) return s;
    const uint64_t ask = std::min<uint64_t>(bytes, kMaxNoPayloadRequest);
    absl::StatusOr<nbd::NbdExtent> extent =
        aio::RunSync(client_->BlockStatus(offset, static_cast<uint32_t>(ask)));
    if (!extent.ok()) return extent.status();
    s.bytes = std::min<uint64_t>(extent->length, bytes);
    s.data = !(extent->flags & nbd::kStateHole);
    s.zero = (extent->flags & nbd::kStateZero) != 0;
    return s;
  }

  uint32_t request_alignment() const override { return alignment_; }

  DriverInfo GetInfo() override {
    DriverInfo info;
    info.available = false;
    return info;
  }

 private:
  bool Has(uint16_t flag) const { return (client_->info().flags & flag) != 0; }

  // Runs `fn` over [offset, offset + bytes) in pieces the protocol can carry.
  template <typename Fn>
  absl::Status ForEachPiece(uint64_t offset, uint64_t bytes, Fn fn) {
    const uint64_t piece = kMaxNoPayloadRequest - kMaxNoPayloadRequest % alignment_;
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min<uint64_t>(bytes - done, piece);
      STRATA_RETURN_IF_ERROR(fn(offset + done, static_cast<uint32_t>(n)));
      done += n;
    }
    return absl::OkStatus();
  }

  BlockDriverState* const node_;
  const std::unique_ptr<Client> client_;
  uint32_t alignment_ = 1;
  uint32_t max_transfer_ = nbd::kMaxBufferSize;
};

class NbdDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "nbd"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::string_view protocol_prefix() const override { return "nbd"; }
  // What names the export: a parent given strong options shows them (json:{...}).
  // An export has no directory: a relative backing file name stored in an image served
  // over NBD cannot be resolved (QEMU refuses it the same way).
  absl::Status CheckHasBaseDirectory() const override {
    return ErrnoError(ENOTSUP, "Cannot generate a base directory for NBD nodes");
  }
  std::vector<absl::string_view> strong_options() const override {
    return {"path", "host", "port", "export", "tls-creds", "tls-hostname", "server."};
  }
  bool HandlesProtocol(absl::string_view protocol) const override {
    return protocol == "nbd" || protocol == "nbd+tcp" || protocol == "nbd+unix";
  }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::NbdOptions& opts = ctx.options().nbd();
    STRATA_ASSIGN_OR_RETURN(nbd::NbdAddress address, nbd::NbdAddressFromOptions(opts));
    nbd::ClientOptions options;
    options.unix_path = address.unix_path;
    options.host = address.host;
    options.port = address.port;
    options.export_name = address.export_name;
    options.tls_hostname = opts.tls_hostname();
    if (!opts.x_dirty_bitmap().empty()) options.meta_context = opts.x_dirty_bitmap();
    options.reconnect_delay_seconds = static_cast<double>(opts.reconnect_delay());
    if (!opts.tls_creds().empty()) {
      if (!address.unix_path.empty() && opts.tls_hostname().empty()) {
        return ErrnoError(EINVAL, "No hostname for certificate validation");
      }
      STRATA_ASSIGN_OR_RETURN(options.tls, nbd::FindTlsClientCredentials(opts.tls_creds()));
    }
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(options));
    if ((client->info().flags & nbd::kFlagReadOnly) && !ctx.flags().read_only) {
      // QEMU's words (its read-only check fails the open with EACCES).
      return Prefixed("Could not open image", ErrnoError(EACCES));
    }
    // QEMU's block layer rule: a writer of a node whose size is not a multiple of its
    // request alignment would need to resize it.
    const nbd::ExportInfo& info = client->info();
    if (!ctx.flags().read_only && info.min_block > 1 && info.size % info.min_block != 0) {
      return ErrnoError(EPERM, "Cannot get 'write' permission without 'resize': Image size "
                               "is not a multiple of request alignment");
    }
    ctx.node().set_filename(nbd::DisplayName(address));
    return std::make_unique<NbdInstance>(&ctx.node(), std::move(client));
  }
};

STRATA_REGISTER_DRIVER(NbdDriver);

}  // namespace
}  // namespace strata
