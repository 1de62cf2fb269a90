// strata qcow2: make_empty, emptying an image after its data was committed to the base.
//
// Fast path (v3 without snapshots, and a refcount block large enough to describe the new
// layout): the image is rebuilt as "header, reftable, refblock, empty L1" in an order that
// keeps it safe at each step: it is marked dirty first, so a crash or error anywhere
// before it is marked clean again is repaired on the next read-write open, and the old
// L1 is zeroed before anything else, so no step can expose stale mappings. After an
// error in the middle the instance refuses all further I/O (its caches no longer match
// the file). Slow path (v2 or snapshots): every cluster is discarded to "unallocated",
// through the normal crash-safe metadata updates.
#include <cerrno>

#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::MakeEmpty() {
  aio::CoMutexLock lock(&mu_);
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(0, UINT64_MAX);
  const uint64_t l1_clusters = DivRoundUp(l1_.size() * 8, cluster_size_);
  const bool fast = header_.version >= 3 && header_.nb_snapshots == 0 &&
                    3 + l1_clusters <= refcounts_->entries_per_block();
  if (!fast) return DiscardEverything();

  // 1. Everything cached goes to disk, then the caches are dropped.
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  l2_cache_->Clear();
  refcounts_->DropCache();
  pending_frees_.clear();
  // 2. Dirty: from here until the end, a crash is repaired on the next open.
  if (!(header_.incompatible_features & kIncompatDirty)) {
    header_.incompatible_features |= kIncompatDirty;
    absl::Status s = WriteHeaderBytes(72, 8);
    if (!s.ok()) {
      header_.incompatible_features &= ~kIncompatDirty;
      return s;
    }
  }
  absl::Status s = MakeEmptyFast(l1_clusters);
  if (!s.ok()) {
    // Caches and file disagree now; the dirty bit gets it repaired.
    unusable_ = ErrnoError(EIO, "Image is unusable after a failed make_empty");
    return s;
  }
  // 8. Clean again (writes the new refblock), 9. then the file shrinks to the new layout.
  STRATA_RETURN_IF_ERROR(MarkClean());
  const uint64_t new_length = (3 + l1_clusters) * cluster_size_;
  STRATA_RETURN_IF_ERROR(file_->node().Truncate(new_length, /*exact=*/false));
  if (tail_reserve_) tail_reserve_->Reset(new_length);
  return absl::OkStatus();
}

absl::Status Qcow2Instance::MakeEmptyFast(uint64_t l1_clusters) {
  const uint64_t cs = cluster_size_;
  // 3. The old L1 table: zeroed, so no mapping survives whatever happens next.
  file_->NotifyDebugEvent(DebugEvent::kL1Update);
  STRATA_RETURN_IF_ERROR(file_->node().PwriteZeroes(header_.l1_table_offset, l1_clusters * cs));
  std::fill(l1_.begin(), l1_.end(), 0);
  ++l1_epoch_;
  l1_dirty_ = false;
  // 4. The area of the new reftable (cluster 1), refblock (2) and L1 (3...).
  file_->NotifyDebugEvent(DebugEvent::kEmptyImagePrepare);
  STRATA_RETURN_IF_ERROR(file_->node().PwriteZeroes(cs, (2 + l1_clusters) * cs));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  // 5. One header write switches L1 and reftable (bytes 40..59).
  file_->NotifyDebugEvent(DebugEvent::kL1Update);
  file_->NotifyDebugEvent(DebugEvent::kReftableUpdate);
  header_.l1_table_offset = 3 * cs;
  header_.refcount_table_offset = cs;
  header_.refcount_table_clusters = 1;
  STRATA_RETURN_IF_ERROR(WriteHeaderBytes(40, 20));
  refcounts_->ResetToEmptyTable(cs, 1);
  // 6. The first refcount block, at cluster 2.
  file_->NotifyDebugEvent(DebugEvent::kRefblockAlloc);
  STRATA_RETURN_IF_ERROR(refcounts_->HookBlock(0, 2 * cs));
  // 7. Header, reftable, refblock and L1 are the first clusters again.
  STRATA_ASSIGN_OR_RETURN(uint64_t first,
                          refcounts_->AllocateClusters(DivRoundUp(3 * cs + l1_.size() * 8, cs),
                                                       /*counting_known_metadata=*/true));
  if (first != 0) return ErrnoError(EIO, "make_empty: metadata not allocated at offset 0");
  return absl::OkStatus();
}

absl::Status Qcow2Instance::DiscardEverything() {
  // Every L2 entry to 0 (unallocated: reads fall through to the backing file, which now
  // holds the data), each old cluster freed once the change is on disk.
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    if ((l1_[i] & kL1OffsetMask) == 0) continue;
    for (uint64_t j = 0; j < l2_entries_; ++j) {
      const uint64_t gc = i * l2_entries_ + j;
      STRATA_ASSIGN_OR_RETURN(uint64_t old, GetL2Entry(gc));
      if (old == 0) continue;
      STRATA_RETURN_IF_ERROR(SetL2Entry(gc, 0));
      ReleaseLater(old, pass_discard_snapshot_);
    }
  }
  STRATA_RETURN_IF_ERROR(FlushMetadata());
  return file_->node().Flush();
}

}  // namespace strata::qcow2
