// strata nbd: TLS for NBD connections (NBD_OPT_STARTTLS) with GnuTLS, in QEMU's terms:
// x509 credentials read from a directory (ca-cert.pem, server-cert.pem, server-key.pem,
// client-cert.pem, client-key.pem, ca-crl.pem, dh-params.pem) or pre-shared keys from
// `dir/keys.psk` ("username:hexkey" lines), as QEMU's tls-creds-x509 / tls-creds-psk
// objects describe them.
//
// The streams these produce do the TLS handshake and records over a nonblocking socket:
// on a loop they park while the socket is not ready, like the plain socket stream.
#ifndef STRATA_NBD_TLS_H_
#define STRATA_NBD_TLS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nbd/client_handshake.h"
#include "nbd/server.h"
#include "strata/nbd.h"

namespace strata::nbd {

// TlsCredsOptions and TlsAuthorizer are public (strata/nbd.h).
using ::strata::TlsAuthorizer;
using ::strata::TlsCredsOptions;

// Loads server credentials. Errors: "Unable to access credentials PATH: reason".
// `authorize` may be empty (everyone with valid credentials may connect).
absl::StatusOr<std::shared_ptr<TlsServerCredentials>> NewTlsServerCredentials(
    const TlsCredsOptions& options, TlsAuthorizer authorize);
absl::StatusOr<std::shared_ptr<TlsClientCredentials>> NewTlsClientCredentials(
    const TlsCredsOptions& options);

}  // namespace strata::nbd

#endif  // STRATA_NBD_TLS_H_
