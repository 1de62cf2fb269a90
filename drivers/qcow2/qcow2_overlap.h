// strata qcow2: where the image's metadata lives, to refuse writes that would land on it
// (QEMU's overlap check, "cached" level: everything but inactive L2 tables).
//
// The owner fills the index from its in-memory tables and rebuilds it whenever they may
// have changed; a lookup is a binary search over cluster ranges.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_OVERLAP_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_OVERLAP_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace strata::qcow2 {

class MetadataOverlapIndex {
 public:
  // In QEMU's checking order; a write overlapping several is reported as the first.
  enum Kind : uint32_t {
    kMainHeader = 1u << 0,
    kActiveL1 = 1u << 1,
    kActiveL2 = 1u << 2,
    kRefcountTable = 1u << 3,
    kRefcountBlock = 1u << 4,
    kSnapshotTable = 1u << 5,
    kInactiveL1 = 1u << 6,
    kBitmapDirectory = 1u << 8,  // (bit 7 is QEMU's inactive L2, which strata skips)
  };
  // "active L1 table", ... (QEMU's words in "overlaps with ...").
  static const char* Name(Kind kind);

  void Clear() { ranges_.clear(); sealed_ = false; }
  // Clusters [first, first + count) hold metadata of `kind` (count 0 is ignored).
  void Add(uint64_t first, uint64_t count, Kind kind);
  // Sorts what was added; lookups need it.
  void Seal();
  // The first kind (in checking order) not in `ignore` that overlaps clusters
  // [first, first + count), if any.
  std::optional<Kind> Find(uint64_t first, uint64_t count, uint32_t ignore) const;

 private:
  struct Range {
    uint64_t first, end;
    Kind kind;
  };
  std::vector<Range> ranges_;  // sorted by `first` once sealed
  uint64_t longest_ = 0;       // longest range, bounds the backward search
  bool sealed_ = false;
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_OVERLAP_H_
