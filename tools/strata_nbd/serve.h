// strata-nbd: serving one image (qemu-nbd FILE).
#ifndef STRATA_TOOLS_STRATA_NBD_SERVE_H_
#define STRATA_TOOLS_STRATA_NBD_SERVE_H_

#include <memory>

#include "strata/nbd.h"
#include "tools/strata_nbd/nbd_options.h"

namespace strata::nbd_tool {

// Opens the image, listens, serves until the last client leaves (unless -t) or a signal
// (SIGINT, SIGTERM, SIGHUP); returns the exit code. `tls` may be null.
int Serve(const NbdOptions& options, std::shared_ptr<nbd::TlsServerCredentials> tls);

}  // namespace strata::nbd_tool

#endif  // STRATA_TOOLS_STRATA_NBD_SERVE_H_
