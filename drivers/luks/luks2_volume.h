// strata luks: LUKS2 volumes (as cryptsetup makes them), read through libcryptsetup.
// QEMU 7.2 refuses them ("Unsupported LUKS version 2"); strata opens them, reads and
// writes their data, and leaves key slots and metadata to cryptsetup.
//
// Why a library: LUKS2 keeps its metadata as checksummed JSON in two copies and derives
// keys with Argon2 or PBKDF2; libcryptsetup (Debian's libcryptsetup-dev) is the reference
// implementation of all of it. It works on a device path, so the volume's header area
// (read through the block graph, wherever the volume lives) is copied into a private
// memory file (memfd) that libcryptsetup opens; the volume itself is never given to it,
// so it can neither write nor map anything.
//
// Thread safety: free functions; no shared state.
#ifndef STRATA_DRIVERS_LUKS_LUKS2_VOLUME_H_
#define STRATA_DRIVERS_LUKS_LUKS2_VOLUME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "block/driver_instance.h"
#include "drivers/luks/luks_volume.h"

namespace strata::luks {

// What the data segment needs, and what `info` shows.
struct Luks2Volume {
  std::string cipher;       // "aes"
  std::string cipher_mode;  // "xts-plain64", "cbc-essiv:sha256"
  uint64_t data_offset = 0;  // bytes from the volume's start
  uint32_t sector_size = 512;  // bytes encrypted as one unit
  uint64_t iv_offset = 0;   // added to the 512-byte sector number of the IV
  std::string uuid;
  std::vector<uint8_t> volume_key;  // empty when opened without a passphrase
};

// Whether the first bytes of a volume are a LUKS2 binary header.
bool IsLuks2Header(absl::Span<const uint8_t> first_bytes);

// Loads the volume's metadata from `read` (the volume is `length` bytes) and, if
// `passphrase` is given, unlocks its volume key from any key slot ("Invalid password,
// cannot unlock any keyslot" as for LUKS1). Refuses what strata cannot serve: a data
// segment that is not a single whole-device "crypt" segment, integrity protection, a
// header area over 256 MiB.
absl::StatusOr<Luks2Volume> OpenLuks2Volume(VolumeReader read, uint64_t length,
                                            const std::optional<std::string>& passphrase);

// `info`'s entries for a LUKS2 volume.
FormatSpecificDict Luks2VolumeInfo(const Luks2Volume& volume);

}  // namespace strata::luks

#endif  // STRATA_DRIVERS_LUKS_LUKS2_VOLUME_H_
