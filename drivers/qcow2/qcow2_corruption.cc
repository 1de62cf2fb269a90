// strata qcow2: reacting to corrupt metadata, and the overlap check that keeps writes off
// metadata (see SignalCorruption and CheckMetadataOverlap in qcow2_instance.h).
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/diagnostics.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::SignalCorruption(bool fatal, const std::string& message) {
  const bool already_corrupt = (header_.incompatible_features & kIncompatCorrupt) != 0;
  if (corruption_signaled_ && (!fatal || already_corrupt)) return ErrnoError(EIO, message);
  fatal = fatal && !read_only_;
  if (fatal) {
    Diagnose(
        DiagnosticKind::kCorruption,
        absl::StrFormat("qcow2: Marking image as corrupt: %s; further corruption events will be "
                        "suppressed",
                        message.c_str()));
  } else {
    Diagnose(
        DiagnosticKind::kCorruption,
        absl::StrFormat("qcow2: Image is corrupt: %s; further non-fatal corruption events will be "
                        "suppressed",
                        message.c_str()));
  }
  corruption_signaled_ = true;
  if (fatal) {
    // Nothing more is written but the bit (v3 only: v2 has no feature bits); the image
    // is unusable from here on, as QEMU ejects the node.
    if (version_ >= 3) {
      header_.incompatible_features |= kIncompatCorrupt;
      (void)WriteHeaderBytes(72, 8);
    }
    unusable_ = ErrnoError(ENOMEDIUM);
  }
  return ErrnoError(EIO, message);
}

void Qcow2Instance::RefreshOverlapIndex() {
  const std::array<uint64_t, 12> key = {l1_epoch_,
                               refcounts_->table_epoch(),
                               reinterpret_cast<uintptr_t>(refcounts_.get()),
                               header_.l1_table_offset,
                               l1_.size(),
                               header_.snapshots_offset,
                               header_.nb_snapshots,
                               snapshots_.size(),
                               header_.refcount_table_offset,
                               header_.refcount_table_clusters,
                               bitmaps_ext_.directory_offset,
                               bitmaps_ext_.directory_size};
  if (key == overlap_key_ && overlap_index_built_) return;
  overlap_key_ = key;
  overlap_index_built_ = true;
  using Index = MetadataOverlapIndex;
  Index& index = overlap_index_;
  index.Clear();
  auto clusters = [&](uint64_t bytes) { return DivRoundUp(bytes, cluster_size_); };
  index.Add(0, 1, Index::kMainHeader);
  index.Add(header_.l1_table_offset >> cluster_bits_, clusters(l1_.size() * 8), Index::kActiveL1);
  for (uint64_t entry : l1_) {
    const uint64_t l2 = entry & kL1OffsetMask;
    if (l2 != 0) index.Add(l2 >> cluster_bits_, 1, Index::kActiveL2);
  }
  index.Add(refcounts_->table_offset() >> cluster_bits_, refcounts_->table_clusters(),
            Index::kRefcountTable);
  for (uint64_t block : refcounts_->table()) {
    const uint64_t offset = block & kReftableOffsetMask;
    if (offset != 0) index.Add(offset >> cluster_bits_, 1, Index::kRefcountBlock);
  }
  if (header_.nb_snapshots > 0) {
    const uint64_t table_bytes = SerializeSnapshotTable(snapshots_).size();
    index.Add(header_.snapshots_offset >> cluster_bits_,
              std::max<uint64_t>(clusters(table_bytes), 1), Index::kSnapshotTable);
  }
  for (const Qcow2Snapshot& s : snapshots_) {
    index.Add(s.l1_table_offset >> cluster_bits_, clusters(uint64_t{s.l1_size} * 8),
              Index::kInactiveL1);
  }
  if (bitmaps_ext_.nb_bitmaps > 0) {
    index.Add(bitmaps_ext_.directory_offset >> cluster_bits_,
              clusters(bitmaps_ext_.directory_size), Index::kBitmapDirectory);
  }
  index.Seal();
}

bool Qcow2Instance::OverlapsMetadata(uint64_t offset, uint64_t bytes, uint32_t ignore) {
  if (bytes == 0) return false;
  RefreshOverlapIndex();
  const uint64_t first = offset >> cluster_bits_;
  const uint64_t last = (offset + bytes - 1) >> cluster_bits_;
  return overlap_index_.Find(first, last - first + 1, ignore).has_value();
}

absl::Status Qcow2Instance::CheckMetadataOverlap(uint64_t offset, uint64_t bytes,
                                                 uint32_t ignore) {
  if (bytes == 0) return absl::OkStatus();
  RefreshOverlapIndex();
  const uint64_t first = offset >> cluster_bits_;
  const uint64_t last = (offset + bytes - 1) >> cluster_bits_;
  std::optional<MetadataOverlapIndex::Kind> hit =
      overlap_index_.Find(first, last - first + 1, ignore);
  if (!hit) return absl::OkStatus();
  return SignalCorruption(true, absl::StrCat("Preventing invalid write on metadata (overlaps "
                                             "with ", MetadataOverlapIndex::Name(*hit), ")"));
}

}  // namespace strata::qcow2
