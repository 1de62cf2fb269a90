// strata qcow2: encryption of guest data clusters, as QEMU does it.
//
// crypt_method 1 ("aes", QEMU's legacy format): AES-128-CBC, the key the passphrase's
// first 16 bytes (zero padded), the IV the guest sector number (plain64).
// crypt_method 2 ("luks"): a LUKS1 volume header and key material live in clusters of
// the image named by the crypto header extension (offset, length); data clusters are
// encrypted with the volume's master key, the IV the *host* sector number (so a cluster
// moved by copy-on-write is re-encrypted for its new place).
// Only normal data clusters are encrypted: metadata, zero clusters and compressed
// clusters are not (QEMU's rules, so that images interoperate).
//
// Thread safety: Encrypt/Decrypt run concurrently on different buffers. The cipher never
// changes after Open; AmendKeySlots changes the volume header (only key slots: the data
// key stays), and its caller makes sure nothing else runs (no request, no Info).
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_CRYPTO_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "block/node.h"
#include "drivers/luks/luks_volume.h"
#include "drivers/qcow2/qcow2_header.h"
#include "proto/blockdev_options.pb.h"

namespace strata::qcow2 {

inline constexpr uint32_t kCryptNone = 0;
inline constexpr uint32_t kCryptAes = 1;
inline constexpr uint32_t kCryptLuks = 2;

// The crypto header extension's payload.
struct CryptoHeaderExtension {
  uint64_t offset = 0;  // cluster aligned
  uint64_t length = 0;  // the LUKS volume's bytes (header and key material)
};
// The extension of `header`, if it has one (ParseHeader validated it).
std::optional<CryptoHeaderExtension> FindCryptoExtension(const Qcow2Header& header);
std::vector<uint8_t> EncodeCryptoExtension(const CryptoHeaderExtension& ext);

// Header checks QEMU makes while reading the extensions ("Unsupported encryption method
// 3", "CRYPTO header extension only expected with LUKS encryption method", size and
// alignment of the extension).
absl::Status ValidateCryptoHeader(const Qcow2Header& header);

class Qcow2Crypto {
 public:
  // The encryption of an image with `header` (crypt_method != 0), opened on `file`.
  // Without I/O (`no_io`, as for info) no passphrase is needed and the data cannot be
  // read; otherwise the passphrase of `options.key_secret()` unlocks it, with QEMU's
  // errors ("Parameter 'encrypt.key-secret' is required for cipher", "Invalid password,
  // cannot unlock any keyslot", "Missing CRYPTO header for crypt method 2").
  static absl::StatusOr<std::unique_ptr<Qcow2Crypto>> Open(
      const Qcow2Header& header, const proto::Qcow2EncryptOptions& options, bool no_io,
      BlockDriverState& file);

  // A new image's LUKS encryption, with the master key already known (creation).
  static std::unique_ptr<Qcow2Crypto> ForNewLuksVolume(const CryptoHeaderExtension& extent,
                                                       const luks::NewVolume& volume);
  // A new image's legacy AES encryption (creation).
  static absl::StatusOr<std::unique_ptr<Qcow2Crypto>> ForAesKey(const std::string& passphrase);

  // Whether the data can be encrypted and decrypted (false after a metadata-only open).
  bool can_transform() const { return cipher_ != nullptr; }
  // `data` holds `len` bytes (a multiple of 512) of guest data at guest offset `guest`,
  // stored at host offset `host`.
  void Encrypt(uint64_t host, uint64_t guest, uint8_t* data, uint64_t len) const;
  void Decrypt(uint64_t host, uint64_t guest, uint8_t* data, uint64_t len) const;

  // qemu-img amend's key-slot management on a LUKS image opened with its passphrase.
  absl::Status AmendKeySlots(const luks::KeySlotAmend& amend, BlockDriverState& file);

  uint32_t method() const { return method_; }
  // LUKS: where the volume lives in the image file (check counts these clusters).
  const std::optional<CryptoHeaderExtension>& volume_extent() const { return extent_; }
  // info's "encrypt" dictionary.
  FormatSpecificNested Info() const;

 private:
  Qcow2Crypto(uint32_t method, std::optional<CryptoHeaderExtension> extent,
              std::optional<luks::LuksHeader> luks,
              std::unique_ptr<luks::SectorCipher> cipher,
              std::vector<uint8_t> master_key = {})
      : method_(method),
        extent_(extent),
        luks_(std::move(luks)),
        cipher_(std::move(cipher)),
        master_key_(std::move(master_key)) {}
  uint64_t Sector(uint64_t host, uint64_t guest) const {
    return (method_ == kCryptAes ? guest : host) / luks::kSectorBytes;
  }

  const uint32_t method_;
  const std::optional<CryptoHeaderExtension> extent_;
  std::optional<luks::LuksHeader> luks_;  // changed only by AmendKeySlots
  const std::unique_ptr<luks::SectorCipher> cipher_;  // null: metadata only
  const std::vector<uint8_t> master_key_;  // LUKS, opened with I/O: the data key
};

// Creation: the parsed encrypt.* options.
struct EncryptCreateParams {
  std::string format;                  // encrypt.format, "" if not given
  std::optional<bool> encryption;      // the deprecated alias (on: aes)
  luks::VolumeParams luks;             // key_secret serves both methods
  std::vector<std::string> luks_keys;  // LUKS-only encrypt.* options given
  bool any_given = false;              // some encrypt.* option given
  uint32_t method = kCryptNone;        // set by ValidateEncryptCreateParams
};
// Takes creation option `key` if it is one of encryption's; false otherwise.
absl::StatusOr<bool> SetEncryptCreateParam(EncryptCreateParams& params, const std::string& key,
                                           const std::string& value);
// Checks the combination (QEMU's errors: "Parameter 'encrypt.format' is missing",
// "'encrypt.format' and its alias 'encryption' can't be used at the same time", options
// the aes format does not take).
absl::Status ValidateEncryptCreateParams(EncryptCreateParams& params);
// The legacy AES key of a passphrase.
std::vector<uint8_t> AesKeyFromPassphrase(const std::string& passphrase);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_CRYPTO_H_
