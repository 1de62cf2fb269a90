// strata luks: a LUKS1 volume, wherever it lives: formatting a new one, unlocking its
// master key with a passphrase, and describing it for `info`. The `luks` driver keeps
// the volume at the start of its file (the guest data after it); qcow2 keeps it in
// clusters its header names (encrypt.format=luks) and encrypts its data clusters with
// the master key. Offsets here are relative to the volume's first byte.
//
// Thread safety: free functions on values; no shared state.
#ifndef STRATA_DRIVERS_LUKS_LUKS_VOLUME_H_
#define STRATA_DRIVERS_LUKS_LUKS_VOLUME_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "block/driver.h"
#include "block/driver_instance.h"
#include "drivers/luks/luks_crypto.h"
#include "drivers/luks/luks_header.h"

namespace strata::luks {

inline constexpr uint64_t kSectorBytes = 512;

// The options QEMU's LUKS creation takes, with its defaults.
struct VolumeParams {
  std::string key_secret;
  std::string cipher_alg = "aes-256";
  std::string cipher_mode = "xts";
  std::string ivgen_alg = "plain64";
  std::string ivgen_hash_alg = "sha256";
  std::string hash_alg = "sha256";
  uint64_t iter_time = 2000;
};

// Takes creation option `key` (without a prefix such as "encrypt."); false if `key` is
// not a LUKS option. `prefix` is only for error messages.
absl::StatusOr<bool> SetVolumeParam(VolumeParams& params, const std::string& key,
                                    const std::string& value, const std::string& prefix);

// A volume formatted in memory: the header, slot 0 holding the master key (split and
// encrypted with the passphrase's key), the other slots empty, in QEMU's layout (key
// material from 4 KiB on, each slot's area rounded up to 4 KiB).
struct NewVolume {
  LuksHeader header;
  std::vector<uint8_t> header_bytes;  // kHeaderBytes
  uint64_t material_offset = 0;       // slot 0's key material
  std::vector<uint8_t> material;
  std::vector<uint8_t> master_key;
  // Header and key material: where QEMU's payload begins.
  uint64_t volume_bytes() const { return uint64_t{header.payload_offset} * kSectorBytes; }
};
// Checks `params` without the costly work (creation validates before it makes files):
// QEMU's messages: "Parameter '<prefix>key-secret' is required for cipher", "No secret
// with id 'X'", algorithms not accepted.
absl::Status ValidateVolumeParams(const VolumeParams& params, const std::string& prefix);
// Fails as ValidateVolumeParams does.
absl::StatusOr<NewVolume> FormatVolume(const VolumeParams& params, const std::string& prefix);

// Reads `len` bytes of the volume at `offset` into `out`.
using VolumeReader = absl::FunctionRef<absl::Status(uint64_t offset, uint64_t len, uint8_t* out)>;

// The header, validated ("Volume is not in LUKS format", "Unsupported key length").
absl::StatusOr<LuksHeader> ReadVolumeHeader(VolumeReader read);
// The master key the passphrase unlocks from the first key slot it opens; EPERM "Invalid
// password, cannot unlock any keyslot" if none. Reads only key material.
absl::StatusOr<std::vector<uint8_t>> UnlockVolume(const LuksHeader& header,
                                                  const std::string& passphrase,
                                                  VolumeReader read);
// The sector cipher of the volume's data under `key`.
absl::StatusOr<std::unique_ptr<SectorCipher>> VolumeCipher(const LuksHeader& header,
                                                           const std::vector<uint8_t>& key);

// Key-slot management (qemu-img amend's state, new-secret, old-secret, keyslot,
// iter-time): add a passphrase to a slot, or erase slots.
struct KeySlotAmend {
  std::string state;  // "active" or "inactive"; "" when not given
  std::string new_secret, old_secret;  // secret ids
  std::optional<int64_t> keyslot;
  std::optional<uint64_t> iter_time;  // default 2000 ms
};
// The amend options for key slots, named with `prefix` ("encrypt." for qcow2).
std::vector<CreateOptionSpec> KeySlotAmendOptions(const std::string& prefix);
// Takes amend option `key` (without a prefix); false if it is not a key-slot option.
absl::StatusOr<bool> SetKeySlotAmendParam(KeySlotAmend& amend, const std::string& key,
                                          const std::string& value, const std::string& prefix);
// Writes `bytes` at volume offset `offset`.
using VolumeWriter =
    absl::FunctionRef<absl::Status(uint64_t offset, const std::vector<uint8_t>& bytes)>;
// Applies `amend` to the unlocked volume (`header` in memory, `master_key` its key) with
// QEMU's checks and messages ("Refusing to overwrite active keyslot 1 - please erase it
// first", "Attempt to erase the only active keyslot ..."). Crash safety: a new slot's key
// material is written before the header that activates it; an erased slot is marked
// inactive in the header before its material is overwritten with random bytes. On
// failure `header` is as on disk.
absl::Status AmendKeySlots(LuksHeader& header, const std::vector<uint8_t>& master_key,
                           const KeySlotAmend& amend, VolumeReader read, VolumeWriter write);

// `info`'s entries for the volume, in QEMU's order; `format` adds qcow2's "format: luks".
FormatSpecificDict VolumeInfo(const LuksHeader& header, bool with_format);

}  // namespace strata::luks

#endif  // STRATA_DRIVERS_LUKS_LUKS_VOLUME_H_
