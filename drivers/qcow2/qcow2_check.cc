// strata qcow2: consistency check and leak/refcount repair (qemu-img check).
//
// Builds an in-memory reference count for every cluster of the file from everything that
// references it (header, L1/L2 tables and data of the active image and of every snapshot,
// the snapshot table, the refcount table and blocks), compares it with the on-disk
// refcounts, then checks the COPIED flags of the active tables against the on-disk
// refcounts. Findings go to stderr in QEMU's words. With kCheckFixLeaks / kCheckFixErrors
// the on-disk refcounts (and COPIED flags) are corrected; a refcount structure beyond such
// repair (a rebuild, in QEMU) is reported as a check error instead.
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "block/diagnostics.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

// One pass of reference counting over the file.
struct ReferenceMap {
  std::vector<uint64_t> refs;
  int64_t corruptions = 0;

  void Add(uint64_t offset, uint64_t bytes, uint64_t cluster_bits) {
    if (bytes == 0) return;
    uint64_t first = offset >> cluster_bits, last = (offset + bytes - 1) >> cluster_bits;
    for (uint64_t c = first; c <= last; ++c) {
      if (c >= refs.size()) {
        Diagnose(
            DiagnosticKind::kCheckFinding,
            absl::StrFormat("ERROR: counting reference for region exceeding the end of the file by "
                            "one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64,
                            offset, bytes));
        ++corruptions;
        return;
      }
      ++refs[c];
    }
  }
};

}  // namespace

