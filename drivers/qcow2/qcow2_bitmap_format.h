// strata qcow2: the on-disk form of persistent dirty bitmaps (the bitmaps header
// extension, the bitmap directory, bitmap tables), parsed and validated as QEMU 7.2
// validates them, and serialised as QEMU writes them. Pure functions; no I/O.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_BITMAP_FORMAT_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_BITMAP_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata::qcow2 {

// Limits QEMU keeps (qcow2 spec and qcow2-bitmap.c).
inline constexpr uint32_t kMaxBitmaps = 65535;
inline constexpr uint64_t kMaxBitmapDirectorySize = 1024ull * kMaxBitmaps;
inline constexpr uint32_t kMaxBitmapNameSize = 1023;
inline constexpr uint32_t kMinBitmapGranularityBits = 9;
inline constexpr uint32_t kMaxBitmapGranularityBits = 31;
inline constexpr uint64_t kMaxBitmapTableSize = 0x8000000;   // entries
inline constexpr uint64_t kMaxBitmapPhysSize = 0x20000000;   // bytes of bitmap data
// Directory entry flags.
inline constexpr uint32_t kBitmapInUse = 1u << 0;
inline constexpr uint32_t kBitmapAuto = 1u << 1;
// Bit 2 ("extra data compatible") only has a meaning with extra data, which QEMU never
// accepts; QEMU 7.2 refuses it as reserved, and so does strata.
inline constexpr uint32_t kBitmapReservedFlags = ~(kBitmapInUse | kBitmapAuto);
inline constexpr uint8_t kBitmapTypeDirtyTracking = 1;
// Bitmap table entries: bits 9-55 the data cluster's offset; bit 0, with offset 0, means
// "every bit of this cluster set" (QEMU reads it, never writes it).
inline constexpr uint64_t kBitmapTableOffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kBitmapTableAllOnes = 1;
inline constexpr uint64_t kBitmapTableReservedMask = 0xff000000000001feull;

// The bitmaps extension's 24 bytes.
struct BitmapsExtension {
  uint32_t nb_bitmaps = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
};

// Parses and validates the extension's data ("bitmaps_ext: ..." errors as QEMU's).
absl::StatusOr<BitmapsExtension> ParseBitmapsExtension(absl::Span<const uint8_t> data,
                                                       uint32_t cluster_bits);
std::vector<uint8_t> SerializeBitmapsExtension(const BitmapsExtension& ext);

// One bitmap directory entry.
struct BitmapDirectoryEntry {
  uint64_t table_offset = 0;
  uint32_t table_size = 0;  // entries
  uint32_t flags = 0;
  uint8_t type = kBitmapTypeDirtyTracking;
  uint8_t granularity_bits = 16;
  std::string name;
  std::vector<uint8_t> extra_data;

  bool in_use() const { return flags & kBitmapInUse; }
  bool enabled() const { return flags & kBitmapAuto; }
  uint64_t granularity() const { return uint64_t{1} << granularity_bits; }
};

// The directory bytes one entry takes (header, extra data, name, padding to 8).
uint64_t BitmapDirectoryEntrySize(uint64_t name_size, uint64_t extra_data_size);

// Parses the directory bytes, which must hold exactly `nb` entries ("More/Less bitmaps
// found than specified in header extension"): "Broken bitmap directory" if they do not
// fit, "Bitmap extra data is not supported", "Bitmap '<name>' doesn't satisfy the
// constraints" (QEMU's: reserved flags, type, granularity, name length, table offset and
// size limits, and a table too small for a `disk_size` disk unless the bitmap is in use).
absl::StatusOr<std::vector<BitmapDirectoryEntry>> ParseBitmapDirectory(
    absl::Span<const uint8_t> dir, uint32_t nb, uint32_t cluster_bits, uint64_t disk_size);
std::vector<uint8_t> SerializeBitmapDirectory(const std::vector<BitmapDirectoryEntry>& entries);

// Table entries a bitmap of a `disk_size`-byte disk at `granularity` needs: one per
// cluster of bitmap data.
uint64_t BitmapTableEntries(uint64_t disk_size, uint64_t granularity, uint32_t cluster_bits);

// EINVAL unless `entry` is a valid bitmap table entry (reserved bits clear, cluster
// aligned, the all-ones flag only without an offset).
absl::Status CheckBitmapTableEntry(uint64_t entry, uint32_t cluster_bits);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_BITMAP_FORMAT_H_
