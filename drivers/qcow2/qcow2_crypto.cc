#include "drivers/qcow2/qcow2_crypto.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "block/secrets.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {
namespace {

bool InsideExtent(const CryptoHeaderExtension& ext, uint64_t offset, uint64_t len) {
  return offset <= ext.length && len <= ext.length - offset;
}

// Volume bytes [offset, offset + len): only inside the extent the extension gives,
// zeroes past the file's end (as QEMU reads them).
absl::Status ReadExtent(BlockDriverState& file, uint64_t file_length,
                        const CryptoHeaderExtension& ext, uint64_t offset, uint64_t len,
                        uint8_t* out) {
  if (!InsideExtent(ext, offset, len)) {
    return ErrnoError(EINVAL, "Request for data outside of extension header");
  }
  std::memset(out, 0, len);
  const uint64_t at = ext.offset + offset;
  if (at < ext.offset || at >= file_length) return absl::OkStatus();
  return file.Pread(at, std::min(len, file_length - at), out);
}

}  // namespace

std::optional<CryptoHeaderExtension> FindCryptoExtension(const Qcow2Header& header) {
  for (const HeaderExtension& e : header.other_extensions) {
    if (e.magic == kExtCrypto && e.data.size() == 16) {
      return CryptoHeaderExtension{LoadBe64(&e.data[0]), LoadBe64(&e.data[8])};
    }
  }
  return std::nullopt;
}

std::vector<uint8_t> EncodeCryptoExtension(const CryptoHeaderExtension& ext) {
  std::vector<uint8_t> data(16);
  StoreBe64(&data[0], ext.offset);
  StoreBe64(&data[8], ext.length);
  return data;
}

absl::Status ValidateCryptoHeader(const Qcow2Header& h) {
  if (h.crypt_method > kCryptLuks) {
    return ErrnoError(EINVAL, absl::StrCat("Unsupported encryption method ", h.crypt_method));
  }
  for (const HeaderExtension& e : h.other_extensions) {
    if (e.magic != kExtCrypto) continue;
    if (h.crypt_method != kCryptLuks) {
      return ErrnoError(EINVAL, "CRYPTO header extension only expected with LUKS encryption "
                                "method");
    }
    if (e.data.size() != 16) {
      return ErrnoError(EINVAL, absl::StrCat("CRYPTO header extension size ", e.data.size(),
                                             ", but expected size 16"));
    }
    const uint64_t offset = LoadBe64(&e.data[0]);
    if (offset % h.cluster_size() != 0) {
      return ErrnoError(EINVAL, absl::StrCat("Encryption header offset '", offset,
                                             "' is not a multiple of cluster size '",
                                             h.cluster_size(), "'"));
    }
  }
  return absl::OkStatus();
}

std::vector<uint8_t> AesKeyFromPassphrase(const std::string& passphrase) {
  std::vector<uint8_t> key(16, 0);
  std::memcpy(key.data(), passphrase.data(), std::min<size_t>(passphrase.size(), 16));
  return key;
}

absl::StatusOr<std::unique_ptr<Qcow2Crypto>> Qcow2Crypto::Open(
    const Qcow2Header& header, const proto::Qcow2EncryptOptions& options, bool no_io,
    BlockDriverState& file) {
  const uint32_t method = header.crypt_method;
  const char* const header_format = method == kCryptAes ? "aes" : "luks";
  if (!options.format().empty() && options.format() != header_format) {
    return ErrnoError(EINVAL, absl::StrCat("Header reported '", header_format,
                                           "' encryption format but options specify '",
                                           options.format(), "'"));
  }
  auto passphrase = [&]() -> absl::StatusOr<std::string> {
    if (options.key_secret().empty()) {
      return ErrnoError(EINVAL, "Parameter 'encrypt.key-secret' is required for cipher");
    }
    return LookupSecret(options.key_secret());
  };
  if (method == kCryptAes) {
    if (no_io) {
      return std::unique_ptr<Qcow2Crypto>(
          new Qcow2Crypto(method, std::nullopt, std::nullopt, nullptr));
    }
    STRATA_ASSIGN_OR_RETURN(const std::string secret, passphrase());
    return ForAesKey(secret);
  }
  const std::optional<CryptoHeaderExtension> ext = FindCryptoExtension(header);
  if (!ext) {
    // QEMU opens such an image for its metadata (info), and refuses it for I/O.
    if (no_io) {
      return std::unique_ptr<Qcow2Crypto>(
          new Qcow2Crypto(method, std::nullopt, std::nullopt, nullptr));
    }
    return ErrnoError(EINVAL, "Missing CRYPTO header for crypt method 2");
  }
  std::string secret;
  if (!no_io) {
    STRATA_ASSIGN_OR_RETURN(secret, passphrase());
  }
  STRATA_ASSIGN_OR_RETURN(const uint64_t file_length, file.GetLength());
  auto read = [&](uint64_t offset, uint64_t len, uint8_t* out) {
    return ReadExtent(file, file_length, *ext, offset, len, out);
  };
  STRATA_ASSIGN_OR_RETURN(luks::LuksHeader volume, luks::ReadVolumeHeader(read));
  std::unique_ptr<luks::SectorCipher> cipher;
  std::vector<uint8_t> key;
  if (!no_io) {
    STRATA_ASSIGN_OR_RETURN(key, luks::UnlockVolume(volume, secret, read));
    STRATA_ASSIGN_OR_RETURN(cipher, luks::VolumeCipher(volume, key));
  }
  return std::unique_ptr<Qcow2Crypto>(
      new Qcow2Crypto(method, ext, std::move(volume), std::move(cipher), std::move(key)));
}

