// strata-nbd -L: lists the exports of a server as qemu-nbd -L prints them.
#include "tools/strata_nbd/list_exports.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "aio/run_sync.h"
#include "block/status.h"
#include "nbd/client_handshake.h"
#include "nbd/connect.h"
#include "nbd/protocol.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {

namespace {

aio::Task<absl::Status> ListOn(std::unique_ptr<nbd::Stream> stream,
                               nbd::TlsClientCredentials* tls, const std::string& hostname) {
  nbd::ClientHandshake handshake(&stream);
  STRATA_CO_RETURN_IF_ERROR(co_await handshake.Start());
  if (tls != nullptr) STRATA_CO_RETURN_IF_ERROR(co_await handshake.StartTls(*tls, hostname));
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> exports =
      co_await handshake.List();
  if (!exports.ok()) co_return exports.status();
  std::printf("exports available: %zu\n", exports->size());
  for (const auto& [name, description] : *exports) {
    std::printf(" export: '%s'\n", name.c_str());
    if (!description.empty()) std::printf("  description: %s\n", description.c_str());
    absl::StatusOr<nbd::ExportInfo> info = co_await handshake.Info(name, false);
    if (!info.ok()) co_return info.status();
    std::printf("  size:  %llu\n", static_cast<unsigned long long>(info->size));
    std::printf("  flags: 0x%x (%s )\n", info->flags,
                nbd::DescribeTransmissionFlags(info->flags).c_str());
    std::printf("  min block: %u\n", info->min_block);
    std::printf("  opt block: %u\n", info->preferred_block);
    std::printf("  max block: %u\n", info->max_block);
    absl::StatusOr<std::vector<nbd::MetaContext>> contexts =
        co_await handshake.MetaContexts(true, name, {});
    if (contexts.ok()) {
      std::printf("  available meta contexts: %zu\n", contexts->size());
      for (const nbd::MetaContext& c : *contexts) std::printf("   %s\n", c.name.c_str());
    }
  }
  (void)co_await handshake.Abort();
  co_return absl::OkStatus();
}

}  // namespace

int ListExports(const NbdOptions& options, nbd::TlsClientCredentials* tls) {
  absl::StatusOr<std::unique_ptr<nbd::Stream>> stream =
      options.socket_path.empty() ? nbd::ConnectTcp(options.bind, options.port)
                                  : nbd::ConnectUnix(options.socket_path);
  if (!stream.ok()) {
    tools::ErrorReport(stream.status().message());
    return 1;
  }
  const std::string hostname = options.tls_hostname.empty() ? options.bind : options.tls_hostname;
  absl::Status listed = aio::RunSync(ListOn(std::move(*stream), tls, hostname));
  if (!listed.ok()) {
    tools::ErrorReport(listed.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::nbd_tool
