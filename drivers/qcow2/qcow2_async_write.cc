// strata qcow2: allocating writes on the coroutine path (see Qcow2Instance::CoPwritev).
//
// The three phases of the synchronous Pwritev, with no thread blocked in any of them:
// planning under a try-locked mu_ in cached-only mode (CheckAllocationCached turns away
// whatever would need metadata I/O), the copy-on-write reads and the data write awaited
// natively, and the link into L2 inline when FinishIsCached, else on the pool. The crash
// ordering is the synchronous path's: the L2 entry changes only in the cache, after the
// data write completed, and reaches the disk through FlushMetadata's ordered write-back
// (refcounts, a data flush, then L2 tables).
#include <algorithm>

#include "aio/offload.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_file_reserve.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "drivers/qcow2/qcow2_refcount.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::CheckAllocationCached(uint64_t l1_index, uint64_t count) {
  // EnsureL2Table returns at once for a table the image owns.
  const uint64_t l1_entry = l1_index < l1_.size() ? l1_[l1_index] : 0;
  if ((l1_entry & kL1OffsetMask) == 0 || !(l1_entry & kOflagCopied)) {
    miss_ = {CachedOnlyMiss::Kind::kCreateL2, l1_index};  // made once on the pool
    return NotCached();
  }
  if (external_data_) return absl::OkStatus();  // the guest offset: nothing to allocate
  // AllocateDataClusters would flush metadata first.
  if (guest_frees_pending_) return NotCached();
  const std::optional<uint64_t> start = refcounts_->PeekFreeRun(count);
  if (!start) return NotCached();
  // AllocateRun extends the file when the run (or a refcount block) passes its known end.
  const uint64_t end_cluster = std::max(refcounts_->end_cluster(), *start + count);
  if (tail_reserve_ && !tail_reserve_->Covers(end_cluster << cluster_bits_)) {
    miss_ = {CachedOnlyMiss::Kind::kExtendTail, end_cluster << cluster_bits_};
    return NotCached();
  }
  return absl::OkStatus();
}

bool Qcow2Instance::FinishIsCached(const AllocationPlan& plan) {
  // MarkDirtyForLazyRefcounts writes the header once.
  if (lazy_refcounts_ && !(header_.incompatible_features & kIncompatDirty)) return false;
  const uint64_t l1_index = plan.first_gc / l2_entries_;
  if (l1_index >= l1_.size() || !(l1_[l1_index] & kOflagCopied)) return false;
  const uint64_t l2_offset = l1_[l1_index] & kL1OffsetMask;
  if (l2_offset == 0 || l2_cache_->Peek(l2_offset) == nullptr) return false;
  if (external_data_ && !plan.reuses_host_clusters) {
    // ReleaseLater zeroes or discards the old clusters in the data file.
    for (uint64_t e : plan.old_entries) {
      const ClusterType type = TypeOf(e);
      if (type == ClusterType::kNormal || type == ClusterType::kZeroAlloc) return false;
    }
  }
  return true;
}

