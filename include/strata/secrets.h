// strata/secrets.h (public API): secrets by id, as QEMU's `secret` objects provide them (`--object
// secret,id=ID,data=...|file=...[,format=raw|base64][,keyid=KEY,iv=IV]`). Node options name
// them (rbd's key-secret); the tools define them from --object, an embedder with
// RegisterSecret.
//
//   strata::RegisterSecret("key0", "hunter2");   // rbd's key-secret=key0 finds it
//
// Thread-safe. Registering an id again replaces the secret.
#ifndef STRATA_STRATA_SECRETS_H_
#define STRATA_STRATA_SECRETS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace strata {

// A secret object's properties, as given.
struct SecretDefinition {
  std::string id;
  std::optional<std::string> data;
  std::optional<std::string> file;
  std::string format = "raw";  // raw | base64: how data (or the file's text) is encoded
  std::optional<std::string> keyid;  // another secret: a 32-byte AES-256-CBC key
  std::optional<std::string> iv;     // base64, 16 bytes; required with keyid
};

// The secret's bytes: the data or file contents, base64-decoded when format=base64, then
// decrypted with the key secret `keyid` (AES-256-CBC with PKCS#7 padding, through GnuTLS)
// when keyid is set. Errors in QEMU's words ("Either 'file' or 'data' must be provided",
// "Key should be 32 bytes in length", ...).
absl::StatusOr<std::string> LoadSecret(const SecretDefinition& definition);

void RegisterSecret(const std::string& id, std::string bytes);

// The bytes of secret `id`, or "No secret with id 'ID'".
absl::StatusOr<std::string> LookupSecret(const std::string& id);
// The same, base64-encoded (what librados' `key` setting takes).
absl::StatusOr<std::string> LookupSecretAsBase64(const std::string& id);

// QEMU's base64 decoding: characters outside the base64 alphabet are refused ("Base64 data
// contains invalid characters"); padding and length are taken leniently, as glib does.
absl::StatusOr<std::string> DecodeBase64(const std::string& text);

}  // namespace strata

#endif  // STRATA_STRATA_SECRETS_H_
