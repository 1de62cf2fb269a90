// strata qcow2: internal snapshots: create, apply, delete, list.
//
// A snapshot is a copy of the L1 table plus one more reference on every L2 table and data
// cluster it reaches; writes to shared clusters then copy them (COPIED flags say which
// clusters the active image owns alone). Crash safety, as in QEMU: refcounts are raised
// and made stable before anything names the new references (the snapshot table, or the
// active L1 when applying), and lowered only after the table or L1 that named them is
// stable, so a crash at any point leaves at worst leaked clusters.
#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::LoadSnapshots() {
  snapshots_.clear();
  if (header_.nb_snapshots == 0) return absl::OkStatus();
  // Entries are variable-sized: read each fixed part, then its variable part.
  std::vector<uint8_t> table;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < header_.nb_snapshots; ++i) {
    pos = AlignUp(pos, 8);
    table.resize(pos + kSnapshotHeaderBytes, 0);
    STRATA_RETURN_IF_ERROR(file_->node().Pread(header_.snapshots_offset + pos,
                                               kSnapshotHeaderBytes, table.data() + pos));
    const uint64_t rest = uint64_t{LoadBe32(&table[pos + 36])} + LoadBe16(&table[pos + 12]) +
                          LoadBe16(&table[pos + 14]);
    if (rest > 1024 + 2 * 65535) return ErrnoError(EFBIG, "Snapshot table entry too large");
    pos += kSnapshotHeaderBytes;
    table.resize(pos + rest, 0);
    if (rest > 0) {
      STRATA_RETURN_IF_ERROR(
          file_->node().Pread(header_.snapshots_offset + pos, rest, table.data() + pos));
    }
    pos += rest;
    if (pos > kMaxSnapshotTableBytes) {
      return ErrnoError(EFBIG, "Snapshot table exceeds the maximum size");
    }
  }
  STRATA_ASSIGN_OR_RETURN(snapshots_, ParseSnapshotTable(table, header_.nb_snapshots));
  return absl::OkStatus();
}

