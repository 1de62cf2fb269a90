// strata qcow2: zero writes, discards and metadata write-back on the coroutine path.
//
// A zero write or a discard of whole clusters changes only L2 entries (and queues the
// clusters it drops for freeing): with every L2 table it touches owned and cached, that
// is memory work under mu_, done on the loop (CoMapNatively; a table to load or to make
// is the one step that runs on the pool). The crash ordering is the synchronous path's,
// since it is the same code: the entries change in the cache only, the dropped clusters
// are freed only after FlushMetadata has made the L2 change stable, and transfers mapped
// before the change keep their clusters until they end (the transfer epochs). FUA
// adds the write-back and disk flushes after the change (CoFlushForFua). Partial
// clusters (standard L2 entries) are decided from cached tables too: zeroed again, or a
// zero buffer written through the write path. A flush's metadata write-back runs here
// too (CoFlushToOs: CoFlushMetadata with mu_ held across its writes), unless it has
// clusters to free or the refcount pool to fill. What the fast case does not cover
// (extended L2 entries' partial subclusters, unallocated partial clusters over a backing
// file, version 2, external data files, an allocation in flight over the range) runs the
// synchronous hook on the pool.
#include <vector>

#include "aio/offload.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "drivers/qcow2/qcow2_refcount.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::CheckL2TablesCached(uint64_t first_gc, uint64_t last_gc) {
  for (uint64_t i = first_gc / l2_entries_; i <= last_gc / l2_entries_; ++i) {
    const uint64_t l1_entry = i < l1_.size() ? l1_[i] : 0;
    const uint64_t l2_offset = l1_entry & kL1OffsetMask;
    if (l2_offset == 0 || !(l1_entry & kOflagCopied)) {
      miss_ = {CachedOnlyMiss::Kind::kCreateL2, i};  // EnsureL2Table, once, on the pool
      return NotCached();
    }
    if (l2_cache_->Peek(l2_offset) == nullptr) {
      miss_ = {CachedOnlyMiss::Kind::kLoadL2, l2_offset};
      return NotCached();
    }
  }
  return absl::OkStatus();
}

bool Qcow2Instance::MetadataClean() const {
  // Every step of FlushMetadata finds nothing to do.
  return read_only_ || (!l2_cache_->HasDirty() && !refcounts_->HasDirty() && !l1_dirty_ &&
                        pending_frees_.empty() && stable_frees_.empty() &&
                        !refcounts_->HasDiscards());
}

aio::Task<absl::Status> Qcow2Instance::CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                      uint32_t flags) {
  const bool on_loop = aio::IoContext::Current() != nullptr && bytes > 0 && version_ >= 3 &&
                       !external_data_ && !file_->delivers_events();
  // Whole clusters only (a partial last cluster of the image counts as whole, as in
  // PwriteZeroes; with extended L2 entries it is zeroed by subclusters there).
  const uint64_t size = size_.load(std::memory_order_acquire);
  const bool whole_clusters =
      offset % cluster_size_ == 0 &&
      (bytes % cluster_size_ == 0 || (!extended_l2_ && offset + bytes == size));
  if (on_loop && !whole_clusters && !extended_l2_) {
    co_return co_await CoPwriteZeroesPartial(offset, bytes, flags);
  }
  bool native = false;
  if (on_loop && whole_clusters) {
    MarkBitmapsDirty(offset, bytes);
    const uint64_t first_gc = offset >> cluster_bits_;
    const uint64_t last_gc = (offset + bytes - 1) >> cluster_bits_;
    auto zero = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
      STRATA_RETURN_IF_ERROR(CheckUsable());
      STRATA_RETURN_IF_ERROR(NotCachedIfAllocationInFlight(first_gc, last_gc));
      STRATA_RETURN_IF_ERROR(CheckL2TablesCached(first_gc, last_gc));
      return ZeroClusters(first_gc, last_gc - first_gc + 1, flags & kReqMayUnmap);
    };
    STRATA_CO_ASSIGN_OR_RETURN(native, co_await CoMapNatively(zero));
  }
  if (native) {
    if (flags & kReqFua) co_return co_await CoFlushForFua();
    co_return absl::OkStatus();
  }
  co_return co_await aio::Offload([&] { return PwriteZeroes(offset, bytes, flags); });
}

