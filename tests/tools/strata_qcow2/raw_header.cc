// strata-qcow2: byte-level header access (see raw_header.h).
#include "tests/tools/strata_qcow2/raw_header.h"

#include <cerrno>
#include <fstream>

#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2tool {
namespace {

using qcow2::LoadBe32;
using qcow2::LoadBe64;
using qcow2::StoreBe32;
using qcow2::StoreBe64;

struct FieldSpec {
  const char* name;
  uint32_t offset;
  uint32_t width;  // bytes
  bool v3_only;
};

constexpr FieldSpec kFields[] = {
    {"magic", 0, 4, false},
    {"version", 4, 4, false},
    {"backing_file_offset", 8, 8, false},
    {"backing_file_size", 16, 4, false},
    {"cluster_bits", 20, 4, false},
    {"size", 24, 8, false},
    {"crypt_method", 32, 4, false},
    {"l1_size", 36, 4, false},
    {"l1_table_offset", 40, 8, false},
    {"refcount_table_offset", 48, 8, false},
    {"refcount_table_clusters", 56, 4, false},
    {"nb_snapshots", 60, 4, false},
    {"snapshot_offset", 64, 8, false},
    {"incompatible_features", 72, 8, true},
    {"compatible_features", 80, 8, true},
    {"autoclear_features", 88, 8, true},
    {"refcount_order", 96, 4, true},
    {"header_length", 100, 4, true},
};

}  // namespace

uint64_t RawHeader::Get(const std::string& name) const {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return 0;
}

bool RawHeader::Set(const std::string& name, uint64_t value) {
  for (auto& [n, v] : fields) {
    if (n == name) {
      v = value;
      return true;
    }
  }
  return false;
}

absl::StatusOr<RawHeader> ReadRawHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError(errno, "Could not open " + path);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), {});
  if (buf.size() < 72 || LoadBe32(buf.data()) != qcow2::kMagic) {
    return ErrnoError(EINVAL, "Not a qcow2 image");
  }
  RawHeader h;
  uint32_t version = LoadBe32(&buf[4]);
  for (const FieldSpec& f : kFields) {
    uint64_t v = 0;
    if (!f.v3_only || version >= 3) {
      if (f.offset + f.width > buf.size()) return ErrnoError(EINVAL, "Truncated header");
      v = f.width == 8 ? LoadBe64(&buf[f.offset]) : LoadBe32(&buf[f.offset]);
    } else if (std::string(f.name) == "refcount_order") {
      v = 4;
    } else if (std::string(f.name) == "header_length") {
      v = 72;
    }
    h.fields.emplace_back(f.name, v);
  }
  uint64_t cs = uint64_t{1} << std::min<uint64_t>(h.Get("cluster_bits"), 30);
  uint64_t end = std::min<uint64_t>(cs, buf.size());
  uint64_t backing_offset = h.Get("backing_file_offset");
  if (backing_offset != 0 && backing_offset < end) end = backing_offset;
  uint64_t pos = h.Get("header_length");
  while (pos + 8 <= end) {
    uint32_t magic = LoadBe32(&buf[pos]);
    uint32_t len = LoadBe32(&buf[pos + 4]);
    if (magic == 0) break;
    if (pos + 8 + len > buf.size()) break;
    h.extensions.push_back({magic, std::vector<uint8_t>(buf.begin() + pos + 8,
                                                        buf.begin() + pos + 8 + len)});
    pos += 8 + qcow2::AlignUp(len, 8);
  }
  uint64_t backing_size = h.Get("backing_file_size");
  if (backing_offset != 0 && backing_offset + backing_size <= buf.size()) {
    h.backing_name.assign(buf.begin() + backing_offset,
                          buf.begin() + backing_offset + backing_size);
  }
  return h;
}

absl::Status WriteRawHeader(const std::string& path, RawHeader& h) {
  std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
  if (!io) return ErrnoError(errno, "Could not open " + path);
  uint32_t version = static_cast<uint32_t>(h.Get("version"));
  uint64_t header_length = version >= 3 ? h.Get("header_length") : 72;
  std::vector<uint8_t> out(header_length, 0);
  // Keep unknown header bytes between 104 and header_length.
  io.seekg(0);
  io.read(reinterpret_cast<char*>(out.data()), header_length);
  io.clear();
  std::vector<uint8_t> exts;
  for (const RawExtension& e : h.extensions) {
    size_t at = exts.size();
    exts.resize(at + 8 + qcow2::AlignUp(e.data.size(), 8), 0);
    StoreBe32(&exts[at], e.magic);
    StoreBe32(&exts[at + 4], static_cast<uint32_t>(e.data.size()));
    std::copy(e.data.begin(), e.data.end(), exts.begin() + at + 8);
  }
  exts.resize(exts.size() + 8, 0);  // end marker
  if (!h.backing_name.empty()) {
    h.Set("backing_file_offset", header_length + exts.size());
    h.Set("backing_file_size", h.backing_name.size());
    exts.insert(exts.end(), h.backing_name.begin(), h.backing_name.end());
  }
  for (const FieldSpec& f : kFields) {
    if (f.v3_only && version < 3) continue;
    if (f.offset + f.width > out.size()) continue;
    if (f.width == 8) StoreBe64(&out[f.offset], h.Get(f.name));
    else StoreBe32(&out[f.offset], static_cast<uint32_t>(h.Get(f.name)));
  }
  out.insert(out.end(), exts.begin(), exts.end());
  io.seekp(0);
  io.write(reinterpret_cast<const char*>(out.data()), out.size());
  if (!io) return ErrnoError(EIO, "Could not write " + path);
  return absl::OkStatus();
}

}  // namespace strata::qcow2tool
