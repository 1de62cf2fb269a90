// strata qcow2: making an L2 table (a new one, or the image's own copy of one shared with
// a snapshot) and hooking it into L1.
//
// One coroutine, CoEnsureL2Table, for both paths: the synchronous EnsureL2Table runs it
// with RunSync (every write completes inline), and the coroutine path runs it on its
// loop, holding mu_ across the awaits (other requests park on mu_; the loop runs on),
// when EnsureL2TableCanRunOnLoop says its remaining synchronous steps do no I/O.
#include <cstring>
#include <vector>

#include "aio/run_sync.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::StatusOr<uint64_t> Qcow2Instance::EnsureL2Table(uint64_t l1_index) {
  const uint64_t l1_entry = l1_index < l1_.size() ? l1_[l1_index] : 0;
  if ((l1_entry & kL1OffsetMask) != 0 && (l1_entry & kOflagCopied)) {
    return l1_entry & kL1OffsetMask;  // the common case, without a coroutine frame
  }
  return aio::RunSync(CoEnsureL2Table(l1_index));
}

bool Qcow2Instance::EnsureL2TableCanRunOnLoop(uint64_t l1_index) {
  if (l1_index >= l1_.size()) return false;  // GrowL1 writes the new table
  if (guest_frees_pending_) return false;    // MakeGuestFreesReusable flushes metadata
  const uint64_t l2_offset = l1_[l1_index] & kL1OffsetMask;
  if (l2_offset != 0 && l2_cache_->Peek(l2_offset) == nullptr) return false;  // a read
  return refcounts_->PeekFreeRun(1).has_value();  // AllocateClusters(1) from cached blocks
}

aio::Task<absl::StatusOr<uint64_t>> Qcow2Instance::CoEnsureL2Table(uint64_t l1_index) {
  if (l1_index >= l1_.size()) STRATA_CO_RETURN_IF_ERROR(GrowL1(l1_index + 1));
  const uint64_t l1_entry = l1_[l1_index];
  const uint64_t l2_offset = l1_entry & kL1OffsetMask;
  if (l2_offset != 0 && (l1_entry & kOflagCopied)) co_return l2_offset;
  // A new L2 table, or a private copy of one shared with a snapshot. QEMU's order, which
  // keeps every step crash safe: the table's refcount is made stable, the table is
  // written and made stable, and only then the L1 entry that points at it (one sector,
  // synchronously). Clusters the guest freed are reusable for it, as in QEMU.
  STRATA_CO_RETURN_IF_ERROR(MakeGuestFreesReusable());
  STRATA_CO_ASSIGN_OR_RETURN(const uint64_t new_offset, refcounts_->AllocateClusters(1));
  // On failure the new cluster goes back (its refcount block is cached: it was just
  // counted there) and the old L1 entry stays.
  auto give_back = [&](absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    l2_cache_->Discard(new_offset);
    (void)refcounts_->FreeClusters(new_offset, 1);
    return s;
  };
  absl::Status s = co_await refcounts_->CoFlush();
  if (s.ok()) s = co_await file_->node().CoFlush();
  if (!s.ok()) co_return give_back(s);
  std::vector<uint8_t> old;
  if (l2_offset != 0) {
    file_->NotifyDebugEvent(DebugEvent::kL2AllocCowRead);
    absl::StatusOr<uint8_t*> t = l2_cache_->Get(l2_offset);
    if (!t.ok()) co_return give_back(t.status());
    old.assign(*t, *t + cluster_size_);
  }
  absl::StatusOr<uint8_t*> table = l2_cache_->Create(new_offset);
  if (!table.ok()) co_return give_back(table.status());
  if (!old.empty()) std::memcpy(*table, old.data(), cluster_size_);
  file_->NotifyDebugEvent(DebugEvent::kL2AllocWrite);
  l2_cache_->MarkDirty(new_offset);
  s = co_await CoFlushDataBeforeL2(/*file_flushed=*/true);  // file_ was flushed above
  if (s.ok()) s = co_await l2_cache_->CoFlush();
  if (s.ok()) s = co_await file_->node().CoFlush();
  if (!s.ok()) co_return give_back(s);
  l1_[l1_index] = new_offset | kOflagCopied;
  ++l1_epoch_;
  s = co_await CoWriteL1Entry(l1_index);
  if (!s.ok()) {
    l1_[l1_index] = l1_entry;
    ++l1_epoch_;
    co_return give_back(s);
  }
  if (!old.empty()) pending_frees_.push_back({l2_offset, 1, pass_discard_other_});
  co_return new_offset;
}

aio::Task<absl::Status> Qcow2Instance::CoWriteL1Entry(uint64_t l1_index) {
  // The 512-byte sector of the table that holds the entry, made stable before returning.
  constexpr uint64_t kEntriesPerSector = 64;
  const uint64_t first = l1_index / kEntriesPerSector * kEntriesPerSector;
  const uint64_t count = std::min<uint64_t>(kEntriesPerSector, l1_.size() - first);
  std::vector<uint8_t> raw(count * 8);
  for (uint64_t i = 0; i < count; ++i) StoreBe64(&raw[i * 8], l1_[first + i]);
  file_->NotifyDebugEvent(DebugEvent::kL1Update);
  // The L1 table itself may lie on other metadata (a hostile l1_table_offset of 0).
  STRATA_CO_RETURN_IF_ERROR(
      CheckMetadataOverlap(header_.l1_table_offset + first * 8, raw.size(),
                           overlap_ignore_ | MetadataOverlapIndex::kActiveL1));
  NoteUncountedWrite(header_.l1_table_offset + (first + count) * 8);
  STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPwritev(
      header_.l1_table_offset + first * 8, raw.size(), IoVector(raw.data(), raw.size()), 0));
  co_return co_await file_->node().CoFlush();
}

}  // namespace strata::qcow2
