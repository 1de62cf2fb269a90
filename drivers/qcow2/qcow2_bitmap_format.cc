#include "drivers/qcow2/qcow2_bitmap_format.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kEntryHeaderBytes = 24;

}  // namespace

absl::StatusOr<BitmapsExtension> ParseBitmapsExtension(absl::Span<const uint8_t> data,
                                                       uint32_t cluster_bits) {
  if (data.size() != 24) {
    return ErrnoError(EINVAL, "bitmaps_ext: Invalid extension length");
  }
  BitmapsExtension ext;
  ext.nb_bitmaps = LoadBe32(&data[0]);
  const uint32_t reserved = LoadBe32(&data[4]);
  ext.directory_size = LoadBe64(&data[8]);
  ext.directory_offset = LoadBe64(&data[16]);
  if (reserved != 0) {
    return ErrnoError(EINVAL, "bitmaps_ext: Reserved field is not zero");
  }
  if (ext.nb_bitmaps > kMaxBitmaps) {
    return ErrnoError(EINVAL, absl::StrFormat("bitmaps_ext: Image has %u bitmaps, exceeding "
                                              "the QEMU supported maximum of %u",
                                              ext.nb_bitmaps, kMaxBitmaps));
  }
  if (ext.nb_bitmaps == 0) {
    return ErrnoError(EINVAL, "found bitmaps extension with zero bitmaps");
  }
  if (ext.directory_offset & ((uint64_t{1} << cluster_bits) - 1)) {
    return ErrnoError(EINVAL, "bitmaps_ext: invalid bitmap directory offset");
  }
  if (ext.directory_size > kMaxBitmapDirectorySize) {
    return ErrnoError(EINVAL, absl::StrFormat("bitmaps_ext: bitmap directory size (%u) exceeds "
                                              "the maximum supported size (%u)",
                                              ext.directory_size, kMaxBitmapDirectorySize));
  }
  return ext;
}

std::vector<uint8_t> SerializeBitmapsExtension(const BitmapsExtension& ext) {
  std::vector<uint8_t> out(24, 0);
  StoreBe32(&out[0], ext.nb_bitmaps);
  StoreBe64(&out[8], ext.directory_size);
  StoreBe64(&out[16], ext.directory_offset);
  return out;
}

uint64_t BitmapDirectoryEntrySize(uint64_t name_size, uint64_t extra_data_size) {
  return (kEntryHeaderBytes + name_size + extra_data_size + 7) & ~uint64_t{7};
}

uint64_t BitmapTableEntries(uint64_t disk_size, uint64_t granularity, uint32_t cluster_bits) {
  const uint64_t bits = DivRoundUp(disk_size, granularity);
  return DivRoundUp(DivRoundUp(bits, uint64_t{8}), uint64_t{1} << cluster_bits);
}

absl::StatusOr<std::vector<BitmapDirectoryEntry>> ParseBitmapDirectory(
    absl::Span<const uint8_t> dir, uint32_t nb, uint32_t cluster_bits, uint64_t disk_size) {
  std::vector<BitmapDirectoryEntry> out;
  const uint64_t cluster_size = uint64_t{1} << cluster_bits;
  uint64_t pos = 0;
  // QEMU's walk: every entry the directory's size holds is read, and only then is their
  // number compared with the extension's count (so the messages are QEMU's).
  if (dir.empty()) return ErrnoError(EINVAL, "Requested bitmap directory size is zero");
  while (pos < dir.size()) {
    if (dir.size() - pos < kEntryHeaderBytes) {
      return ErrnoError(EINVAL, "Broken bitmap directory");
    }
    if (out.size() == nb) {
      return ErrnoError(EINVAL, "More bitmaps found than specified in header extension");
    }
    const uint8_t* p = &dir[pos];
    BitmapDirectoryEntry e;
    e.table_offset = LoadBe64(p);
    e.table_size = LoadBe32(p + 8);
    e.flags = LoadBe32(p + 12);
    e.type = p[16];
    e.granularity_bits = p[17];
    const uint16_t name_size = LoadBe16(p + 18);
    const uint32_t extra_size = LoadBe32(p + 20);
    const uint64_t entry_size = BitmapDirectoryEntrySize(name_size, extra_size);
    if (entry_size > dir.size() - pos) {
      return ErrnoError(EINVAL, "Broken bitmap directory");
    }
    if (extra_size != 0) {
      return ErrnoError(EINVAL, "Bitmap extra data is not supported");
    }
    // The name ends at its size or at a NUL byte, whichever comes first (as QEMU reads it).
    const char* name = reinterpret_cast<const char*>(p + kEntryHeaderBytes);
    e.name.assign(name, strnlen(name, name_size));
    const uint64_t phys_bytes = uint64_t{e.table_size} * cluster_size;
    // QEMU's constraints. A table too small for the disk is allowed in a bitmap flagged in
    // use (one not stored again after a resize).
    const bool broken =
        e.table_size == 0 || e.table_offset == 0 || (e.table_offset & (cluster_size - 1)) != 0 ||
        e.table_size > kMaxBitmapTableSize || e.granularity_bits > kMaxBitmapGranularityBits ||
        e.granularity_bits < kMinBitmapGranularityBits || (e.flags & kBitmapReservedFlags) ||
        name_size > kMaxBitmapNameSize || e.type != kBitmapTypeDirtyTracking ||
        phys_bytes > kMaxBitmapPhysSize ||
        (!e.in_use() && disk_size > ((phys_bytes * 8) << e.granularity_bits));
    if (broken) {
      return ErrnoError(EINVAL,
                        absl::StrCat("Bitmap '", e.name, "' doesn't satisfy the constraints"));
    }
    out.push_back(std::move(e));
    pos += entry_size;
  }
  if (out.size() != nb) {
    return ErrnoError(EINVAL, "Less bitmaps found than specified in header extension");
  }
  return out;
}

std::vector<uint8_t> SerializeBitmapDirectory(const std::vector<BitmapDirectoryEntry>& entries) {
  std::vector<uint8_t> out;
  for (const BitmapDirectoryEntry& e : entries) {
    const size_t at = out.size();
    out.resize(at + BitmapDirectoryEntrySize(e.name.size(), e.extra_data.size()), 0);
    uint8_t* p = &out[at];
    StoreBe64(p, e.table_offset);
    StoreBe32(p + 8, e.table_size);
    StoreBe32(p + 12, e.flags);
    p[16] = e.type;
    p[17] = e.granularity_bits;
    StoreBe16(p + 18, static_cast<uint16_t>(e.name.size()));
    StoreBe32(p + 20, static_cast<uint32_t>(e.extra_data.size()));
    std::copy(e.extra_data.begin(), e.extra_data.end(), p + kEntryHeaderBytes);
    std::copy(e.name.begin(), e.name.end(), p + kEntryHeaderBytes + e.extra_data.size());
  }
  return out;
}

absl::Status CheckBitmapTableEntry(uint64_t entry, uint32_t cluster_bits) {
  const uint64_t offset = entry & kBitmapTableOffsetMask;
  if ((entry & kBitmapTableReservedMask) != 0 ||
      (offset & ((uint64_t{1} << cluster_bits) - 1)) != 0 ||
      (offset != 0 && (entry & kBitmapTableAllOnes))) {
    return ErrnoError(EINVAL);
  }
  return absl::OkStatus();
}

}  // namespace strata::qcow2
