// strata qcow2: the header in cluster 0 (fields, feature bits, header extensions, backing
// file name): parse and validate, and serialise in QEMU's rewrite order so that a header
// rewrite is one write of cluster 0 and unknown extensions survive it byte for byte.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_HEADER_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_HEADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {

// A header extension kept as raw bytes (the unpadded data).
struct HeaderExtension {
  uint32_t magic = 0;
  std::vector<uint8_t> data;
};

// An entry of the feature name table.
struct FeatureTableEntry {
  uint8_t type = 0;
  uint8_t bit = 0;
  std::string name;
};

// Everything cluster 0 says. Value type; not thread-safe.
struct Qcow2Header {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 0;  // as found on disk (72 for v2)
  uint8_t compression_type = 0;
  // Header bytes past the 112 QEMU knows, kept for rewrites.
  std::vector<uint8_t> unknown_header_fields;

  std::string backing_file;         // empty = none
  std::string backing_format;       // from the backing format extension
  bool has_feature_table = false;
  std::vector<FeatureTableEntry> feature_table;
  // Extensions strata does not interpret (bitmaps, crypto, data file and unknown ones),
  // in on-disk order.
  std::vector<HeaderExtension> other_extensions;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  uint32_t refcount_bits() const { return 1u << refcount_order; }
  bool extended_l2() const { return (incompatible_features & kIncompatExtendedL2) != 0; }
  bool has_data_file() const { return (incompatible_features & kIncompatDataFile) != 0; }
  bool data_file_raw() const { return (autoclear_features & kAutoclearDataFileRaw) != 0; }
  // The external data file's name from its header extension ("" if none).
  std::string data_file_name() const {
    for (const HeaderExtension& e : other_extensions) {
      if (e.magic == kExtDataFile) return std::string(e.data.begin(), e.data.end());
    }
    return "";
  }
  // Replaces (or, "" , removes) the data file name extension.
  void set_data_file_name(const std::string& name) {
    std::vector<HeaderExtension> kept;
    for (HeaderExtension& e : other_extensions) {
      if (e.magic != kExtDataFile) kept.push_back(std::move(e));
    }
    if (!name.empty()) kept.insert(kept.begin(), {kExtDataFile, {name.begin(), name.end()}});
    other_extensions = std::move(kept);
  }
  // Bytes per L2 entry: 16 with extended L2 entries (entry, then subcluster bitmap).
  uint32_t l2_entry_bytes() const { return extended_l2() ? 16 : 8; }
};

// Parses and validates cluster 0 (`buf` holds at least min(cluster size, file length)
// bytes). `file_length` bounds offsets. Errors are QEMU's open messages
// ("Unsupported qcow2 version 4", "Unsupported qcow2 feature(s): ...").
absl::StatusOr<Qcow2Header> ParseHeader(absl::Span<const uint8_t> buf, uint64_t file_length);

// Serialises the header as QEMU rewrites it: header struct, preserved unknown header bytes,
// backing format, feature table (v3, cluster size > 4 KiB), other extensions, end marker,
// backing file name. Updates backing_file_offset/size and header_length in `header`.
// The result is exactly one cluster. Fails with ENOSPC if it does not fit.
absl::StatusOr<std::vector<uint8_t>> SerializeHeader(Qcow2Header& header);

// The feature name table QEMU writes.
std::vector<FeatureTableEntry> DefaultFeatureTable();

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_HEADER_H_
