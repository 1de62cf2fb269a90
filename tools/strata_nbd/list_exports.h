// strata-nbd -L: list another server's exports (qemu-nbd -L).
#ifndef STRATA_TOOLS_STRATA_NBD_LIST_EXPORTS_H_
#define STRATA_TOOLS_STRATA_NBD_LIST_EXPORTS_H_

#include "strata/nbd.h"
#include "tools/strata_nbd/nbd_options.h"

namespace strata::nbd_tool {

// Connects to -k PATH or -b HOST -p PORT (TLS when `tls`), prints the exports; returns the
// exit code.
int ListExports(const NbdOptions& options, nbd::TlsClientCredentials* tls);

}  // namespace strata::nbd_tool

#endif  // STRATA_TOOLS_STRATA_NBD_LIST_EXPORTS_H_
