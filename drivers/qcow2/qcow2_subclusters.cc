// strata qcow2: extended L2 entries (incompatible bit 4): mapping, allocation and zeroing
// per subcluster. Each L2 entry has a 64-bit bitmap beside it; a cluster is allocated on
// the host as a whole, but each of its 32 subclusters is on its own allocated (reads the
// host cluster), zero, or unallocated (reads the backing file). A small write into a
// cluster that has no host cluster yet writes only the subclusters it touches, which is
// the point of the feature: over a backing file, copy-on-write shrinks from a cluster to
// at most two subclusters.
//
// Crash safety is the standard path's: data (and copy-on-write) reach the host cluster
// before the L2 entry and bitmap that make them visible, in the same flush order.
#include <optional>

#include "absl/strings/str_format.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

// Subcluster `sc` of a cluster with raw extended `entry` and `bitmap`, as an effective
// entry (see Qcow2Instance::GetMapping); nullopt for a combination the format forbids.
// `has_host`: whether the cluster has a host cluster (Qcow2Instance::HasHost).
std::optional<uint64_t> SubclusterEntry(uint64_t entry, uint64_t bitmap, uint32_t sc,
                                        bool has_host) {
  if (entry & kOflagCompressed) return entry;
  const bool allocated = (bitmap >> sc) & 1;
  const bool zero = (bitmap >> (32 + sc)) & 1;
  const uint64_t host = entry & kL2OffsetMask;
  if ((allocated && zero) || (allocated && !has_host)) return std::nullopt;
  if (allocated) return entry;
  if (zero) {
    return has_host ? (host | (entry & kOflagCopied) | kOflagZero | kUnallocatedWithHost)
                    : kOflagZero;
  }
  return has_host ? (host | kUnallocatedWithHost) : 0;
}

}  // namespace

absl::StatusOr<uint64_t> Qcow2Instance::EffectiveEntry(uint64_t gc, uint64_t entry,
                                                       uint64_t bitmap, uint32_t sc) {
  std::optional<uint64_t> effective = SubclusterEntry(entry, bitmap, sc, HasHost(entry));
  if (!effective) {
    return SignalCorruption(true, absl::StrFormat("Invalid cluster entry found  (L2 offset: "
                                                  "%#x, L2 index: %#x)",
                                                  l1_[gc / l2_entries_] & kL1OffsetMask,
                                                  gc % l2_entries_));
  }
  return *effective;
}

absl::StatusOr<uint64_t> Qcow2Instance::GetMapping(uint64_t pos) {
  const uint64_t gc = pos >> cluster_bits_;
  if (!extended_l2_) return GetL2Entry(gc);
  STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
  return EffectiveEntry(gc, l2.entry, l2.bitmap,
                        static_cast<uint32_t>((pos & (cluster_size_ - 1)) >> subcluster_bits_));
}

