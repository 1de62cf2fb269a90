// strata qcow2: header parsing and serialisation (see qcow2_header.h).
#include "drivers/qcow2/qcow2_header.h"

#include "drivers/qcow2/qcow2_crypto.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {
namespace {

absl::Status Invalid(absl::string_view message) { return ErrnoError(EINVAL, message); }

// "Unsupported qcow2 feature(s): <names from the table>, Unknown incompatible feature: <hex>"
absl::Status UnsupportedFeatures(const Qcow2Header& h, uint64_t unknown) {
  std::string list;
  for (const FeatureTableEntry& e : h.feature_table) {
    if (e.type != 0 || e.bit >= 64 || !(unknown & (1ull << e.bit))) continue;
    absl::StrAppend(&list, list.empty() ? "" : ", ", e.name.substr(0, 46));
    unknown &= ~(1ull << e.bit);
  }
  if (unknown != 0) {
    absl::StrAppend(&list, list.empty() ? "" : ", ",
                    absl::StrFormat("Unknown incompatible feature: %x", unknown));
  }
  return ErrnoError(ENOTSUP, absl::StrCat("Unsupported qcow2 feature(s): ", list));
}

absl::Status ParseExtensions(absl::Span<const uint8_t> buf, uint64_t start, uint64_t end,
                             Qcow2Header& h) {
  uint64_t pos = start;
  while (pos < end) {
    if (end - pos < 8) return Invalid("Header extension too large");
    uint32_t magic = LoadBe32(&buf[pos]);
    uint32_t len = LoadBe32(&buf[pos + 4]);
    pos += 8;
    if (magic == kExtEnd) break;
    if (len > end - pos) return Invalid("Header extension too large");
    std::vector<uint8_t> data(buf.begin() + pos, buf.begin() + pos + len);
    switch (magic) {
      case kExtBackingFormat:
        if (len >= 16) {
          return Invalid(absl::StrFormat(
              "ERROR: ext_backing_format: len=%u too large (>=16)", len));
        }
        h.backing_format.assign(data.begin(), data.end());
        break;
      case kExtFeatureTable:
        h.has_feature_table = true;
        for (uint32_t i = 0; i + kFeatureNameEntryBytes <= len; i += kFeatureNameEntryBytes) {
          FeatureTableEntry e;
          e.type = data[i];
          e.bit = data[i + 1];
          const char* name = reinterpret_cast<const char*>(&data[i + 2]);
          e.name.assign(name, strnlen(name, kFeatureNameEntryBytes - 2));
          h.feature_table.push_back(std::move(e));
        }
        break;
      default:
        h.other_extensions.push_back({magic, std::move(data)});
        break;
    }
    pos += AlignUp(len, 8);
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<FeatureTableEntry> DefaultFeatureTable() {
  std::vector<FeatureTableEntry> out;
  for (const FeatureName& f : kFeatureNames) out.push_back({f.type, f.bit, f.name});
  return out;
}

absl::StatusOr<Qcow2Header> ParseHeader(absl::Span<const uint8_t> buf, uint64_t file_length) {
  if (buf.size() < kV2HeaderBytes || LoadBe32(&buf[0]) != kMagic) {
    return Invalid("Image is not in qcow2 format");
  }
  Qcow2Header h;
  h.version = LoadBe32(&buf[4]);
  if (h.version != 2 && h.version != 3) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported qcow2 version ", h.version));
  }
  h.backing_file_offset = LoadBe64(&buf[8]);
  h.backing_file_size = LoadBe32(&buf[16]);
  h.cluster_bits = LoadBe32(&buf[20]);
  h.size = LoadBe64(&buf[24]);
  h.crypt_method = LoadBe32(&buf[32]);
  h.l1_size = LoadBe32(&buf[36]);
  h.l1_table_offset = LoadBe64(&buf[40]);
  h.refcount_table_offset = LoadBe64(&buf[48]);
  h.refcount_table_clusters = LoadBe32(&buf[56]);
  h.nb_snapshots = LoadBe32(&buf[60]);
  h.snapshots_offset = LoadBe64(&buf[64]);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return Invalid(absl::StrCat("Unsupported cluster size: 2^", h.cluster_bits));
  }
  const uint64_t cs = h.cluster_size();
  if (h.version == 2) {
    h.header_length = kV2HeaderBytes;
    h.refcount_order = 4;
  } else {
    if (buf.size() < kV3HeaderBytes) return Invalid("qcow2 header too short");
    h.incompatible_features = LoadBe64(&buf[72]);
    h.compatible_features = LoadBe64(&buf[80]);
    h.autoclear_features = LoadBe64(&buf[88]);
    h.refcount_order = LoadBe32(&buf[96]);
    h.header_length = LoadBe32(&buf[100]);
    if (h.header_length < kV3HeaderBytes) return Invalid("qcow2 header too short");
    if (h.header_length > cs) return Invalid("qcow2 header exceeds cluster size");
    if (h.header_length > buf.size()) return Invalid("qcow2 header exceeds cluster size");
    if (h.header_length > kV3HeaderBytes) h.compression_type = buf[104];
    if (h.header_length > kV3WrittenHeaderBytes) {
      h.unknown_header_fields.assign(buf.begin() + kV3WrittenHeaderBytes,
                                     buf.begin() + h.header_length);
    }
  }
  if (h.backing_file_offset > cs) return Invalid("Invalid backing file offset");
  uint64_t ext_end = h.backing_file_offset ? h.backing_file_offset : std::min<uint64_t>(cs, buf.size());
  if (ext_end > buf.size()) ext_end = buf.size();
  STRATA_RETURN_IF_ERROR(ParseExtensions(buf, h.header_length, ext_end, h));

  uint64_t unknown = h.incompatible_features & ~kIncompatKnownMask;
  if (unknown != 0) return UnsupportedFeatures(h, unknown);
  if (h.extended_l2() && h.cluster_bits < kMinExtendedClusterBits) {
    return Invalid(absl::StrCat("Unsupported subcluster size: ",
                                (uint64_t{1} << h.cluster_bits) / kSubclustersPerCluster));
  }
  STRATA_RETURN_IF_ERROR(ValidateCryptoHeader(h));
  if (h.refcount_order > kMaxRefcountOrder) {
    return Invalid("Reference count entry width too large; may not exceed 64 bits");
  }
  if (h.compression_type == 0 && (h.incompatible_features & kIncompatCompression)) {
    return Invalid("qcow2: Compression type incompatible feature bit must not be set");
  }
  if (h.compression_type != 0 && !(h.incompatible_features & kIncompatCompression)) {
    return Invalid("qcow2: Compression type incompatible feature bit must be set");
  }
  if (h.compression_type > 1) {
    return Invalid(absl::StrCat("qcow2: unknown compression type: ", h.compression_type));
  }
  // Tables must lie inside the file and be cluster aligned.
  auto offset_ok = [&](uint64_t offset, uint64_t bytes) {
    return offset % cs == 0 && offset <= file_length && bytes <= file_length - offset;
  };
  if (uint64_t{h.refcount_table_clusters} * cs > kMaxReftableBytes) {
    return Invalid("Reference count table too large");
  }
  if (h.refcount_table_clusters == 0) {
    return Invalid("Image does not contain a reference count table");
  }
  if (!offset_ok(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs)) {
    return Invalid("Reference count table offset invalid");
  }
  if (h.nb_snapshots > 65536) return Invalid("Snapshot table too large");
  if (h.nb_snapshots > 0 && !offset_ok(h.snapshots_offset, 0)) {
    return Invalid("Snapshot table offset invalid");
  }
  if (uint64_t{h.l1_size} * 8 > kMaxL1Bytes) return Invalid("Active L1 table too large");
  const uint64_t l2_entries = cs / h.l2_entry_bytes();
  const uint64_t needed_l1 = DivRoundUp(h.size, cs * l2_entries);
  if (needed_l1 > (kMaxL1Bytes / 8)) return Invalid("Image is too big");
  if (h.l1_size < needed_l1) return Invalid("L1 table is too small");
  // As QEMU: the active L1 table may lie (partly) past the end of the file, where it
  // reads as zeroes; its size is bounded above, so memory at open stays bounded.
  auto table_ok = [&](uint64_t offset, uint64_t bytes) {
    return offset % cs == 0 && offset <= uint64_t{INT64_MAX} - bytes;
  };
  if (h.l1_size > 0 && !table_ok(h.l1_table_offset, uint64_t{h.l1_size} * 8)) {
    return Invalid("Active L1 table offset invalid");
  }
  if (h.backing_file_offset != 0) {
    if (h.backing_file_size > kMaxBackingNameBytes ||
        h.backing_file_offset + h.backing_file_size > cs ||
        h.backing_file_offset + h.backing_file_size > buf.size()) {
      return Invalid("Backing file name too long");
    }
    h.backing_file.assign(buf.begin() + h.backing_file_offset,
                          buf.begin() + h.backing_file_offset + h.backing_file_size);
  }
  return h;
}

absl::StatusOr<std::vector<uint8_t>> SerializeHeader(Qcow2Header& h) {
  const uint64_t cs = h.cluster_size();
  std::vector<uint8_t> out(cs, 0);
  uint64_t pos = 0;
  auto need = [&](uint64_t n) { return pos + n <= cs; };
  const uint32_t base_len = h.version == 2 ? kV2HeaderBytes : kV3WrittenHeaderBytes;
  h.header_length = h.version == 2 ? kV2HeaderBytes
                                   : base_len + static_cast<uint32_t>(h.unknown_header_fields.size());
  uint8_t* p = out.data();
  StoreBe32(p + 0, kMagic);
  StoreBe32(p + 4, h.version);
  StoreBe32(p + 20, h.cluster_bits);
  StoreBe64(p + 24, h.size);
  StoreBe32(p + 32, h.crypt_method);
  StoreBe32(p + 36, h.l1_size);
  StoreBe64(p + 40, h.l1_table_offset);
  StoreBe64(p + 48, h.refcount_table_offset);
  StoreBe32(p + 56, h.refcount_table_clusters);
  StoreBe32(p + 60, h.nb_snapshots);
  StoreBe64(p + 64, h.snapshots_offset);
  if (h.version >= 3) {
    StoreBe64(p + 72, h.incompatible_features);
    StoreBe64(p + 80, h.compatible_features);
    StoreBe64(p + 88, h.autoclear_features);
    StoreBe32(p + 96, h.refcount_order);
    StoreBe32(p + 100, h.header_length);
    p[104] = h.compression_type;
    if (!h.unknown_header_fields.empty()) {  // memcpy from an empty vector's null data is UB
      std::memcpy(p + base_len, h.unknown_header_fields.data(), h.unknown_header_fields.size());
    }
  }
  pos = h.header_length;
  auto put_ext = [&](uint32_t magic, const uint8_t* data, uint32_t len) -> bool {
    if (!need(8 + AlignUp(len, 8))) return false;
    StoreBe32(&out[pos], magic);
    StoreBe32(&out[pos + 4], len);
    if (len) std::memcpy(&out[pos + 8], data, len);
    pos += 8 + AlignUp(len, 8);
    return true;
  };
  const absl::Status too_big = ErrnoError(ENOSPC, "Header does not fit in the first cluster");
  if (!h.backing_format.empty() &&
      !put_ext(kExtBackingFormat, reinterpret_cast<const uint8_t*>(h.backing_format.data()),
               h.backing_format.size())) {
    return too_big;
  }
  // Extensions with a fixed place in QEMU's order: data file, crypto, then the feature
  // table, then bitmaps; unknown ones last.
  for (uint32_t magic : {kExtDataFile, kExtCrypto}) {
    for (const HeaderExtension& e : h.other_extensions) {
      if (e.magic == magic && !put_ext(e.magic, e.data.data(), e.data.size())) return too_big;
    }
  }
  if (h.version >= 3 && cs > 4096) {
    if (!h.has_feature_table) {
      h.feature_table = DefaultFeatureTable();
      h.has_feature_table = true;
    }
    std::vector<uint8_t> table(h.feature_table.size() * kFeatureNameEntryBytes, 0);
    for (size_t i = 0; i < h.feature_table.size(); ++i) {
      uint8_t* e = &table[i * kFeatureNameEntryBytes];
      e[0] = h.feature_table[i].type;
      e[1] = h.feature_table[i].bit;
      std::memcpy(e + 2, h.feature_table[i].name.data(),
                  std::min<size_t>(h.feature_table[i].name.size(), 46));
    }
    if (!put_ext(kExtFeatureTable, table.data(), table.size())) return too_big;
  }
  for (const HeaderExtension& e : h.other_extensions) {
    if (e.magic == kExtBitmaps && !put_ext(e.magic, e.data.data(), e.data.size())) {
      return too_big;
    }
  }
  // QEMU keeps unknown extensions in a list built by head insertion, so a rewrite writes
  // them in reverse on-disk order. Doing the same keeps images byte-identical.
  for (auto it = h.other_extensions.rbegin(); it != h.other_extensions.rend(); ++it) {
    if (it->magic == kExtDataFile || it->magic == kExtCrypto || it->magic == kExtBitmaps) {
      continue;
    }
    if (!put_ext(it->magic, it->data.data(), it->data.size())) return too_big;
  }
  if (!put_ext(kExtEnd, nullptr, 0)) return too_big;
  if (!h.backing_file.empty()) {
    if (!need(h.backing_file.size())) return too_big;
    h.backing_file_offset = pos;
    h.backing_file_size = static_cast<uint32_t>(h.backing_file.size());
    std::memcpy(&out[pos], h.backing_file.data(), h.backing_file.size());
  } else {
    h.backing_file_offset = 0;
    h.backing_file_size = 0;
  }
  StoreBe64(&out[8], h.backing_file_offset);
  StoreBe32(&out[16], h.backing_file_size);
  // After a rewrite the in-memory order matches what is on disk now.
  std::vector<HeaderExtension> reordered;
  for (const HeaderExtension& e : h.other_extensions) {
    if (e.magic == kExtDataFile || e.magic == kExtCrypto || e.magic == kExtBitmaps) {
      reordered.push_back(e);
    }
  }
  for (auto it = h.other_extensions.rbegin(); it != h.other_extensions.rend(); ++it) {
    if (it->magic != kExtDataFile && it->magic != kExtCrypto && it->magic != kExtBitmaps) {
      reordered.push_back(*it);
    }
  }
  h.other_extensions = std::move(reordered);
  return out;
}

}  // namespace strata::qcow2
