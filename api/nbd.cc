// strata api: strata/nbd.h over the NBD server, client handshake and TLS (nbd/).
#include "strata/nbd.h"

#include <utility>

#include "aio/run_sync.h"
#include "api/access.h"
#include "block/status.h"
#include "nbd/client_handshake.h"
#include "nbd/connect.h"
#include "nbd/export.h"
#include "nbd/server.h"
#include "nbd/tls.h"
#include "nbd/tls_registry.h"

namespace strata {

absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> LoadTlsServerCredentials(
    const TlsCredsOptions& options, TlsAuthorizer authorize) {
  return nbd::NewTlsServerCredentials(options, std::move(authorize));
}

absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> LoadTlsClientCredentials(
    const TlsCredsOptions& options) {
  return nbd::NewTlsClientCredentials(options);
}

void RegisterTlsClientCredentials(const std::string& id,
                                  std::shared_ptr<nbd::TlsClientCredentials> credentials) {
  nbd::RegisterTlsClientCredentials(id, std::move(credentials));
}

void RegisterTlsServerCredentialsId(const std::string& id) {
  nbd::RegisterTlsServerCredentialsId(id);
}

absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> FindTlsClientCredentials(
    const std::string& id) {
  return nbd::FindTlsClientCredentials(id);
}

absl::StatusOr<std::vector<int>> OpenNbdListeners(const NbdListenAddress& address) {
  nbd::ListenAddress a;
  a.unix_path = address.unix_path;
  a.host = address.host;
  a.port = address.port;
  return nbd::OpenListeners(a);
}

namespace {

nbd::ExportOptions ToExportOptions(const NbdExportSpec& spec) {
  nbd::ExportOptions o;
  o.name = spec.name;
  o.description = spec.description;
  o.read_only = spec.read_only;
  o.allocation_depth = spec.allocation_depth;
  o.bitmaps = spec.bitmaps;
  o.multi_conn = spec.multi_conn;
  o.offset = spec.offset;
  o.detect_zeroes = spec.detect_zeroes == NbdExportSpec::DetectZeroes::kOn
                        ? nbd::ExportOptions::DetectZeroes::kOn
                    : spec.detect_zeroes == NbdExportSpec::DetectZeroes::kUnmap
                        ? nbd::ExportOptions::DetectZeroes::kUnmap
                        : nbd::ExportOptions::DetectZeroes::kOff;
  return o;
}

}  // namespace

absl::Status CheckNbdExportBitmap(Image& image, const std::string& name) {
  nbd::ExportOptions probe;
  probe.bitmaps = {name};
  return nbd::Export(probe, &ApiAccess::BackendOf(image), 0).BitmapNode(name).status();
}

absl::StatusOr<std::unique_ptr<NbdServer>> NbdServer::Start(Image& image,
                                                            const NbdExportSpec& spec,
                                                            Options options) {
  std::unique_ptr<NbdServer> self(new NbdServer());
  self->export_ = std::make_unique<nbd::Export>(ToExportOptions(spec),
                                                &ApiAccess::BackendOf(image), spec.size);
  nbd::ServerConfig config;
  config.exports = {self->export_.get()};
  config.tls = std::move(options.tls);
  config.max_connections = options.max_connections;
  config.loops = options.loops;
  if (options.on_connection_closed) {
    NbdServer* raw = self.get();
    config.on_connection_closed = [raw, fn = std::move(options.on_connection_closed)](
                                      nbd::Server&, int open) { fn(*raw, open); };
  }
  STRATA_ASSIGN_OR_RETURN(self->server_,
                          nbd::Server::Start(std::move(config), std::move(options.listeners)));
  return self;
}

NbdServer::~NbdServer() {
  if (server_ != nullptr) server_->Stop();
}

void NbdServer::RequestStop() { server_->RequestStop(); }
void NbdServer::Wait() { server_->Wait(); }
void NbdServer::Stop() { server_->Stop(); }

namespace {

aio::Task<absl::Status> ListOn(std::unique_ptr<nbd::Stream> stream,
                               nbd::TlsClientCredentials* tls, const std::string& hostname,
                               NbdListing* out) {
  nbd::ClientHandshake handshake(&stream);
  STRATA_CO_RETURN_IF_ERROR(co_await handshake.Start());
  if (tls != nullptr) STRATA_CO_RETURN_IF_ERROR(co_await handshake.StartTls(*tls, hostname));
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> exports =
      co_await handshake.List();
  if (!exports.ok()) co_return exports.status();
  out->listed = true;
  out->exports_available = exports->size();
  for (const auto& [name, description] : *exports) {
    NbdExportListing e;
    e.name = name;
    e.description = description;
    absl::StatusOr<nbd::ExportInfo> info = co_await handshake.Info(name, false);
    if (!info.ok()) {
      out->exports.push_back(std::move(e));
      co_return info.status();
    }
    e.described = true;
    e.size = info->size;
    e.flags = info->flags;
    e.flags_text = nbd::DescribeTransmissionFlags(info->flags);
    e.min_block = info->min_block;
    e.preferred_block = info->preferred_block;
    e.max_block = info->max_block;
    absl::StatusOr<std::vector<nbd::MetaContext>> contexts =
        co_await handshake.MetaContexts(true, name, {});
    if (contexts.ok()) {
      e.contexts_known = true;
      for (const nbd::MetaContext& c : *contexts) e.contexts.push_back(c.name);
    }
    out->exports.push_back(std::move(e));
  }
  (void)co_await handshake.Abort();
  co_return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NbdListing> ListNbdExports(const std::string& unix_path, const std::string& host,
                                          const std::string& port,
                                          nbd::TlsClientCredentials* tls,
                                          const std::string& hostname) {
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<nbd::Stream> stream,
                          unix_path.empty() ? nbd::ConnectTcp(host, port)
                                            : nbd::ConnectUnix(unix_path));
  NbdListing listing;
  listing.error = aio::RunSync(ListOn(std::move(stream), tls, hostname, &listing));
  return listing;
}

}  // namespace strata
