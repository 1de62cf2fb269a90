// strata nbd: the TLS credentials a process defined (QEMU's `--object tls-creds-x509|psk`
// objects), by id, so that an nbd node's `tls-creds=ID` option can find them. The tools
// register what --object defines; an embedder registers its own.
//
// Thread-safe. Registration replaces an earlier object of the same id.
#ifndef STRATA_NBD_TLS_REGISTRY_H_
#define STRATA_NBD_TLS_REGISTRY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nbd/client_handshake.h"

namespace strata::nbd {

void RegisterTlsClientCredentials(const std::string& id,
                                  std::shared_ptr<TlsClientCredentials> credentials);
// Records that `id` names credentials with a server endpoint (a client cannot use them).
void RegisterTlsServerCredentialsId(const std::string& id);

// The client credentials `id` names. Errors as QEMU words them: "No TLS credentials with
// id 'ID'", "Expecting TLS credentials with a client endpoint".
absl::StatusOr<std::shared_ptr<TlsClientCredentials>> FindTlsClientCredentials(
    const std::string& id);

}  // namespace strata::nbd

#endif  // STRATA_NBD_TLS_REGISTRY_H_