absl::StatusOr<CheckResult> Qcow2Instance::Check(uint32_t fix) {
  aio::CoMutexLock lock(&mu_);
  if (fix != 0 && read_only_) return ErrnoError(EACCES, "Image is read-only");
  WaitForAllocations(0, UINT64_MAX);
  // Clusters counted ahead of use are not references: give them back first.
  if (!read_only_) STRATA_RETURN_IF_ERROR(refcounts_->ReleasePool());
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/fix != 0));
  CheckResult r;
  uint64_t nb_clusters = 0;
  ReferenceMap map;
  bool needs_rebuild = false;

  // Walks one L1 table; `active` also gathers the allocation statistics.
  auto walk_l1 = [&](uint64_t l1_offset, uint64_t l1_size, bool active) -> absl::Status {
    map.Add(l1_offset, l1_size * 8, cluster_bits_);
    std::vector<uint8_t> raw(l1_size * 8);
    if (l1_size > 0) {
      absl::Status s = file_->node().Pread(l1_offset, raw.size(), raw.data());
      if (!s.ok()) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR: I/O error in check_refcounts_l1"));
        ++r.check_errors;
        return absl::OkStatus();
      }
    }
    for (uint64_t i = 0; i < l1_size; ++i) {
      uint64_t e = LoadBe64(&raw[i * 8]);
      if (e & kL1ReservedMask) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR found L1 entry with reserved bits set: %" PRIx64, e));
        ++map.corruptions;
      }
      uint64_t l2 = e & kL1OffsetMask;
      if (l2 == 0) continue;
      if (l2 % cluster_size_ != 0) {
        Diagnose(
            DiagnosticKind::kCheckFinding,
            absl::StrFormat("ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 entry "
                            "corrupted",
                            l2));
        ++map.corruptions;
        continue;
      }
      map.Add(l2, cluster_size_, cluster_bits_);
      std::vector<uint8_t> table(cluster_size_);
      if (!file_->node().Pread(l2, cluster_size_, table.data()).ok()) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR: I/O error in check_refcounts_l2"));
        ++r.check_errors;
        continue;
      }
      // Where the next cluster would continue the previous one (0: no previous one).
      uint64_t next_contiguous = 0;
      for (uint64_t j = 0; j < l2_entries_; ++j) {
        const uint64_t raw_entry = LoadBe64(&table[j * l2_entry_bytes_]);
        uint64_t entry = raw_entry;
        if (extended_l2_) {
          // Bit 0 of a standard entry is reserved (not the zero flag); the bitmap must fit
          // the entry.
          entry = NormalizeEntry(entry);
          const uint64_t bitmap = LoadBe64(&table[j * l2_entry_bytes_ + 8]);
          std::string finding;
          if (entry & kOflagCompressed) {
            if (bitmap != 0) {
              finding = absl::StrFormat("ERROR compressed cluster %d with non-zero subcluster "
                                        "allocation bitmap, entry=0x%" PRIx64,
                                        static_cast<int>(j), entry);
            }
          } else if (HasHost(entry)) {
            if ((bitmap >> 32) & bitmap) {
              finding = absl::StrFormat("ERROR offset=%" PRIx64 ": Allocated cluster has "
                                        "corrupted subcluster allocation bitmap",
                                        entry & kL2OffsetMask);
            }
          } else if (bitmap & kL2BitmapAllAlloc) {
            finding = "ERROR: Unallocated cluster has non-zero subcluster allocation map";
          }
          if (!finding.empty()) {
            Diagnose(DiagnosticKind::kCheckFinding, finding);
            ++map.corruptions;
            // QEMU counts no reference for such a compressed cluster.
            if (entry & kOflagCompressed) continue;
          }
        }
        switch (TypeOf(entry)) {
          case ClusterType::kCompressed: {
            const CompressedExtent extent = DecodeCompressed(entry, cluster_bits_);
            if (entry & kOflagCopied) {
              Diagnose(DiagnosticKind::kCheckFinding,
                       absl::StrFormat("ERROR: coffset=0x%" PRIx64
                                       ": copied flag must never be set for compressed clusters",
                                       extent.offset));
              ++map.corruptions;
            }
            if (external_data_) {
              Diagnose(DiagnosticKind::kCheckFinding,
                       absl::StrFormat("ERROR compressed cluster %d with data file, entry=0x%" PRIx64,
                                       static_cast<int>(j), entry));
              ++map.corruptions;
              break;
            }
            map.Add(extent.sector_start(), extent.sectors * 512, cluster_bits_);
            if (active) {
              ++r.allocated_clusters;
              ++r.compressed_clusters;
              ++r.fragmented_clusters;
            }
            break;
          }
          case ClusterType::kNormal:
          case ClusterType::kZeroAlloc: {
            if (raw_entry & kL2StandardReservedMask) {
              Diagnose(DiagnosticKind::kCheckFinding,
                       absl::StrFormat("ERROR found l2 entry with reserved bits set: %" PRIx64,
                                       raw_entry));
              ++map.corruptions;
            }
            uint64_t host = entry & kL2OffsetMask;
            if (host % cluster_size_ != 0) {
              // QEMU's rule: a misaligned cluster that holds no data (a zero cluster, or
              // no allocated subcluster) is repaired into a zero cluster; one with data
              // is reported and still counted.
              const bool holds_data =
                  extended_l2_ ? (LoadBe64(&table[j * l2_entry_bytes_ + 8]) & kL2BitmapAllAlloc) != 0
                               : TypeOf(entry) == ClusterType::kNormal;
              const bool repair = !holds_data && (fix & kCheckFixErrors);
              if (holds_data) {
                Diagnose(DiagnosticKind::kCheckFinding,
                         absl::StrFormat("ERROR offset=%" PRIx64
                                         ": Data cluster is not properly aligned; L2 "
                                         "entry corrupted.",
                                         host));
              } else {
                Diagnose(DiagnosticKind::kCheckFinding,
                         absl::StrFormat("%s offset=%" PRIx64
                                         ": Preallocated cluster is not properly aligned; "
                                         "L2 entry corrupted.",
                                         repair ? "Repairing" : "ERROR", host));
              }
              if (!repair) {
                ++map.corruptions;
              } else {
                absl::StatusOr<uint8_t*> cached = l2_cache_->Get(l2);
                if (!cached.ok()) {
                  ++map.corruptions;
                } else {
                  // The entry becomes a zero cluster (extended: no host offset, the zero
                  // bits of its bitmap stay).
                  StoreBe64(*cached + j * l2_entry_bytes_, extended_l2_ ? 0 : kOflagZero);
                  l2_cache_->MarkDirty(l2);
                  ++r.corruptions_fixed;
                  continue;
                }
              }
            }
            // Data in an external data file is not refcounted by the image.
            if (!external_data_) map.Add(host, cluster_size_, cluster_bits_);
            if (active) {
              ++r.allocated_clusters;
              if (next_contiguous != 0 && host != next_contiguous) ++r.fragmented_clusters;
              next_contiguous = host + cluster_size_;
            }
            break;
          }
          default:
            if (raw_entry & kL2StandardReservedMask & ~kOflagZero) {
              Diagnose(DiagnosticKind::kCheckFinding,
                       absl::StrFormat("ERROR found l2 entry with reserved bits set: %" PRIx64,
                                       raw_entry));
              ++map.corruptions;
            }
            break;
        }
      }
    }
    return absl::OkStatus();
  };

  // Counts every reference into `map` (sized to the file); corruptions found on the way
  // go to `r`, a broken refcount table sets `needs_rebuild`.
  auto count_references = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    STRATA_ASSIGN_OR_RETURN(uint64_t file_length, file_->node().GetLength());
    nb_clusters = DivRoundUp(file_length, cluster_size_);
    map = ReferenceMap();
    // One counter per cluster of the file: a sparse file a hostile image made huge (a
    // write through an L2 entry far past the end) must not become a huge allocation.
    // QEMU fails the check with ENOMEM when its array cannot be had; strata sets the
    // bound itself (1 GiB of counters: 8 TiB of file with 64 KiB clusters).
    constexpr uint64_t kMaxCheckedClusters = uint64_t{1} << 27;
    if (nb_clusters > kMaxCheckedClusters) return ErrnoError(ENOMEM);
    map.refs.assign(nb_clusters, 0);
    map.Add(0, cluster_size_, cluster_bits_);
    STRATA_RETURN_IF_ERROR(walk_l1(header_.l1_table_offset, l1_.size(), true));
    // Snapshots: their table and their L1/L2/data clusters.
    if (header_.nb_snapshots > 0) {
      uint64_t pos = header_.snapshots_offset;
      for (uint32_t i = 0; i < header_.nb_snapshots; ++i) {
        uint8_t fixed[40];
        if (!file_->node().Pread(pos, sizeof(fixed), fixed).ok()) {
          ++r.check_errors;
          break;
        }
        uint64_t l1_offset = LoadBe64(fixed);
        uint32_t l1_size = LoadBe32(fixed + 8);
        uint16_t id_size = LoadBe16(fixed + 12), name_size = LoadBe16(fixed + 14);
        uint32_t extra = LoadBe32(fixed + 36);
        // Named as QEMU names them: id and name from the table parsed at open.
        const std::string id = i < snapshots_.size() ? snapshots_[i].id : "?";
        const std::string name = i < snapshots_.size() ? snapshots_[i].name : "?";
        if (l1_offset % cluster_size_ != 0) {
          Diagnose(DiagnosticKind::kCheckFinding,
                   absl::StrFormat("ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not "
                                   "cluster aligned; snapshot table entry corrupted",
                                   id.c_str(), name.c_str(), l1_offset));
          ++map.corruptions;
        } else if (uint64_t{l1_size} * 8 > kMaxL1Bytes) {
          Diagnose(DiagnosticKind::kCheckFinding,
                   absl::StrFormat("ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too "
                                   "large; snapshot table entry corrupted",
                                   id.c_str(), name.c_str(), l1_size));
          ++map.corruptions;
        } else {
          STRATA_RETURN_IF_ERROR(walk_l1(l1_offset, l1_size, false));
        }
        pos = AlignUp(pos + 40 + extra + id_size + name_size, 8);
      }
      map.Add(header_.snapshots_offset, pos - header_.snapshots_offset, cluster_bits_);
    }
    // The refcount structures themselves.
    const uint64_t reftable_offset = refcounts_->table_offset();
    const uint32_t reftable_clusters = refcounts_->table_clusters();
    map.Add(reftable_offset, uint64_t{reftable_clusters} * cluster_size_, cluster_bits_);
    // The LUKS volume (header and key material) of an encrypted image.
    if (header_.crypt_method == kCryptLuks) {
      if (std::optional<CryptoHeaderExtension> ext = FindCryptoExtension(header_)) {
        map.Add(ext->offset, ext->length, cluster_bits_);
      }
    }
    // Persistent bitmaps: the directory, the tables, the data clusters.
    STRATA_ASSIGN_OR_RETURN(BitmapReferences bitmap_refs, CollectBitmapReferences());
    for (const auto& [offset, bytes] : bitmap_refs.ranges) map.Add(offset, bytes, cluster_bits_);
    map.corruptions += bitmap_refs.corruptions;
    // The refcount blocks last, as QEMU checks them: one that something else also claims
    // (a bitmap table, say) is reported as a refcount block with refcount 2.
    std::vector<uint8_t> reftable(uint64_t{reftable_clusters} * cluster_size_);
    STRATA_RETURN_IF_ERROR(file_->node().Pread(reftable_offset, reftable.size(), reftable.data()));
    for (uint64_t i = 0; i < reftable.size() / 8; ++i) {
      uint64_t e = LoadBe64(&reftable[i * 8]);
      if (e & kReftableReservedMask) {
        Diagnose(
            DiagnosticKind::kCheckFinding,
            absl::StrFormat("ERROR refcount table entry %" PRIu64 " has reserved bits set", i));
        ++map.corruptions;
        needs_rebuild = true;
        continue;
      }
      uint64_t off = e & kReftableOffsetMask;
      if (off == 0) continue;
      if (off % cluster_size_ != 0) {
        Diagnose(DiagnosticKind::kCheckFinding, absl::StrFormat("ERROR refcount block %" PRIu64
                                                                " is not cluster aligned; refcount "
                                                                "table entry corrupted",
                                                                i));
        ++map.corruptions;
        needs_rebuild = true;
        continue;
      }
      if ((off >> cluster_bits_) >= nb_clusters) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR refcount block %" PRIu64 " is outside image", i));
        ++map.corruptions;
        needs_rebuild = true;
        continue;
      }
      map.Add(off, cluster_size_, cluster_bits_);
      // A refcount block must be referenced by the table alone.
      const uint64_t refs = map.refs[off >> cluster_bits_];
      if (refs != 1) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR refcount block %" PRIu64 " refcount=%" PRIu64, i, refs));
        ++map.corruptions;
        needs_rebuild = true;
      }
    }
    r.corruptions += map.corruptions;
    return absl::OkStatus();
  };
  STRATA_RETURN_IF_ERROR(count_references());

  // Compares on-disk refcounts with `map`, fixing what `mask` allows (QEMU's
  // compare_refcounts): an on-disk 0 for a referenced cluster needs a rebuild.
  uint64_t highest = 0;
  std::vector<uint64_t> freed;  // clusters a repair left unreferenced
  auto compare = [&](uint32_t mask) -> absl::Status {
    highest = 0;
    for (uint64_t c = 0; c < nb_clusters; ++c) {
      absl::StatusOr<uint64_t> on_disk = refcounts_->GetRefcount(c);
      if (!on_disk.ok()) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("Can't get refcount for cluster %" PRIu64 ": %s", c,
                                 StrError(ErrnoOf(on_disk.status())).c_str()));
        ++r.check_errors;
        continue;
      }
      uint64_t computed = c < map.refs.size() ? map.refs[c] : 0;
      if (*on_disk > 0 || computed > 0) highest = std::max(highest, c + 1);
      if (*on_disk == computed) continue;
      int64_t* fixed = nullptr;
      if (*on_disk == 0) {
        needs_rebuild = true;
      } else if (*on_disk > computed && (mask & kCheckFixLeaks)) {
        fixed = &r.leaks_fixed;
      } else if (*on_disk < computed && (mask & kCheckFixErrors)) {
        fixed = &r.corruptions_fixed;
      }
      Diagnose(DiagnosticKind::kCheckFinding,
               absl::StrFormat("%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64,
                               fixed ? "Repairing" : (*on_disk < computed ? "ERROR" : "Leaked"), c,
                               *on_disk, computed));
      if (fixed != nullptr &&
          refcounts_->UpdateRefcount(c, static_cast<int64_t>(computed) -
                                            static_cast<int64_t>(*on_disk)).ok()) {
        ++*fixed;
        if (computed == 0) freed.push_back(c);
        continue;
      }
      if (*on_disk < computed) ++r.corruptions; else ++r.leaks;
    }
    return absl::OkStatus();
  };
  const CheckResult before_compare = r;
  STRATA_RETURN_IF_ERROR(compare(0));
  if (needs_rebuild && (fix & kCheckFixErrors)) {
    const CheckResult old = r;
    Diagnose(DiagnosticKind::kCheckFinding, absl::StrFormat("Rebuilding refcount structure"));
    absl::Status rebuilt = RebuildRefcountStructure(map.refs);
    if (!rebuilt.ok()) {
      ++r.check_errors;
      return rebuilt;
    }
    r.corruptions = 0;
    r.leaks = 0;
    needs_rebuild = false;
    // The structure moved: count again (statistics are kept from the first count).
    const CheckResult stats = r;
    STRATA_RETURN_IF_ERROR(count_references());
    r.allocated_clusters = stats.allocated_clusters;
    r.fragmented_clusters = stats.fragmented_clusters;
    r.compressed_clusters = stats.compressed_clusters;
    int64_t fresh_leaks = 0;
    if (fix & kCheckFixLeaks) {
      // The old structure is leaked now; free it. Leaks left were made by the rebuild.
      const CheckResult saved = r;
      r = CheckResult();
      STRATA_RETURN_IF_ERROR(compare(kCheckFixLeaks));
      if (needs_rebuild)
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("ERROR rebuilt refcount structure is still broken"));
      fresh_leaks = r.leaks;
      r = saved;
    }
    if (r.corruptions < old.corruptions) r.corruptions_fixed += old.corruptions - r.corruptions;
    if (r.leaks < old.leaks) r.leaks_fixed += old.leaks - r.leaks;
    r.leaks += fresh_leaks;
  } else if (fix != 0) {
    if (needs_rebuild) {
      Diagnose(DiagnosticKind::kCheckFinding,
               absl::StrFormat("ERROR need to rebuild refcount structures"));
      ++r.check_errors;
      return ErrnoError(EIO);
    }
    if (r.leaks > 0 || r.corruptions > 0) {
      r = before_compare;
      STRATA_RETURN_IF_ERROR(compare(fix));
    }
  }
  STRATA_RETURN_IF_ERROR(refcounts_->Flush());
  if (!freed.empty()) {
    // Like QEMU, hand clusters a repair freed back to the file system (after their
    // refcount is written, so no structure on disk can name them any more).
    STRATA_RETURN_IF_ERROR(file_->node().Flush());
    for (uint64_t c : freed) (void)file_->node().Pdiscard(c << cluster_bits_, cluster_size_);
  }

  // COPIED flags of the active tables against the on-disk refcounts.
  bool fix_copied = (fix & kCheckFixErrors) ||
                    ((fix & kCheckFixLeaks) && r.corruptions == 0 && r.leaks == 0);
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    uint64_t e = l1_[i];
    uint64_t l2 = e & kL1OffsetMask;
    if (l2 == 0 || l2 % cluster_size_ != 0) continue;
    absl::StatusOr<uint64_t> rc = refcounts_->GetRefcount(l2 >> cluster_bits_);
    if (!rc.ok()) continue;
    if (((e & kOflagCopied) != 0) != (*rc == 1)) {
      Diagnose(DiagnosticKind::kCheckFinding,
               absl::StrFormat("%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu64 " l1_entry=%" PRIx64
                               " refcount=%" PRIu64,
                               fix_copied ? "Repairing" : "ERROR", i, e, *rc));
      if (fix_copied) {
        l1_[i] = *rc == 1 ? (e | kOflagCopied) : (e & ~kOflagCopied);
        l1_dirty_ = true;
        ++r.corruptions_fixed;
      } else {
        ++r.corruptions;
      }
    }
    absl::StatusOr<uint8_t*> table = l2_cache_->Get(l2);
    if (!table.ok()) continue;
    for (uint64_t j = 0; j < l2_entries_; ++j) {
      uint64_t entry = LoadBe64(*table + j * l2_entry_bytes_);
      entry = NormalizeEntry(entry);
      ClusterType t = TypeOf(entry);
      if (t != ClusterType::kNormal && t != ClusterType::kZeroAlloc) continue;
      uint64_t host = entry & kL2OffsetMask;
      if (host % cluster_size_ != 0) continue;
      // An external data file's clusters count as referenced once (QEMU's rule).
      absl::StatusOr<uint64_t> drc =
          external_data_ ? absl::StatusOr<uint64_t>(1) : refcounts_->GetRefcount(host >> cluster_bits_);
      if (!drc.ok()) continue;
      if (((entry & kOflagCopied) != 0) != (*drc == 1)) {
        Diagnose(DiagnosticKind::kCheckFinding,
                 absl::StrFormat("%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                                 " refcount=%" PRIu64,
                                 fix_copied ? "Repairing" : "ERROR", entry, *drc));
        if (fix_copied) {
          uint64_t fixed = *drc == 1 ? (entry | kOflagCopied) : (entry & ~kOflagCopied);
          StoreBe64(*table + j * l2_entry_bytes_, fixed);
          l2_cache_->MarkDirty(l2);
          ++r.corruptions_fixed;
        } else {
          ++r.corruptions;
        }
      }
    }
  }
  if (fix != 0) STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  r.image_end_offset = highest * cluster_size_;
  r.total_clusters = DivRoundUp(header_.size, cluster_size_);
  // A repair that left nothing wrong makes the image clean and consistent again.
  if (fix != 0 && r.check_errors == 0 && r.corruptions == 0) {
    refcounts_verified_ = r.leaks == 0;
    STRATA_RETURN_IF_ERROR(MarkClean());
    if (header_.incompatible_features & kIncompatCorrupt) {
      header_.incompatible_features &= ~kIncompatCorrupt;
      STRATA_RETURN_IF_ERROR(WriteHeaderBytes(72, 8));
    }
  }
  return r;
}

}  // namespace strata::qcow2
