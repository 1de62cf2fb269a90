// strata-nbd: the --object definitions qemu-nbd takes (tls-creds-x509, tls-creds-psk,
// authz-simple, authz-list-file, secret, iothread) and the TLS set-up they lead to with
// --tls-creds / --tls-authz. Credentials are loaded as the object is defined, so missing
// files are reported in QEMU's order and words.
#ifndef STRATA_TOOLS_STRATA_NBD_TLS_OBJECTS_H_
#define STRATA_TOOLS_STRATA_NBD_TLS_OBJECTS_H_

#include <memory>

#include "strata/nbd.h"
#include "tools/strata_nbd/nbd_options.h"

namespace strata::nbd_tool {

struct TlsSetup {
  std::shared_ptr<nbd::TlsServerCredentials> server;  // serving with --tls-creds
  std::shared_ptr<nbd::TlsClientCredentials> client;  // -L with --tls-creds
};

// Defines the objects and resolves --tls-creds/--tls-authz; prints the error and returns
// false on failure. `--object help` prints the object types and exits 0.
bool SetUpTls(const NbdOptions& options, TlsSetup* setup);

}  // namespace strata::nbd_tool

#endif  // STRATA_TOOLS_STRATA_NBD_TLS_OBJECTS_H_
