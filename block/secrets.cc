// strata: secrets by id (see secrets.h).
#include "block/secrets.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace strata {
namespace {

struct Store {
  absl::Mutex mu;
  std::map<std::string, std::string> secrets ABSL_GUARDED_BY(mu);
};

Store& Secrets() {
  static Store store;
  return store;
}

int Base64Rank(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  if (c == '=') return 0;
  return -1;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("Unable to read ", path,
                                                   ": Failed to open file \xe2\x80\x9c", path,
                                                   "\xe2\x80\x9d: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// AES-256-CBC decryption of `ciphertext` with `key` and `iv`, PKCS#7 padding removed.
absl::StatusOr<std::string> Decrypt(const std::string& key, const std::string& iv,
                                    std::string ciphertext) {
  if (ciphertext.size() % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Length ", ciphertext.size(), " must be a multiple of block size 16"));
  }
  gnutls_datum_t key_datum{reinterpret_cast<unsigned char*>(const_cast<char*>(key.data())),
                           static_cast<unsigned>(key.size())};
  gnutls_datum_t iv_datum{reinterpret_cast<unsigned char*>(const_cast<char*>(iv.data())),
                          static_cast<unsigned>(iv.size())};
  gnutls_cipher_hd_t handle;
  if (gnutls_cipher_init(&handle, GNUTLS_CIPHER_AES_256_CBC, &key_datum, &iv_datum) < 0) {
    return absl::InternalError("Cannot initialize cipher aes-256-cbc");
  }
  const int r = gnutls_cipher_decrypt(handle, ciphertext.data(), ciphertext.size());
  gnutls_cipher_deinit(handle);
  if (r < 0) return absl::InternalError(absl::StrCat("Cannot decrypt data: ", gnutls_strerror(r)));
  if (ciphertext.empty()) return ciphertext;
  const unsigned pad = static_cast<unsigned char>(ciphertext.back());
  if (pad > 16 || pad > ciphertext.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Incorrect number of padding bytes (", pad, ") found on decrypted data"));
  }
  ciphertext.resize(ciphertext.size() - pad);
  return ciphertext;
}

}  // namespace

absl::StatusOr<std::string> DecodeBase64(const std::string& text) {
  for (char c : text) {
    if (Base64Rank(c) < 0) {
      return absl::InvalidArgumentError("Base64 data contains invalid characters");
    }
  }
  // glib's rule: every 4 characters give 3 bytes ('=' counts as zero bits), a partial
  // group is dropped, and one or two '=' at the very end drop as many bytes.
  std::string out;
  uint32_t acc = 0;
  int n = 0;
  for (char c : text) {
    acc = (acc << 6) | static_cast<uint32_t>(Base64Rank(c));
    if (++n == 4) {
      out += static_cast<char>(acc >> 16);
      out += static_cast<char>(acc >> 8);
      out += static_cast<char>(acc);
      acc = 0;
      n = 0;
    }
  }
  for (size_t i = 0; i < 2 && i < text.size() && !out.empty(); ++i) {
    if (text[text.size() - 1 - i] != '=') break;
    out.pop_back();
  }
  return out;
}

absl::StatusOr<std::string> LoadSecret(const SecretDefinition& d) {
  if (d.data.has_value() && d.file.has_value()) {
    return absl::InvalidArgumentError("'file' and 'data' are mutually exclusive");
  }
  if (!d.data.has_value() && !d.file.has_value()) {
    return absl::InvalidArgumentError("Either 'file' or 'data' must be provided");
  }
  std::string bytes;
  if (d.data.has_value()) {
    bytes = *d.data;
  } else {
    absl::StatusOr<std::string> text = ReadSecretFile(*d.file);
    if (!text.ok()) return text.status();
    bytes = *std::move(text);
  }
  if (d.format == "base64") {
    absl::StatusOr<std::string> decoded = DecodeBase64(bytes);
    if (!decoded.ok()) return decoded.status();
    bytes = *std::move(decoded);
  }
  if (!d.keyid.has_value()) return bytes;
  absl::StatusOr<std::string> key = LookupSecret(*d.keyid);
  if (!key.ok()) {
    if (*d.keyid == d.id) {
      return absl::InvalidArgumentError(absl::StrCat("Secret with id '", d.id, "' has no data"));
    }
    return key.status();
  }
  if (key->size() != 32) return absl::InvalidArgumentError("Key should be 32 bytes in length");
  if (!d.iv.has_value()) return absl::InvalidArgumentError("IV is required to decrypt secret");
  absl::StatusOr<std::string> iv = DecodeBase64(*d.iv);
  if (!iv.ok()) return iv.status();
  if (iv->size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("IV should be 16 bytes in length not ", iv->size()));
  }
  return Decrypt(*key, *iv, std::move(bytes));
}

void RegisterSecret(const std::string& id, std::string bytes) {
  Store& s = Secrets();
  absl::MutexLock lock(&s.mu);
  s.secrets[id] = std::move(bytes);
}

absl::StatusOr<std::string> LookupSecret(const std::string& id) {
  Store& s = Secrets();
  absl::MutexLock lock(&s.mu);
  auto it = s.secrets.find(id);
  if (it == s.secrets.end()) {
    return absl::NotFoundError(absl::StrCat("No secret with id '", id, "'"));
  }
  return it->second;
}

absl::StatusOr<std::string> LookupSecretAsBase64(const std::string& id) {
  absl::StatusOr<std::string> bytes = LookupSecret(id);
  if (!bytes.ok()) return bytes.status();
  return absl::Base64Escape(*bytes);
}

}  // namespace strata