int Qcow2Instance::FindSnapshot(const std::string& name) const {
  for (size_t i = 0; i < snapshots_.size(); ++i) {
    if (snapshots_[i].id == name) return static_cast<int>(i);
  }
  for (size_t i = 0; i < snapshots_.size(); ++i) {
    if (snapshots_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<std::vector<uint64_t>> Qcow2Instance::ReadL1Table(uint64_t offset,
                                                                 uint32_t size) {
  if (uint64_t{size} * 8 > kMaxL1Bytes) {
    return ErrnoError(EFBIG, "Snapshot L1 table too large");
  }
  STRATA_ASSIGN_OR_RETURN(const uint64_t file_length, file_->node().GetLength());
  if ((offset & (cluster_size_ - 1)) != 0 || offset > file_length ||
      uint64_t{size} * 8 > file_length - offset) {
    return ErrnoError(EINVAL, "Snapshot L1 table offset invalid");
  }
  std::vector<uint8_t> raw(uint64_t{size} * 8);
  if (size > 0) STRATA_RETURN_IF_ERROR(file_->node().Pread(offset, raw.size(), raw.data()));
  std::vector<uint64_t> l1(size);
  for (uint32_t i = 0; i < size; ++i) l1[i] = LoadBe64(&raw[i * 8]);
  return l1;
}

absl::Status Qcow2Instance::UpdateTreeRefcounts(const std::vector<uint64_t>& l1, int64_t delta,
                                                bool discard) {
  for (uint64_t e : l1) {
    const uint64_t l2 = e & kL1OffsetMask;
    if (l2 == 0) continue;
    STRATA_ASSIGN_OR_RETURN(uint8_t * table, l2_cache_->Get(l2));
    // Copy the entries: updating refcounts may evict the table from the cache.
    std::vector<uint64_t> entries(l2_entries_);
    for (uint64_t j = 0; j < l2_entries_; ++j) {
      entries[j] = NormalizeEntry(LoadBe64(table + j * l2_entry_bytes_));
    }
    for (uint64_t j = 0; j < entries.size(); ++j) {
      const uint64_t entry = entries[j];
      switch (TypeOf(entry)) {
        case ClusterType::kNormal:
        case ClusterType::kZeroAlloc:
          if ((entry & kL2OffsetMask) % cluster_size_ != 0) {
            // Never counted against the cluster it falls in (QEMU refuses the same way).
            return SignalCorruption(
                true, absl::StrFormat("Cluster allocation offset %#x unaligned (L2 offset: "
                                      "%#x, L2 index: %#x)",
                                      entry & kL2OffsetMask, l2, j));
          }
          STRATA_RETURN_IF_ERROR(
              refcounts_->UpdateRefcount((entry & kL2OffsetMask) >> cluster_bits_, delta, discard));
          break;
        case ClusterType::kCompressed: {
          const CompressedExtent extent = DecodeCompressed(entry, cluster_bits_);
          for (uint64_t c = extent.first_cluster(cluster_bits_);
               c <= extent.last_cluster(cluster_bits_); ++c) {
            STRATA_RETURN_IF_ERROR(refcounts_->UpdateRefcount(c, delta, discard));
          }
          break;
        }
        default:
          break;
      }
    }
    STRATA_RETURN_IF_ERROR(refcounts_->UpdateRefcount(l2 >> cluster_bits_, delta, discard));
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, refcounts_->GetRefcount(l2 >> cluster_bits_));
    if (rc == 0) l2_cache_->Discard(l2);
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::FixCopiedFlags() {
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    const uint64_t l2 = l1_[i] & kL1OffsetMask;
    if (l2 == 0) continue;
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, refcounts_->GetRefcount(l2 >> cluster_bits_));
    const uint64_t want = rc == 1 ? (l1_[i] | kOflagCopied) : (l1_[i] & ~kOflagCopied);
    if (want != l1_[i]) {
      l1_[i] = want;
      l1_dirty_ = true;
    }
    STRATA_ASSIGN_OR_RETURN(uint8_t * table, l2_cache_->Get(l2));
    std::vector<uint64_t> fixed(l2_entries_);
    bool changed = false;
    for (uint64_t j = 0; j < l2_entries_; ++j) {
      uint64_t entry = NormalizeEntry(LoadBe64(table + j * l2_entry_bytes_));
      fixed[j] = entry;
      ClusterType t = TypeOf(entry);
      if ((t != ClusterType::kNormal && t != ClusterType::kZeroAlloc) ||
          (entry & kL2OffsetMask) == 0) {
        continue;
      }
      STRATA_ASSIGN_OR_RETURN(uint64_t drc,
                              refcounts_->GetRefcount((entry & kL2OffsetMask) >> cluster_bits_));
      fixed[j] = drc == 1 ? (entry | kOflagCopied) : (entry & ~kOflagCopied);
      changed = changed || fixed[j] != entry;
    }
    if (changed) {
      STRATA_ASSIGN_OR_RETURN(table, l2_cache_->Get(l2));  // refcount lookups may evict it
      for (uint64_t j = 0; j < l2_entries_; ++j) StoreBe64(table + j * l2_entry_bytes_, fixed[j]);
      l2_cache_->MarkDirty(l2);
    }
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::WriteSnapshotTable(std::vector<Qcow2Snapshot> table) {
  const std::vector<uint8_t> bytes = SerializeSnapshotTable(table);
  const uint64_t old_offset = header_.snapshots_offset;
  const uint64_t old_clusters =
      DivRoundUp(SerializeSnapshotTable(snapshots_).size(), cluster_size_);
  uint64_t offset = 0;
  if (!table.empty()) {
    STRATA_ASSIGN_OR_RETURN(offset,
                            refcounts_->AllocateClusters(DivRoundUp(bytes.size(), cluster_size_)));
    STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
    STRATA_RETURN_IF_ERROR(file_->node().Pwrite(offset, bytes.size(), bytes.data()));
    STRATA_RETURN_IF_ERROR(file_->node().Flush());
  }
  // One header write (count and offset, bytes 60..71) switches to the new table.
  const uint32_t old_count = header_.nb_snapshots;
  header_.nb_snapshots = static_cast<uint32_t>(table.size());
  header_.snapshots_offset = offset;
  absl::Status s = WriteHeaderBytes(60, 12);
  if (!s.ok()) {
    header_.nb_snapshots = old_count;
    header_.snapshots_offset = old_offset;
    if (offset != 0) {
      (void)refcounts_->FreeClusters(offset, DivRoundUp(bytes.size(), cluster_size_));
    }
    return s;
  }
  snapshots_ = std::move(table);
  if (old_offset != 0 && old_clusters > 0) {
    STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(old_offset, old_clusters));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SnapshotInfo>> Qcow2Instance::ListSnapshots() {
  aio::CoMutexLock lock(&mu_);
  std::vector<SnapshotInfo> out;
  for (const Qcow2Snapshot& s : snapshots_) {
    SnapshotInfo info;
    info.id = s.id;
    info.name = s.name;
    info.vm_state_size = s.extra.size() >= 8 ? LoadBe64(s.extra.data()) : s.vm_state_size;
    info.date_sec = s.date_sec;
    info.date_nsec = s.date_nsec;
    info.vm_clock_nsec = s.vm_clock_nsec;
    info.icount = s.Icount();
    out.push_back(std::move(info));
  }
  return out;
}

absl::Status Qcow2Instance::CreateSnapshot(const std::string& name) {
  aio::CoMutexLock lock(&mu_);
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  // Data clusters of an external data file cannot be shared (QEMU's rule).
  if (external_data_) return ErrnoError(ENOTSUP);
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(0, UINT64_MAX);
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  uint64_t max_id = 0;
  for (const Qcow2Snapshot& s : snapshots_) {
    uint64_t id;
    if (absl::SimpleAtoi(s.id, &id)) max_id = std::max(max_id, id);
  }
  Qcow2Snapshot sn;
  sn.id = std::to_string(max_id + 1);
  sn.name = name;
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  sn.date_sec = static_cast<uint32_t>(now_us / 1000000);
  sn.date_nsec = static_cast<uint32_t>(now_us % 1000000 * 1000);
  sn.extra.assign(24, 0);
  StoreBe64(&sn.extra[8], header_.size);  // disk size; vm state and icount stay 0
  sn.l1_size = static_cast<uint32_t>(l1_.size());
  // The copy of the L1 table, as it is now.
  const uint64_t l1_clusters = DivRoundUp(l1_.size() * 8, cluster_size_);
  if (l1_clusters > 0) {
    STRATA_ASSIGN_OR_RETURN(sn.l1_table_offset, refcounts_->AllocateClusters(l1_clusters));
    std::vector<uint8_t> raw(l1_.size() * 8);
    for (size_t i = 0; i < l1_.size(); ++i) StoreBe64(&raw[i * 8], l1_[i]);
    STRATA_RETURN_IF_ERROR(file_->node().Pwrite(sn.l1_table_offset, raw.size(), raw.data()));
  }
  // One more reference on everything it reaches, stable before the table names it.
  STRATA_RETURN_IF_ERROR(UpdateTreeRefcounts(l1_, +1));
  STRATA_RETURN_IF_ERROR(FixCopiedFlags());
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  std::vector<Qcow2Snapshot> table = snapshots_;
  table.push_back(std::move(sn));
  return WriteSnapshotTable(std::move(table));
}

absl::Status Qcow2Instance::DeleteSnapshot(const std::string& name) {
  aio::CoMutexLock lock(&mu_);
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(0, UINT64_MAX);
  const int index = FindSnapshot(name);
  if (index < 0) return ErrnoError(ENOENT, "snapshot not found");
  const Qcow2Snapshot sn = snapshots_[index];
  STRATA_ASSIGN_OR_RETURN(std::vector<uint64_t> sn_l1,
                          ReadL1Table(sn.l1_table_offset, sn.l1_size));
  // Out of the table first (stable), then its references go.
  std::vector<Qcow2Snapshot> table = snapshots_;
  table.erase(table.begin() + index);
  STRATA_RETURN_IF_ERROR(WriteSnapshotTable(std::move(table)));
  STRATA_RETURN_IF_ERROR(UpdateTreeRefcounts(sn_l1, -1, pass_discard_snapshot_));
  const uint64_t l1_clusters = DivRoundUp(uint64_t{sn.l1_size} * 8, cluster_size_);
  if (sn.l1_table_offset != 0 && l1_clusters > 0) {
    STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(sn.l1_table_offset, l1_clusters));
  }
  STRATA_RETURN_IF_ERROR(FixCopiedFlags());
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  return file_->node().Flush();
}

absl::Status Qcow2Instance::ApplySnapshot(const std::string& name) {
  aio::CoMutexLock lock(&mu_);
  PublishSizeOnExit publish(this);
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(0, UINT64_MAX);
  const int index = FindSnapshot(name);
  if (index < 0) return ErrnoError(ENOENT);
  const Qcow2Snapshot sn = snapshots_[index];
  STRATA_ASSIGN_OR_RETURN(std::vector<uint64_t> sn_l1,
                          ReadL1Table(sn.l1_table_offset, sn.l1_size));
  // Nothing changes until the whole snapshot tree checks out: its L1 table must not lie on
  // other metadata, and each of its L2 tables must be aligned and off every structure but
  // the active L2 tables (which it may share).
  using Index = MetadataOverlapIndex;
  if (OverlapsMetadata(sn.l1_table_offset, uint64_t{sn.l1_size} * 8, Index::kInactiveL1)) {
    return ErrnoError(EINVAL, "Snapshot L1 table offset invalid");
  }
  for (uint64_t e : sn_l1) {
    const uint64_t l2 = e & kL1OffsetMask;
    if (l2 == 0) continue;
    if ((l2 & (cluster_size_ - 1)) != 0 ||
        OverlapsMetadata(l2, cluster_size_, Index::kActiveL2)) {
      return ErrnoError(EINVAL, "Snapshot L1 table offset invalid");
    }
  }
  if (sn_l1.size() > l1_.size()) STRATA_RETURN_IF_ERROR(GrowL1(sn_l1.size()));
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  // The snapshot's tree gains the active image's reference (stable), then the active L1
  // switches to it, then the old tree loses its reference.
  STRATA_RETURN_IF_ERROR(UpdateTreeRefcounts(sn_l1, +1));
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  // As QEMU, the snapshot's own L1 table gets COPIED set exactly where its L2 table is
  // not shared (now nowhere). Nothing reads that flag in an inactive table; it keeps the
  // files identical.
  {
    std::vector<uint8_t> raw(sn_l1.size() * 8);
    bool changed = false;
    for (size_t i = 0; i < sn_l1.size(); ++i) {
      uint64_t e = sn_l1[i];
      if ((e & kL1OffsetMask) != 0) {
        STRATA_ASSIGN_OR_RETURN(uint64_t rc,
                                refcounts_->GetRefcount((e & kL1OffsetMask) >> cluster_bits_));
        const uint64_t want = rc == 1 ? (e | kOflagCopied) : (e & ~kOflagCopied);
        changed |= want != e;
        e = want;
      }
      StoreBe64(&raw[i * 8], e);
    }
    if (changed) {
      STRATA_RETURN_IF_ERROR(file_->node().Pwrite(sn.l1_table_offset, raw.size(), raw.data()));
    }
  }
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  std::vector<uint64_t> old = l1_;
  std::fill(l1_.begin(), l1_.end(), 0);
  std::copy(sn_l1.begin(), sn_l1.end(), l1_.begin());
  ++l1_epoch_;  // the overlap index lists the new active L2 tables, no longer the old ones
  STRATA_RETURN_IF_ERROR(WriteL1());
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  STRATA_RETURN_IF_ERROR(UpdateTreeRefcounts(old, -1, pass_discard_snapshot_));
  const uint64_t size = sn.DiskSize(header_.size);
  if (size != header_.size) {
    header_.size = size;
    STRATA_RETURN_IF_ERROR(WriteHeaderBytes(24, 8));
  }
  STRATA_RETURN_IF_ERROR(FixCopiedFlags());
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  return file_->node().Flush();
}

absl::Status Qcow2Instance::LoadSnapshotForReading(const std::string& id,
                                                   const std::string& name) {
  aio::CoMutexLock lock(&mu_);
  PublishSizeOnExit publish(this);
  if (!read_only_) return ErrnoError(EINVAL, "Only read-only images can load a snapshot");
  int index = -1;
  for (size_t i = 0; i < snapshots_.size() && index < 0; ++i) {
    const bool by_id = !id.empty() && snapshots_[i].id == id;
    const bool by_name = !name.empty() && snapshots_[i].name == name;
    if ((id.empty() || by_id) && (name.empty() || by_name) && (by_id || by_name)) {
      index = static_cast<int>(i);
    }
  }
  if (index < 0 && name.empty() && !id.empty()) index = FindSnapshot(id);  // id-or-name form
  if (index < 0) return ErrnoError(ENOENT, "Can't find snapshot");
  const Qcow2Snapshot& sn = snapshots_[index];
  STRATA_ASSIGN_OR_RETURN(std::vector<uint64_t> sn_l1, ReadL1Table(sn.l1_table_offset, sn.l1_size));
  l1_ = std::move(sn_l1);
  ++l1_epoch_;
  header_.size = sn.DiskSize(header_.size);
  l2_cache_->Clear();
  return absl::OkStatus();
}

}  // namespace strata::qcow2
