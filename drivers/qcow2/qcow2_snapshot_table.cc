// strata qcow2: snapshot table encoding (see qcow2_snapshot.h).
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_snapshot.h"

namespace strata::qcow2 {

uint64_t Qcow2Snapshot::DiskSize(uint64_t fallback) const {
  return extra.size() >= 16 ? LoadBe64(&extra[8]) : fallback;
}

int64_t Qcow2Snapshot::Icount() const {
  return extra.size() >= 24 ? static_cast<int64_t>(LoadBe64(&extra[16])) : -1;
}

absl::StatusOr<std::vector<Qcow2Snapshot>> ParseSnapshotTable(absl::Span<const uint8_t> table,
                                                             uint32_t count) {
  std::vector<Qcow2Snapshot> out;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < count; ++i) {
    pos = AlignUp(pos, 8);
    if (pos + kSnapshotHeaderBytes > table.size()) {
      return ErrnoError(EINVAL, "Snapshot table is truncated");
    }
    const uint8_t* h = table.data() + pos;
    Qcow2Snapshot s;
    s.l1_table_offset = LoadBe64(h);
    s.l1_size = LoadBe32(h + 8);
    const uint16_t id_size = LoadBe16(h + 12), name_size = LoadBe16(h + 14);
    s.date_sec = LoadBe32(h + 16);
    s.date_nsec = LoadBe32(h + 20);
    s.vm_clock_nsec = LoadBe64(h + 24);
    s.vm_state_size = LoadBe32(h + 32);
    const uint32_t extra = LoadBe32(h + 36);
    if (extra > 1024) {
      return ErrnoError(EFBIG, absl::StrCat("Too much extra metadata in snapshot table entry ",
                                            i));
    }
    pos += kSnapshotHeaderBytes;
    if (pos + extra + id_size + name_size > table.size()) {
      return ErrnoError(EINVAL, "Snapshot table is truncated");
    }
    s.extra.assign(table.data() + pos, table.data() + pos + extra);
    pos += extra;
    s.id.assign(reinterpret_cast<const char*>(table.data() + pos), id_size);
    pos += id_size;
    s.name.assign(reinterpret_cast<const char*>(table.data() + pos), name_size);
    pos += name_size;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<uint8_t> SerializeSnapshotTable(const std::vector<Qcow2Snapshot>& snapshots) {
  std::vector<uint8_t> out;
  for (const Qcow2Snapshot& s : snapshots) {
    out.resize(AlignUp(out.size(), 8), 0);
    uint8_t h[kSnapshotHeaderBytes] = {};
    StoreBe64(h, s.l1_table_offset);
    StoreBe32(h + 8, s.l1_size);
    StoreBe16(h + 12, static_cast<uint16_t>(s.id.size()));
    StoreBe16(h + 14, static_cast<uint16_t>(s.name.size()));
    StoreBe32(h + 16, s.date_sec);
    StoreBe32(h + 20, s.date_nsec);
    StoreBe64(h + 24, s.vm_clock_nsec);
    StoreBe32(h + 32, s.vm_state_size);
    StoreBe32(h + 36, static_cast<uint32_t>(s.extra.size()));
    out.insert(out.end(), h, h + sizeof(h));
    out.insert(out.end(), s.extra.begin(), s.extra.end());
    out.insert(out.end(), s.id.begin(), s.id.end());
    out.insert(out.end(), s.name.begin(), s.name.end());
  }
  return out;
}

}  // namespace strata::qcow2
