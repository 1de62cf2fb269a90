// strata qcow2: preallocation of a grown area (create and resize with
// preallocation=metadata|falloc|full).
//
// Every cluster of the area gets an L2 entry pointing at its own host cluster, L2 table
// first and then the data clusters of that table in one contiguous run (the layout
// QEMU's metadata preallocation makes). The data clusters are made to read as zeroes
// before any L2 entry points at them: for `metadata` the file is extended past the last
// one (clusters reused from below the old end of file are zeroed); `falloc` reserves them
// with a zeroing fallocate; `full` writes zeroes. Only then are the refcounts, the L2
// tables and the L1 table flushed, in the usual order, so a crash leaves at worst leaks.
#include <algorithm>
#include <cerrno>

#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
absl::Status Qcow2Instance::Preallocate(uint64_t first_gc, uint64_t end_gc, PreallocMode mode,
                                        uint64_t guest_end) {
  STRATA_ASSIGN_OR_RETURN(const uint64_t old_file_end, file_->node().GetLength());
  uint64_t data_end = 0;  // one past the last data byte allocated
  for (uint64_t gc = first_gc; gc < end_gc;) {
    const uint64_t table_end = std::min(end_gc, (gc / l2_entries_ + 1) * l2_entries_);
    STRATA_ASSIGN_OR_RETURN(uint64_t entry, GetL2Entry(gc));
    if (TypeOf(entry) != ClusterType::kUnallocated) {
      ++gc;
      continue;
    }
    uint64_t count = 1;
    while (gc + count < table_end) {
      STRATA_ASSIGN_OR_RETURN(uint64_t next, GetL2Entry(gc + count));
      if (TypeOf(next) != ClusterType::kUnallocated) break;
      ++count;
    }
    STRATA_RETURN_IF_ERROR(EnsureL2Table(gc / l2_entries_).status());
    STRATA_ASSIGN_OR_RETURN(const uint64_t host, AllocateDataClusters(gc, count));
    const uint64_t bytes = count << cluster_bits_;
    // Make the clusters read as zeroes before anything points at them.
    absl::Status zeroed;
    // (An external data file reads as zeroes where it was grown; its old part is data.)
    if (mode == PreallocMode::kFull) {
      zeroed = data_file_->node().ZeroesByBuffer(host, bytes);
    } else if (mode == PreallocMode::kFalloc) {
      zeroed = data_file_->node().PwriteZeroes(host, bytes, kReqNone);
    } else if (host < old_file_end && !external_data_) {
      zeroed = file_->node().PwriteZeroes(host, std::min(bytes, old_file_end - host), kReqNone);
    }
    if (!zeroed.ok()) {
      FreeDataClusters(host, count);
      return zeroed;
    }
    STRATA_RETURN_IF_ERROR(MarkDirtyForLazyRefcounts());
    for (uint64_t i = 0; i < count; ++i) {
      STRATA_RETURN_IF_ERROR(
          SetL2Entry(gc + i, (host + (i << cluster_bits_)) | kOflagCopied));
    }
    // QEMU's file end: the guest bytes of the run, in allocation units (the last cluster
    // of an extended image can end at a subcluster).
    // (An external data file covers the last cluster whole, as in QEMU.)
    const uint64_t guest_bytes = std::min(bytes, guest_end - (gc << cluster_bits_));
    data_end = std::max(data_end, external_data_ ? host + bytes
                                                 : host + AlignUp(guest_bytes, subcluster_size_));
    gc += count;
  }
  // Metadata preallocation leaves the data unwritten: the file must still cover it.
  // (An external data file too, as QEMU: it then covers the last cluster whole.)
  STRATA_ASSIGN_OR_RETURN(const uint64_t file_end, data_file_->node().GetLength());
  if (data_end > file_end) {
    STRATA_RETURN_IF_ERROR(data_file_->node().Truncate(data_end, false, PreallocMode::kOff));
  }
  return FlushMetadata();
}

}  // namespace strata::qcow2