aio::Task<absl::Status> Qcow2Instance::CoPwriteZeroesPartial(uint64_t offset, uint64_t bytes,
                                                             uint32_t flags) {
  // PwriteZeroes's pieces (standard L2 entries: the unit is the cluster): a partial
  // cluster at the head, whole clusters (the last one of the image may be partial), a
  // partial cluster at the tail, done in that order. FUA once, at the end.
  MarkBitmapsDirty(offset, bytes);
  const uint64_t end = offset + bytes;
  uint64_t head_end = std::min(AlignUp(offset, cluster_size_), end);
  if (offset % cluster_size_ == 0) head_end = offset;
  uint64_t tail_start = std::max(head_end, end & ~(cluster_size_ - 1));
  if (end == size_.load(std::memory_order_acquire)) tail_start = end;
  const uint32_t piece_flags = flags & ~uint32_t{kReqFua};
  if (head_end > offset) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoZeroPartialCluster(offset, head_end - offset, piece_flags));
  }
  if (tail_start > head_end) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoPwriteZeroes(head_end, tail_start - head_end, piece_flags));
  }
  if (end > tail_start) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoZeroPartialCluster(tail_start, end - tail_start, piece_flags));
  }
  if (flags & kReqFua) co_return co_await CoFlushForFua();
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoZeroPartialCluster(uint64_t offset, uint64_t bytes,
                                                            uint32_t flags) {
  // ZeroPartialCluster's decision, from cached tables under mu_: a cluster that reads as
  // zeroes (a zero cluster, or unallocated with no backing file) becomes a zero cluster
  // again, as QEMU zeroes it; data (own, shared or compressed) gets a zero buffer written
  // through the write path. Unallocated over a backing file needs the backing file's
  // block status: the synchronous path's, for this piece only.
  const uint64_t gc = offset >> cluster_bits_;
  enum class Next { kSynchronous, kDone, kZeroBuffer } next = Next::kSynchronous;
  auto decide = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    next = Next::kSynchronous;
    STRATA_RETURN_IF_ERROR(CheckUsable());
    STRATA_RETURN_IF_ERROR(NotCachedIfAllocationInFlight(gc, gc));
    STRATA_ASSIGN_OR_RETURN(const uint64_t entry, GetMapping(offset));
    const ClusterType type = TypeOf(entry);
    if (type == ClusterType::kNormal || type == ClusterType::kCompressed) {
      next = Next::kZeroBuffer;
      return absl::OkStatus();
    }
    if (type == ClusterType::kUnallocated && backing_ != nullptr) return NotCached();
    STRATA_RETURN_IF_ERROR(CheckL2TablesCached(gc, gc));
    const bool unmap = type == ClusterType::kZeroAlloc && (flags & kReqMayUnmap);
    STRATA_RETURN_IF_ERROR(ZeroClusters(gc, 1, unmap));
    next = Next::kDone;
    return absl::OkStatus();
  };
  STRATA_CO_ASSIGN_OR_RETURN(const bool native, co_await CoMapNatively(decide));
  if (native && next == Next::kDone) co_return absl::OkStatus();
  if (native && next == Next::kZeroBuffer) {
    std::vector<uint8_t> zeroes(bytes, 0);
    co_return co_await CoPwritev(offset, bytes, IoVector(zeroes.data(), bytes), 0);
  }
  co_return co_await aio::Offload([&] { return PwriteZeroes(offset, bytes, flags); });
}

aio::Task<absl::Status> Qcow2Instance::CoPdiscard(uint64_t offset, uint64_t bytes) {
  const bool may_be_native = aio::IoContext::Current() != nullptr && bytes > 0 &&
                             version_ >= 3 && !external_data_ && !file_->delivers_events();
  bool native = false;
  if (may_be_native) {
    MarkBitmapsDirty(offset, bytes);
    const uint64_t first_gc = offset >> cluster_bits_;
    const uint64_t last_gc = (offset + bytes - 1) >> cluster_bits_;
    auto discard = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
      STRATA_RETURN_IF_ERROR(CheckUsable());
      STRATA_RETURN_IF_ERROR(NotCachedIfAllocationInFlight(first_gc, last_gc));
      // DiscardClusters makes (or copies) the tables of the whole clusters it drops.
      const uint64_t start = AlignUp(offset, cluster_size_);
      const uint64_t end = offset + bytes == header_.size
                               ? offset + bytes
                               : (offset + bytes) & ~(cluster_size_ - 1);
      if (start < end) {
        STRATA_RETURN_IF_ERROR(
            CheckL2TablesCached(start >> cluster_bits_, (end - 1) >> cluster_bits_));
      }
      return DiscardClusters(offset, bytes);
    };
    STRATA_CO_ASSIGN_OR_RETURN(native, co_await CoMapNatively(discard));
  }
  if (native) co_return absl::OkStatus();
  co_return co_await aio::Offload([&] { return Pdiscard(offset, bytes); });
}

aio::Task<absl::Status> Qcow2Instance::CoFlushForFua() {
  STRATA_CO_RETURN_IF_ERROR(co_await CoFlushToOs());
  if (external_data_) STRATA_CO_RETURN_IF_ERROR(co_await data_file_->node().CoFlush());
  co_return co_await file_->node().CoFlush();
}

// Not analysed: mu_ is taken through a co_await and released on each path.
aio::Task<absl::Status> Qcow2Instance::CoFlushToOs() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (aio::IoContext::Current() != nullptr && !file_->delivers_events() &&
      (!external_data_ || !data_file_->delivers_events())) {
    // On the loop: the write-back itself, mu_ held across its writes and disk flushes
    // (the other requests park on mu_), unless a step of it would do synchronous I/O.
    (void)co_await CoLockMetadata();
    absl::Status s = CheckUsable();
    if (s.ok() && !MetadataClean()) {
      if (!FlushMetadataCanRunOnLoop()) {
        mu_.Unlock();
        co_return co_await aio::Offload([&] { return FlushToOs(); });
      }
      s = co_await CoFlushMetadata(/*with_refcounts=*/false);
    }
    mu_.Unlock();
    co_return s;
  }
  co_return co_await aio::Offload([&] { return FlushToOs(); });
}

}  // namespace strata::qcow2
