// strata-nbd -L: lists the exports of a server as qemu-nbd -L prints them.
#include "tools/strata_nbd/list_exports.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/nbd.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {


int ListExports(const NbdOptions& options, nbd::TlsClientCredentials* tls) {
  const std::string hostname = options.tls_hostname.empty() ? options.bind : options.tls_hostname;
  absl::StatusOr<NbdListing> listing =
      ListNbdExports(options.socket_path, options.bind, options.port, tls, hostname);
  if (!listing.ok()) {
    tools::ErrorReport(listing.status().message());
    return 1;
  }
  if (listing->listed) std::printf("exports available: %zu\n", listing->exports_available);
  for (const NbdExportListing& e : listing->exports) {
    std::printf(" export: '%s'\n", e.name.c_str());
    if (!e.description.empty()) std::printf("  description: %s\n", e.description.c_str());
    if (!e.described) break;  // the error below says why
    std::printf("  size:  %llu\n", static_cast<unsigned long long>(e.size));
    std::printf("  flags: 0x%x (%s )\n", e.flags, e.flags_text.c_str());
    std::printf("  min block: %u\n", e.min_block);
    std::printf("  opt block: %u\n", e.preferred_block);
    std::printf("  max block: %u\n", e.max_block);
    if (e.contexts_known) {
      std::printf("  available meta contexts: %zu\n", e.contexts.size());
      for (const std::string& c : e.contexts) std::printf("   %s\n", c.c_str());
    }
  }
  if (!listing->error.ok()) {
    tools::ErrorReport(listing->error.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::nbd_tool
