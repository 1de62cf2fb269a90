// strata qcow2: metadata overlap index (see qcow2_overlap.h).
#include "drivers/qcow2/qcow2_overlap.h"

#include <algorithm>

namespace strata::qcow2 {

const char* MetadataOverlapIndex::Name(Kind kind) {
  switch (kind) {
    case kMainHeader: return "qcow2_header";
    case kActiveL1: return "active L1 table";
    case kActiveL2: return "active L2 table";
    case kRefcountTable: return "refcount table";
    case kRefcountBlock: return "refcount block";
    case kSnapshotTable: return "snapshot table";
    case kInactiveL1: return "inactive L1 table";
    case kBitmapDirectory: return "bitmap directory";
  }
  return "metadata";
}

void MetadataOverlapIndex::Add(uint64_t first, uint64_t count, Kind kind) {
  if (count == 0) return;
  ranges_.push_back({first, first + count, kind});
  longest_ = std::max(longest_, count);
  sealed_ = false;
}

void MetadataOverlapIndex::Seal() {
  std::sort(ranges_.begin(), ranges_.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
  sealed_ = true;
}

std::optional<MetadataOverlapIndex::Kind> MetadataOverlapIndex::Find(uint64_t first,
                                                                     uint64_t count,
                                                                     uint32_t ignore) const {
  if (count == 0 || !sealed_) return std::nullopt;
  const uint64_t end = first + count;
  // Ranges starting before `end`; only those starting after first - longest_ can reach it.
  auto hi = std::lower_bound(ranges_.begin(), ranges_.end(), end,
                             [](const Range& r, uint64_t v) { return r.first < v; });
  const uint64_t low = first > longest_ ? first - longest_ : 0;
  std::optional<Kind> found;
  for (auto it = hi; it != ranges_.begin();) {
    --it;
    if (it->first < low) break;
    if (it->end > first && !(it->kind & ignore) && (!found || it->kind < *found)) {
      found = it->kind;
    }
  }
  return found;
}

}  // namespace strata::qcow2