aio::Task<absl::Status> Qcow2Instance::CoReadBacking(uint64_t offset, uint64_t len,
                                                     const IoVector& out) {
  if (backing_ == nullptr) {
    out.Memset(0, 0, len);
    co_return absl::OkStatus();
  }
  STRATA_CO_ASSIGN_OR_RETURN(const uint64_t backing_len, backing_->node().GetLength());
  const uint64_t avail = offset >= backing_len ? 0 : std::min(len, backing_len - offset);
  if (avail > 0) {
    STRATA_CO_RETURN_IF_ERROR(
        co_await backing_->node().CoPreadv(offset, avail, out.Slice(0, avail)));
  }
  if (avail < len) out.Memset(avail, 0, len - avail);
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoReadOldCluster(uint64_t gc, uint64_t entry,
                                                        uint64_t bitmap, uint64_t in_cluster,
                                                        uint64_t len, const IoVector& out) {
  STRATA_CO_ASSIGN_OR_RETURN(const std::vector<OldClusterPiece> pieces,
                             OldClusterPieces(entry, bitmap, in_cluster, len));
  for (const OldClusterPiece& p : pieces) {
    const IoVector piece_out = out.Slice(p.at - in_cluster, p.len);
    absl::Status s;
    switch (TypeOf(p.entry)) {
      case ClusterType::kUnallocated:
        s = co_await CoReadBacking((gc << cluster_bits_) + p.at, p.len, piece_out);
        break;
      case ClusterType::kZeroPlain:
      case ClusterType::kZeroAlloc:
        piece_out.Memset(0, 0, p.len);
        break;
      case ClusterType::kNormal: {  // a cluster shared with a snapshot, or our own subclusters
        const uint64_t host = p.entry & kL2OffsetMask;
        if (host % cluster_size_ != 0) {
          co_return ErrnoError(EIO, "Cluster allocation offset unaligned");
        }
        s = co_await CoReadData(host + p.at, (gc << cluster_bits_) + p.at, p.len, piece_out);
        break;
      }
      case ClusterType::kCompressed:
        s = co_await CoReadCompressed(p.entry, p.at, p.len, piece_out);
        break;
    }
    STRATA_CO_RETURN_IF_ERROR(s);
  }
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoWriteAllocation(const AllocationPlan& plan) {
  const CowLayout l = LayOutCow(plan);
  auto old_bitmap = [&](uint64_t i) { return extended_l2_ ? plan.old_bitmaps[i] : 0; };
  if (l.zero_cow) {
    absl::Status zeroed = absl::OkStatus();
    if (!plan.reads_as_zero) {
      zeroed = co_await data_file_->node().CoPwriteZeroes(plan.host, l.run_end - l.run_start,
                                                          kReqNoFallback);
    }
    if (zeroed.ok()) {
      if (!external_data_) NoteUncountedWrite(plan.host + (l.run_end - l.run_start));
      co_return co_await data_file_->node().CoPwritev(plan.offset - l.run_start + plan.host,
                                                      plan.data.size(), plan.data);
    }
    if (ErrnoOf(zeroed) != ENOTSUP) co_return zeroed;
  }
  // Copy-on-write: the head and tail the request does not cover, in one write with the
  // guest data (zeroes for a zero_cow without a cheap write-zeroes).
  std::vector<uint8_t> head(l.head_bytes), tail(l.tail_bytes);
  if (!l.zero_cow && !head.empty()) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoReadOldCluster(
        plan.first_gc, plan.old_entries.front(), old_bitmap(0), plan.write_start - l.run_start,
        head.size(), IoVector(head.data(), head.size())));
  }
  if (!l.zero_cow && !tail.empty()) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoReadOldCluster(
        l.tail_gc, plan.old_entries[l.tail_gc - plan.first_gc],
        old_bitmap(l.tail_gc - plan.first_gc), plan.data_end & (cluster_size_ - 1),
        tail.size(), IoVector(tail.data(), tail.size())));
  }
  IoVector combined;
  if (!head.empty()) combined.Append(head.data(), head.size());
  combined.Concat(plan.data);
  if (!tail.empty()) combined.Append(tail.data(), tail.size());
  const uint64_t host = plan.host + (plan.write_start - l.run_start);
  if (!external_data_) NoteUncountedWrite(host + combined.size());
  co_return co_await CoWriteData(host, plan.write_start, combined.size(), combined);
}

aio::Task<absl::Status> Qcow2Instance::CoFinishAllocations(
    const std::vector<AllocationPlan>& plans, const std::vector<absl::Status>& results,
    uint64_t epoch) {
  auto finish = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status status;
    for (size_t i = 0; i < plans.size(); ++i) {
      absl::Status s = FinishAllocation(plans[i], results[i]);
      if (status.ok()) status = s;
    }
    EndTransfer(epoch);
    return status;
  };
  // A failed write gives its clusters back, which may need refcount I/O: the pool's.
  bool cached =
      std::all_of(results.begin(), results.end(), [](const absl::Status& s) { return s.ok(); });
  (void)co_await CoLockMetadata();
  for (const AllocationPlan& p : plans) cached = cached && FinishIsCached(p);
  if (cached) {
    absl::Status s = finish();
    mu_.Unlock();
    co_return s;
  }
  mu_.Unlock();
  co_return co_await aio::Offload([&] {
    aio::CoMutexLock lock(&mu_);
    return finish();
  });
}

}  // namespace strata::qcow2
