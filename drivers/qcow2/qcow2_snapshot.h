// strata qcow2: the internal snapshot table (spec: "Snapshot table"): parsing and
// serialising entries. Operations on snapshots live in qcow2_snapshot.cc as members of
// Qcow2Instance.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_SNAPSHOT_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata::qcow2 {

// One entry of the table, as stored.
struct Qcow2Snapshot {
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  std::string id;
  std::string name;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  uint32_t vm_state_size = 0;
  // Extra data: vm_state_size_large (8), disk_size (8), icount (8); kept as read, so
  // fields this version does not know survive a rewrite.
  std::vector<uint8_t> extra;

  // disk_size from the extra data, or `fallback` when absent.
  uint64_t DiskSize(uint64_t fallback) const;
  // icount from the extra data, or -1 when absent.
  int64_t Icount() const;
};

// Bytes of the fixed part of an entry.
inline constexpr uint64_t kSnapshotHeaderBytes = 40;

// Parses `count` entries from `table` (which holds at least the whole table). Errors for
// truncated entries or oversized extra data ("Too much extra metadata ...").
absl::StatusOr<std::vector<Qcow2Snapshot>> ParseSnapshotTable(absl::Span<const uint8_t> table,
                                                             uint32_t count);
// Serialises `snapshots` (entries 8-byte aligned, the last one unpadded, as QEMU writes).
std::vector<uint8_t> SerializeSnapshotTable(const std::vector<Qcow2Snapshot>& snapshots);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_SNAPSHOT_H_