absl::StatusOr<uint64_t> Qcow2Instance::SubclusterRunBytes(uint64_t offset, uint64_t bytes,
                                                           uint64_t entry) {
  const ClusterType type = TypeOf(entry);
  if (type == ClusterType::kCompressed) {
    return std::min(cluster_size_ - (offset & (cluster_size_ - 1)), bytes);
  }
  const bool has_host = HasHost(entry);
  const uint64_t host_at_offset = (entry & kL2OffsetMask) + (offset & (cluster_size_ - 1));
  uint64_t run = 0;
  while (run < bytes) {
    const uint64_t pos = offset + run;
    const uint64_t gc = pos >> cluster_bits_;
    const uint64_t in_cluster = pos & (cluster_size_ - 1);
    const uint32_t sc = static_cast<uint32_t>(in_cluster >> subcluster_bits_);
    const uint64_t l1_index = gc / l2_entries_;
    if (type == ClusterType::kUnallocated && !has_host && in_cluster == 0 &&
        gc % l2_entries_ == 0 &&
        (l1_index >= l1_.size() || (l1_[l1_index] & kL1OffsetMask) == 0)) {
      // A whole L2 range without a table: one step (time follows what is allocated).
      run += std::min(l2_entries_ << cluster_bits_, bytes - run);
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
    const uint64_t raw = l2.entry, bitmap = l2.bitmap;
    if (run > 0) {
      if (raw & kOflagCompressed) break;
      STRATA_ASSIGN_OR_RETURN(uint64_t next, EffectiveEntry(gc, raw, bitmap, sc));
      if (TypeOf(next) != type || HasHost(next) != has_host) break;
      if (has_host && (next & kL2OffsetMask) + in_cluster != host_at_offset + run) break;
    }
    const uint32_t n = SameStateSubclusters(bitmap, sc);
    run += std::min(((uint64_t{sc} + n) << subcluster_bits_) - in_cluster, bytes - run);
    if (sc + n < kSubclustersPerCluster) break;
  }
  return run;
}

absl::StatusOr<bool> Qcow2Instance::InPlaceWritable(uint64_t pos, uint64_t entry) {
  if (TypeOf(entry) != ClusterType::kNormal || !(entry & kOflagCopied)) return false;
  if (!extended_l2_) return true;
  const uint64_t gc = pos >> cluster_bits_;
  STRATA_ASSIGN_OR_RETURN(uint64_t bitmap, GetL2Bitmap(gc));
  STRATA_ASSIGN_OR_RETURN(
      uint64_t effective,
      EffectiveEntry(gc, entry, bitmap,
                     static_cast<uint32_t>((pos & (cluster_size_ - 1)) >> subcluster_bits_)));
  return TypeOf(effective) == ClusterType::kNormal;
}

absl::StatusOr<std::vector<Qcow2Instance::OldClusterPiece>> Qcow2Instance::OldClusterPieces(
    uint64_t entry, uint64_t bitmap, uint64_t in_cluster, uint64_t len) const {
  std::vector<OldClusterPiece> pieces;
  if (!extended_l2_ || (entry & kOflagCompressed)) {
    pieces.push_back({in_cluster, len, entry});
    return pieces;
  }
  for (uint64_t done = 0; done < len;) {
    const uint64_t at = in_cluster + done;
    const uint32_t sc = static_cast<uint32_t>(at >> subcluster_bits_);
    std::optional<uint64_t> effective = SubclusterEntry(entry, bitmap, sc, HasHost(entry));
    if (!effective) return ErrnoError(EIO, "Invalid cluster entry");
    const uint64_t piece =
        std::min(((uint64_t{sc} + SameStateSubclusters(bitmap, sc)) << subcluster_bits_) - at,
                 len - done);
    pieces.push_back({at, piece, *effective});
    done += piece;
  }
  return pieces;
}

absl::Status Qcow2Instance::ReadOldCluster(uint64_t gc, uint64_t entry, uint64_t bitmap,
                                           uint64_t in_cluster, uint64_t len,
                                           const IoVector& out) {
  STRATA_ASSIGN_OR_RETURN(const std::vector<OldClusterPiece> pieces,
                          OldClusterPieces(entry, bitmap, in_cluster, len));
  for (const OldClusterPiece& p : pieces) {
    STRATA_RETURN_IF_ERROR(
        ReadFromEntry(gc, p.entry, p.at, p.len, out.Slice(p.at - in_cluster, p.len)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Qcow2Instance::AllocationPlan> Qcow2Instance::PlanSubclusterAllocation(
    uint64_t offset, uint64_t bytes, const IoVector& qiov) {
  const uint64_t subcluster_mask = subcluster_size_ - 1;
  auto subcluster_of = [&](uint64_t guest) {
    return static_cast<uint32_t>((guest & (cluster_size_ - 1)) >> subcluster_bits_);
  };
  AllocationPlan plan;
  plan.first_gc = offset >> cluster_bits_;
  plan.offset = offset;
  const uint64_t first_start = plan.first_gc << cluster_bits_;
  STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap first, GetL2EntryAndBitmap(plan.first_gc));
  const uint64_t first_entry = first.entry, first_bitmap = first.bitmap;
  if (TypeOf(first_entry) == ClusterType::kNormal && (first_entry & kOflagCopied)) {
    // The image's own cluster (the caller found offset's subcluster not allocated): the
    // data goes into it, with copy-on-write only inside the first and last subclusters
    // it touches, where those are not allocated yet.
    plan.host = first_entry & kL2OffsetMask;
    if (plan.host % cluster_size_ != 0) {
      return SignalCorruption(
          true, absl::StrFormat("Data cluster offset %#x unaligned (guest offset: %#x)",
                                plan.host, first_start));
    }
    plan.reuses_host_clusters = true;
    plan.count = 1;
    plan.old_entries = {first_entry};
    plan.old_bitmaps = {first_bitmap};
    plan.data_end = std::min(offset + bytes, first_start + cluster_size_);
    plan.data = qiov.Slice(0, plan.data_end - offset);
    const uint32_t first_sc = subcluster_of(offset);
    const uint32_t last_sc = subcluster_of(plan.data_end - 1);
    plan.write_start = ((first_bitmap >> first_sc) & 1) ? offset : offset & ~subcluster_mask;
    plan.write_end = ((first_bitmap >> last_sc) & 1)
                         ? plan.data_end
                         : AlignUp(plan.data_end, subcluster_size_);
    plan.new_bitmaps = {(first_bitmap | SubclusterAllocRange(first_sc, last_sc + 1)) &
                        ~SubclusterZeroRange(first_sc, last_sc + 1)};
    if (!external_data_) {  // (an external data file holds no metadata)
      STRATA_RETURN_IF_ERROR(CheckMetadataOverlap(plan.host + (plan.write_start - first_start),
                                                  plan.write_end - plan.write_start,
                                                  overlap_ignore_));
    }
    inflight_allocs_.push_back({plan.first_gc, plan.count});
    return plan;
  }
  // New host clusters for a run of clusters the image does not own: without a host
  // cluster (only the touched subclusters are written), shared with a snapshot or
  // compressed (copied whole, as in the standard format).
  const uint64_t last_gc = (offset + bytes - 1) >> cluster_bits_;
  const uint64_t table_end = (plan.first_gc / l2_entries_ + 1) * l2_entries_;
  for (uint64_t gc = plan.first_gc; gc <= last_gc && gc < table_end; ++gc) {
    STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
    const uint64_t e = l2.entry, b = l2.bitmap;
    if (TypeOf(e) == ClusterType::kNormal && (e & kOflagCopied)) break;
    // Checked here, under the lock, so that copy-on-write reads find valid bitmaps.
    for (uint32_t sc = 0; sc < kSubclustersPerCluster; sc += SameStateSubclusters(b, sc)) {
      STRATA_RETURN_IF_ERROR(EffectiveEntry(gc, e, b, sc).status());
    }
    plan.old_entries.push_back(e);
    plan.old_bitmaps.push_back(b);
  }
  plan.count = plan.old_entries.size();
  STRATA_RETURN_IF_ERROR(AllocateRun(plan, bytes, qiov));
  // The bytes written (QEMU's choice, so that the bitmaps come out the same): from the
  // data's first subcluster to its last, widened, where the old cluster had a host
  // cluster, to its first and last allocated subclusters (their data is copied), and to
  // the whole cluster for a compressed one. Every subcluster written is allocated
  // afterwards; the others keep their state.
  const uint64_t last = plan.count - 1;
  const uint64_t last_start = (plan.first_gc + last) << cluster_bits_;
  auto allocated_bits = [&](uint64_t i) {
    return static_cast<uint32_t>(plan.old_bitmaps[i] & kL2BitmapAllAlloc);
  };
  auto has_host = [&](uint64_t i) { return HasHost(plan.old_entries[i]); };
  uint32_t start_sc = subcluster_of(offset);
  if (plan.old_entries[0] & kOflagCompressed) {
    start_sc = 0;
  } else if (has_host(0) && allocated_bits(0) != 0) {
    start_sc = std::min<uint32_t>(start_sc, __builtin_ctz(allocated_bits(0)));
  }
  uint32_t end_sc = subcluster_of(plan.data_end - 1) + 1;
  if (plan.old_entries[last] & kOflagCompressed) {
    end_sc = kSubclustersPerCluster;
  } else if (has_host(last) && allocated_bits(last) != 0) {
    end_sc = std::max<uint32_t>(end_sc, 32 - __builtin_clz(allocated_bits(last)));
  }
  plan.write_start = first_start + (uint64_t{start_sc} << subcluster_bits_);
  plan.write_end = last_start + (uint64_t{end_sc} << subcluster_bits_);
  for (uint64_t i = 0; i < plan.count; ++i) {
    const uint64_t old = plan.old_bitmaps[i];
    const uint64_t kept = has_host(i) ? old : old & kL2BitmapAllZero;
    const uint32_t first_sc = i == 0 ? start_sc : 0;
    const uint32_t past_sc = i == last ? end_sc : kSubclustersPerCluster;
    plan.new_bitmaps.push_back((kept | SubclusterAllocRange(first_sc, past_sc)) &
                               ~SubclusterZeroRange(first_sc, past_sc));
  }
  return plan;
}

absl::StatusOr<bool> Qcow2Instance::ZeroSubclusters(uint64_t gc, uint32_t first_sc,
                                                    uint32_t end_sc) {
  STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
  const uint64_t entry = l2.entry, bitmap = l2.bitmap;
  if (entry & kOflagCompressed) return false;
  const uint64_t zeroed = (bitmap | SubclusterZeroRange(first_sc, end_sc)) &
                          ~SubclusterAllocRange(first_sc, end_sc);
  if (zeroed != bitmap) STRATA_RETURN_IF_ERROR(SetL2Entry(gc, entry, zeroed));
  if (data_file_raw_ && HasHost(entry)) {
    // The raw data file must read as the guest does.
    STRATA_RETURN_IF_ERROR(
        ZeroDataFile((entry & kL2OffsetMask) + (uint64_t{first_sc} << subcluster_bits_),
                     uint64_t{end_sc - first_sc} << subcluster_bits_, 0));
  }
  return true;
}

}  // namespace strata::qcow2
