// strata luks: the LUKS1 partition header (592 bytes at offset 0: cipher, hash, payload
// offset, master-key digest, eight key slots), parsed and serialised big-endian as the
// LUKS1 on-disk format defines it.
#ifndef STRATA_DRIVERS_LUKS_LUKS_HEADER_H_
#define STRATA_DRIVERS_LUKS_LUKS_HEADER_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata::luks {

inline constexpr size_t kHeaderBytes = 592;
inline constexpr size_t kSlots = 8;
inline constexpr uint32_t kSlotActive = 0x00AC71F3;
inline constexpr uint32_t kSlotInactive = 0x0000DEAD;
inline constexpr uint8_t kMagic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};

struct KeySlot {
  uint32_t active = kSlotInactive;
  uint32_t iterations = 0;
  std::array<uint8_t, 32> salt{};
  uint32_t key_offset = 0;  // sectors
  uint32_t stripes = 0;
};

struct LuksHeader {
  uint16_t version = 1;
  std::string cipher_name;  // "aes"
  std::string cipher_mode;  // "xts-plain64", "cbc-essiv:sha256"
  std::string hash_spec;    // "sha256"
  uint32_t payload_offset = 0;  // sectors
  uint32_t key_bytes = 0;
  std::array<uint8_t, 20> mk_digest{};
  std::array<uint8_t, 32> mk_digest_salt{};
  uint32_t mk_digest_iterations = 0;
  std::string uuid;
  std::array<KeySlot, kSlots> slots{};

  // cipher_mode split: "xts-plain64" -> mode "xts", ivgen "plain64"; "cbc-essiv:sha256"
  // -> "cbc", "essiv", ivgen hash "sha256".
  std::string mode() const;
  std::string ivgen() const;
  std::string ivgen_hash() const;
};

// Fails with QEMU's messages ("Volume is not in LUKS format", "Unsupported LUKS version").
absl::StatusOr<LuksHeader> ParseHeader(absl::Span<const uint8_t> buf);
std::vector<uint8_t> SerializeHeader(const LuksHeader& h);

}  // namespace strata::luks

#endif  // STRATA_DRIVERS_LUKS_LUKS_HEADER_H_