std::unique_ptr<Qcow2Crypto> Qcow2Crypto::ForNewLuksVolume(const CryptoHeaderExtension& extent,
                                                           const luks::NewVolume& volume) {
  // FormatVolume made this cipher once already: it cannot fail here.
  absl::StatusOr<std::unique_ptr<luks::SectorCipher>> cipher =
      luks::VolumeCipher(volume.header, volume.master_key);
  return std::unique_ptr<Qcow2Crypto>(new Qcow2Crypto(kCryptLuks, extent, volume.header,
                                                     cipher.ok() ? *std::move(cipher) : nullptr,
                                                     volume.master_key));
}

absl::StatusOr<std::unique_ptr<Qcow2Crypto>> Qcow2Crypto::ForAesKey(const std::string& passphrase) {
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<luks::SectorCipher> cipher,
                          luks::SectorCipher::Create("aes", "cbc", "plain64", "",
                                                     AesKeyFromPassphrase(passphrase)));
  return std::unique_ptr<Qcow2Crypto>(
      new Qcow2Crypto(kCryptAes, std::nullopt, std::nullopt, std::move(cipher)));
}

absl::Status Qcow2Crypto::AmendKeySlots(const luks::KeySlotAmend& amend,
                                        BlockDriverState& file) {
  if (!luks_ || !extent_ || master_key_.empty()) {
    return ErrnoError(ENOTSUP, "Key slots can only be amended on LUKS-encrypted images");
  }
  const CryptoHeaderExtension ext = *extent_;
  STRATA_ASSIGN_OR_RETURN(const uint64_t file_length, file.GetLength());
  auto read = [&](uint64_t offset, uint64_t len, uint8_t* out) {
    return ReadExtent(file, file_length, ext, offset, len, out);
  };
  // Each write synced before the next: the material must be stable before the header
  // that activates it, the header before the material of an erased slot goes.
  auto write = [&](uint64_t offset, const std::vector<uint8_t>& bytes) -> absl::Status {
    if (!InsideExtent(ext, offset, bytes.size())) {
      return ErrnoError(EINVAL, "Request for data outside of extension header");
    }
    STRATA_RETURN_IF_ERROR(file.Pwrite(ext.offset + offset, bytes.size(), bytes.data()));
    return file.Flush();
  };
  return luks::AmendKeySlots(*luks_, master_key_, amend, read, write);
}

void Qcow2Crypto::Encrypt(uint64_t host, uint64_t guest, uint8_t* data, uint64_t len) const {
  cipher_->Encrypt(Sector(host, guest), data, len);
}

void Qcow2Crypto::Decrypt(uint64_t host, uint64_t guest, uint8_t* data, uint64_t len) const {
  cipher_->Decrypt(Sector(host, guest), data, len);
}

FormatSpecificNested Qcow2Crypto::Info() const {
  FormatSpecificNested info;
  if (luks_) {
    info.entries = luks::VolumeInfo(*luks_, /*with_format=*/true);
  } else {
    FormatSpecificEntry e;
    e.key = "format";
    e.value = std::string(method_ == kCryptAes ? "aes" : "luks");
    info.entries.push_back(std::move(e));
  }
  return info;
}

absl::StatusOr<bool> SetEncryptCreateParam(EncryptCreateParams& p, const std::string& key,
                                           const std::string& value) {
  if (key == "encryption") {
    if (value == "on" || value == "true") p.encryption = true;
    else if (value == "off" || value == "false") p.encryption = false;
    else return ErrnoError(EINVAL, "Parameter 'encryption' expects 'on' or 'off'");
    return true;
  }
  const std::string kPrefix = "encrypt.";
  if (key.rfind(kPrefix, 0) != 0) return false;
  const std::string sub = key.substr(kPrefix.size());
  p.any_given = true;
  if (sub == "format") {
    p.format = value;
    return true;
  }
  STRATA_ASSIGN_OR_RETURN(bool taken, luks::SetVolumeParam(p.luks, sub, value, "encrypt."));
  if (taken && sub != "key-secret") p.luks_keys.push_back(key);
  return taken;
}

absl::Status ValidateEncryptCreateParams(EncryptCreateParams& p) {
  if (p.encryption.value_or(false) && !p.format.empty()) {
    return ErrnoError(EINVAL, "'encrypt.format' and its alias 'encryption' can't be used at "
                              "the same time");
  }
  std::string format = p.format;
  if (p.encryption.value_or(false)) format = "aes";
  if (format.empty()) {
    if (p.any_given) return ErrnoError(EINVAL, "Parameter 'encrypt.format' is missing");
    p.method = kCryptNone;
    return absl::OkStatus();
  }
  if (format == "aes") {
    if (!p.luks_keys.empty()) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", p.luks_keys.front(),
                                             "' is unexpected"));
    }
    if (p.luks.key_secret.empty()) {
      return ErrnoError(EINVAL, "Parameter 'encrypt.key-secret' is required for cipher");
    }
    STRATA_RETURN_IF_ERROR(LookupSecret(p.luks.key_secret).status());
    p.method = kCryptAes;
    return absl::OkStatus();
  }
  if (format == "luks") {
    STRATA_RETURN_IF_ERROR(luks::ValidateVolumeParams(p.luks, "encrypt."));
    p.method = kCryptLuks;
    return absl::OkStatus();
  }
  return ErrnoError(EINVAL, absl::StrCat("Parameter 'format' does not accept value '", format,
                                         "'"));
}

}  // namespace strata::qcow2
