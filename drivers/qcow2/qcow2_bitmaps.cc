// strata qcow2: persistent dirty bitmaps (the bitmaps extension), QEMU 7.2's way.
//
// Lifecycle. At open every bitmap of the directory is read into memory (a bitmap found
// "in use" was not stored cleanly: it stays inconsistent, kept on disk as it is, and is
// never used). A read-write open then marks the consistent ones in use on disk (the
// directory rewritten in place, flushed) before any guest write can happen, so a crash
// from now on leaves them inconsistent, never silently stale. Writes, write-zeroes and
// discards mark every enabled bitmap in memory. A clean close stores them: new data
// clusters and tables, then a new directory (flushed with the refcounts that count it),
// then one header write that switches to it; only then are the old clusters freed. A
// crash before the header write leaves the old directory with its in-use flags; after,
// the new one (leaks at worst).
//
// Locking: the bitmap list is guarded by bitmaps_mu_, taken after mu_ (never before), so
// the write paths can mark without mu_.
#include <cerrno>
#include <cinttypes>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/diagnostics.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_bitmap_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

const HeaderExtension* FindExtension(const Qcow2Header& h, uint32_t magic) {
  for (const HeaderExtension& e : h.other_extensions) {
    if (e.magic == magic) return &e;
  }
  return nullptr;
}

}  // namespace

absl::Status Qcow2Instance::ReadZeroPadded(uint64_t offset, uint64_t bytes, uint8_t* out) {
  STRATA_ASSIGN_OR_RETURN(uint64_t length, file_->node().GetLength());
  std::fill(out, out + bytes, 0);
  if (offset >= length) return absl::OkStatus();
  return file_->node().Pread(offset, std::min(bytes, length - offset), out);
}

absl::Status Qcow2Instance::LoadBitmaps(bool load_data) {
  const HeaderExtension* ext = FindExtension(header_, kExtBitmaps);
  if (ext == nullptr) return absl::OkStatus();
  if (header_.version < 3 || !(header_.autoclear_features & kAutoclearBitmaps)) {
    // Someone wrote without maintaining the bitmaps: none can be trusted. A writer drops
    // the extension (its clusters become leaks), as QEMU does.
    Diagnose(DiagnosticKind::kWarning,
             header_.version < 3
                 ? "This qcow2 v2 image contains bitmaps, but they may have been modified by a "
                   "program without persistent bitmap support; so now they must all be "
                   "considered inconsistent"
                 : "a program lacking bitmap support modified this file, so all bitmaps are "
                   "now considered inconsistent");
    Diagnose(DiagnosticKind::kContinuation,
             "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.");
    if (!read_only_) {
      std::vector<HeaderExtension> kept;
      for (HeaderExtension& e : header_.other_extensions) {
        if (e.magic != kExtBitmaps) kept.push_back(std::move(e));
      }
      header_.other_extensions = std::move(kept);
      STRATA_RETURN_IF_ERROR(RewriteHeader());
    }
    return absl::OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(bitmaps_ext_, ParseBitmapsExtension(ext->data, cluster_bits_));
  std::vector<uint8_t> dir(bitmaps_ext_.directory_size);
  STRATA_RETURN_IF_ERROR(ReadZeroPadded(bitmaps_ext_.directory_offset, dir.size(), dir.data()));
  STRATA_ASSIGN_OR_RETURN(std::vector<BitmapDirectoryEntry> entries,
                          ParseBitmapDirectory(dir, bitmaps_ext_.nb_bitmaps, cluster_bits_, header_.size));
  std::vector<PersistentBitmap> loaded;
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (entries[j].name == entries[i].name) {
        return ErrnoError(EINVAL, absl::StrCat("Bitmap already exists: ", entries[i].name));
      }
    }
  }
  for (BitmapDirectoryEntry& e : entries) {
    PersistentBitmap bm;
    bm.entry = std::move(e);
    bm.on_disk = true;
    bm.enabled = bm.entry.enabled();
    if (!bm.entry.in_use() && load_data) {
      STRATA_ASSIGN_OR_RETURN(bm.bits, ReadBitmapData(bm.entry));
    }
    loaded.push_back(std::move(bm));
  }
  {
    absl::MutexLock lock(&bitmaps_mu_);
    bitmaps_ = std::move(loaded);
    UpdateTracking();
  }
  if (read_only_ || !load_data) return absl::OkStatus();
  // Mark the consistent ones in use before the first write can reach the image.
  bool changed = false;
  std::vector<BitmapDirectoryEntry> on_disk;
  {
    absl::MutexLock lock(&bitmaps_mu_);
    for (PersistentBitmap& bm : bitmaps_) {
      if (bm.bits && !bm.entry.in_use()) {
        bm.entry.flags |= kBitmapInUse;
        changed = true;
      }
      on_disk.push_back(bm.entry);
    }
  }
  if (!changed) return absl::OkStatus();
  const std::vector<uint8_t> bytes = SerializeBitmapDirectory(on_disk);
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(bitmaps_ext_.directory_offset, bytes.size(),
                                              bytes.data()));
  return file_->node().Flush();
}

absl::StatusOr<std::vector<uint64_t>> Qcow2Instance::ReadBitmapTable(
    const BitmapDirectoryEntry& e) {
  std::vector<uint8_t> raw(uint64_t{e.table_size} * 8);
  absl::Status s = ReadZeroPadded(e.table_offset, raw.size(), raw.data());
  std::vector<uint64_t> table(e.table_size);
  for (uint32_t i = 0; s.ok() && i < e.table_size; ++i) {
    table[i] = LoadBe64(&raw[i * 8]);
    s = CheckBitmapTableEntry(table[i], cluster_bits_);
  }
  if (!s.ok()) {
    return Prefixed(absl::StrCat("Could not read bitmap_table table from image for bitmap '",
                                 e.name, "'"),
                    ErrnoError(ErrnoOf(s)));
  }
  return table;
}

absl::StatusOr<std::unique_ptr<DirtyBitmap>> Qcow2Instance::ReadBitmapData(
    const BitmapDirectoryEntry& e) {
  STRATA_ASSIGN_OR_RETURN(std::vector<uint64_t> table, ReadBitmapTable(e));
  auto bits = std::make_unique<DirtyBitmap>(header_.size, e.granularity());
  if (BitmapTableEntries(header_.size, e.granularity(), cluster_bits_) != e.table_size) {
    return ErrnoError(EINVAL, absl::StrCat("Could not read bitmap '", e.name,
                                           "' from image: Invalid argument"));
  }
  const uint64_t per_cluster = cluster_size_ * 8;  // granules one data cluster holds
  std::vector<uint8_t> buf(cluster_size_);
  for (uint64_t i = 0; i < table.size(); ++i) {
    const uint64_t offset = table[i] & kBitmapTableOffsetMask;
    if (offset == 0) {
      if (table[i] & kBitmapTableAllOnes) bits->SetGranules(i * per_cluster, per_cluster);
      continue;
    }
    absl::Status s = ReadZeroPadded(offset, cluster_size_, buf.data());
    if (!s.ok()) {
      return Prefixed(absl::StrCat("Could not read bitmap '", e.name, "' from image"), s);
    }
    bits->Deserialize(i * per_cluster, per_cluster, buf.data());
  }
  return bits;
}

void Qcow2Instance::UpdateTracking() {
  bool any = false;
  for (const PersistentBitmap& bm : bitmaps_) any |= bm.enabled && bm.bits != nullptr;
  tracking_.store(any, std::memory_order_release);
}

void Qcow2Instance::MarkBitmapsDirty(uint64_t offset, uint64_t bytes) {
  if (!tracking_.load(std::memory_order_acquire)) return;
  absl::MutexLock lock(&bitmaps_mu_);
  for (PersistentBitmap& bm : bitmaps_) {
    if (bm.enabled && bm.bits) bm.bits->SetRange(offset, bytes);
  }
}

void Qcow2Instance::ResizeBitmaps(uint64_t size) {
  absl::MutexLock lock(&bitmaps_mu_);
  for (PersistentBitmap& bm : bitmaps_) {
    if (bm.bits) bm.bits->Resize(size);
  }
}

absl::Status Qcow2Instance::FreeBitmapMetadata(uint64_t offset, uint64_t count) {
  for (uint64_t c = offset >> cluster_bits_; c < (offset >> cluster_bits_) + count; ++c) {
    STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(c << cluster_bits_, 1));
    // QEMU discards freed bitmap clusters in the file at once (its "always" discard
    // type); a failed discard only leaves the space allocated. A cluster something else
    // still counts (a damaged image's sharing) keeps its bytes.
    STRATA_ASSIGN_OR_RETURN(uint64_t left, refcounts_->GetRefcount(c));
    if (left == 0) (void)file_->node().Pdiscard(c << cluster_bits_, cluster_size_);
  }
  return absl::OkStatus();
}

std::vector<Qcow2Instance::BitmapTable> Qcow2Instance::ReadBitmapTables(
    const std::vector<BitmapDirectoryEntry>& entries) {
  std::vector<BitmapTable> tables;
  for (const BitmapDirectoryEntry& e : entries) {
    if (e.table_offset == 0) continue;
    absl::StatusOr<std::vector<uint64_t>> table = ReadBitmapTable(e);
    if (table.ok()) tables.push_back({e, *std::move(table)});
  }
  return tables;
}

absl::Status Qcow2Instance::FreeBitmapClusters(const std::vector<BitmapTable>& tables) {
  // A table that no longer reads as one (a hostile image, or clusters reused since) frees
  // nothing: leaking is safe, freeing what something else owns is not. For the same
  // reason a cluster that holds other metadata is never freed. Only when a repair has
  // made the refcounts exact in this open is the bitmap's own reference to such a
  // cluster known to be counted: then it is dropped (the other owner's stays).
  auto free_unless_metadata = [&](uint64_t offset, uint64_t count)
                                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (!OverlapsMetadata(offset, count * cluster_size_, 0)) {
      // Two damaged bitmaps may name one cluster that was counted once: the second free
      // finds it free already. QEMU's refcount update refuses it (with this message) and
      // the close goes on, freeing the rest.
      // A cluster so far out that its refcount block would need a refcount table over
      // QEMU's limit fails as "File too large" there.
      const uint64_t block_entries = cluster_size_ * 8 >> header_.refcount_order;
      const uint64_t last = (offset >> cluster_bits_) + count - 1;
      if (last / block_entries >= kMaxReftableBytes / 8) {
        Diagnose(DiagnosticKind::kCorruption, "qcow2_free_clusters failed: File too large");
        return absl::OkStatus();
      }
      for (uint64_t i = 0; i < count; ++i) {
        STRATA_ASSIGN_OR_RETURN(uint64_t refcount,
                                refcounts_->GetRefcount((offset >> cluster_bits_) + i));
        if (refcount == 0) {
          Diagnose(DiagnosticKind::kCorruption, "qcow2_free_clusters failed: Invalid argument");
          return absl::OkStatus();
        }
      }
      return FreeBitmapMetadata(offset, count);
    }
    if (!refcounts_verified_) return absl::OkStatus();
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t cluster = (offset >> cluster_bits_) + i;
      STRATA_ASSIGN_OR_RETURN(uint64_t refcount, refcounts_->GetRefcount(cluster));
      if (refcount >= 2) {
        STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(cluster << cluster_bits_, 1));
      }
    }
    return absl::OkStatus();
  };
  for (const BitmapTable& t : tables) {
    for (uint64_t entry : t.entries) {
      const uint64_t offset = entry & kBitmapTableOffsetMask;
      if (offset != 0) STRATA_RETURN_IF_ERROR(free_unless_metadata(offset, 1));
    }
    STRATA_RETURN_IF_ERROR(free_unless_metadata(
        t.entry.table_offset, DivRoundUp(uint64_t{t.entry.table_size} * 8, cluster_size_)));
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::WriteBitmapDirectory(
    const std::vector<BitmapDirectoryEntry>& entries) {
  const BitmapsExtension old = bitmaps_ext_;
  BitmapsExtension next;
  if (!entries.empty()) {
    const std::vector<uint8_t> bytes = SerializeBitmapDirectory(entries);
    const uint64_t clusters = DivRoundUp(bytes.size(), cluster_size_);
    STRATA_ASSIGN_OR_RETURN(next.directory_offset, refcounts_->AllocateClusters(clusters));
    next.nb_bitmaps = static_cast<uint32_t>(entries.size());
    next.directory_size = bytes.size();
    // The directory and everything it names, and the refcounts counting them, are stable
    // before the header points at it.
    STRATA_RETURN_IF_ERROR(CheckMetadataOverlap(next.directory_offset, bytes.size(), 0));
    STRATA_RETURN_IF_ERROR(file_->node().Pwrite(next.directory_offset, bytes.size(),
                                                bytes.data()));
    STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
    STRATA_RETURN_IF_ERROR(file_->node().Flush());
  }
  std::vector<HeaderExtension> exts;
  bool placed = false;
  for (HeaderExtension& e : header_.other_extensions) {
    if (e.magic != kExtBitmaps) {
      exts.push_back(std::move(e));
    } else if (!entries.empty()) {
      exts.push_back({kExtBitmaps, SerializeBitmapsExtension(next)});
      placed = true;
    }
  }
  if (!entries.empty() && !placed) exts.push_back({kExtBitmaps, SerializeBitmapsExtension(next)});
  header_.other_extensions = std::move(exts);
  if (entries.empty()) {
    header_.autoclear_features &= ~kAutoclearBitmaps;
  } else {
    header_.autoclear_features |= kAutoclearBitmaps;
  }
  bitmaps_ext_ = next;
  STRATA_RETURN_IF_ERROR(RewriteHeader());
  if (old.directory_offset != 0) {
    STRATA_RETURN_IF_ERROR(FreeBitmapMetadata(
        old.directory_offset, DivRoundUp(old.directory_size, cluster_size_)));
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::StoreBitmaps() {
  std::vector<BitmapDirectoryEntry> entries, replaced;
  bool any_stored = false;
  {
    absl::MutexLock lock(&bitmaps_mu_);
    if (bitmaps_.empty() && bitmaps_ext_.nb_bitmaps == 0) return absl::OkStatus();
  }
  // Frees still deferred and clusters counted ahead of use go back first, so the
  // bitmaps land where QEMU's first-fit allocation puts them.
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  STRATA_RETURN_IF_ERROR(refcounts_->ReleasePool());
  {
    absl::MutexLock lock(&bitmaps_mu_);
    // QEMU's order: the directory's bitmaps where they were, then the ones added since,
    // the last added first (its bitmap list takes new ones at its head).
    std::vector<PersistentBitmap> ordered;
    for (PersistentBitmap& bm : bitmaps_) {
      if (bm.on_disk) ordered.push_back(std::move(bm));
    }
    for (auto it = bitmaps_.rbegin(); it != bitmaps_.rend(); ++it) {
      if (!it->on_disk && it->bits) ordered.push_back(std::move(*it));
    }
    bitmaps_ = std::move(ordered);
    for (PersistentBitmap& bm : bitmaps_) {
      if (!bm.bits) {  // inconsistent: kept as found
        entries.push_back(bm.entry);
        continue;
      }
      BitmapDirectoryEntry e = bm.entry;
      if (bm.on_disk) replaced.push_back(bm.entry);
      const uint64_t n = BitmapTableEntries(header_.size, e.granularity(), cluster_bits_);
      // A zero-length disk has no bitmap table, and an entry without one breaks QEMU's
      // constraints: QEMU stores nothing then (its empty table allocation fails).
      if (n == 0) return ErrnoError(ENOMEM, "No memory");
      const uint64_t per_cluster = cluster_size_ * 8;
      std::vector<uint8_t> table(n * 8, 0);
      for (uint64_t i = 0; i < n; ++i) {
        if (bm.bits->GranulesClean(i * per_cluster, per_cluster)) continue;
        std::vector<uint8_t> data;
        data.reserve(cluster_size_);
        bm.bits->Serialize(i * per_cluster, per_cluster, &data);
        STRATA_ASSIGN_OR_RETURN(uint64_t offset, refcounts_->AllocateClusters(1));
        STRATA_RETURN_IF_ERROR(CheckMetadataOverlap(offset, cluster_size_, 0));
        STRATA_RETURN_IF_ERROR(file_->node().Pwrite(offset, data.size(), data.data()));
        StoreBe64(&table[i * 8], offset);
      }
      e.table_offset = 0;
      if (n > 0) {
        STRATA_ASSIGN_OR_RETURN(e.table_offset,
                                refcounts_->AllocateClusters(DivRoundUp(n * 8, cluster_size_)));
        STRATA_RETURN_IF_ERROR(CheckMetadataOverlap(e.table_offset, table.size(), 0));
        STRATA_RETURN_IF_ERROR(file_->node().Pwrite(e.table_offset, table.size(), table.data()));
      }
      e.table_size = static_cast<uint32_t>(n);
      e.flags = bm.enabled ? kBitmapAuto : 0;
      entries.push_back(e);
      any_stored = true;
    }
  }
  if (!any_stored && entries.size() == bitmaps_ext_.nb_bitmaps) {
    return absl::OkStatus();  // only inconsistent bitmaps, unchanged
  }
  // The old tables are read while the old directory still stands: switching to the new
  // one frees (and discards) the old directory's clusters, which a damaged table may name.
  const std::vector<BitmapTable> old_tables = ReadBitmapTables(replaced);
  STRATA_RETURN_IF_ERROR(WriteBitmapDirectory(entries));
  STRATA_RETURN_IF_ERROR(FreeBitmapClusters(old_tables));
  absl::MutexLock lock(&bitmaps_mu_);
  for (size_t i = 0; i < bitmaps_.size(); ++i) {
    bitmaps_[i].entry = entries[i];
    bitmaps_[i].on_disk = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<Qcow2Instance::BitmapReferences> Qcow2Instance::CollectBitmapReferences() {
  BitmapReferences refs;
  if (bitmaps_ext_.nb_bitmaps == 0) return refs;
  refs.ranges.push_back({bitmaps_ext_.directory_offset, bitmaps_ext_.directory_size});
  std::vector<uint8_t> dir(bitmaps_ext_.directory_size);
  STRATA_RETURN_IF_ERROR(ReadZeroPadded(bitmaps_ext_.directory_offset, dir.size(), dir.data()));
  absl::StatusOr<std::vector<BitmapDirectoryEntry>> entries =
      ParseBitmapDirectory(dir, bitmaps_ext_.nb_bitmaps, cluster_bits_, header_.size);
  if (!entries.ok()) {
    ++refs.corruptions;
    return refs;
  }
  for (const BitmapDirectoryEntry& e : *entries) {
    if (e.table_offset == 0) continue;
    refs.ranges.push_back({e.table_offset, uint64_t{e.table_size} * 8});
    std::vector<uint8_t> raw(uint64_t{e.table_size} * 8);
    if (!ReadZeroPadded(e.table_offset, raw.size(), raw.data()).ok()) {
      ++refs.corruptions;
      break;
    }
    for (uint32_t i = 0; i < e.table_size; ++i) {
      const uint64_t entry = LoadBe64(&raw[i * 8]);
      if (!CheckBitmapTableEntry(entry, cluster_bits_).ok()) {
        ++refs.corruptions;
        continue;
      }
      const uint64_t offset = entry & kBitmapTableOffsetMask;
      if (offset != 0) refs.ranges.push_back({offset, cluster_size_});
    }
  }
  return refs;
}

// --- The operations of `qemu-img bitmap` and the embedder's bitmap API ---

Qcow2Instance::PersistentBitmap* Qcow2Instance::FindBitmap(const std::string& name) {
  for (PersistentBitmap& bm : bitmaps_) {
    if (bm.entry.name == name) return &bm;
  }
  return nullptr;
}

std::vector<DirtyBitmapInfo> Qcow2Instance::ListDirtyBitmaps() {
  absl::MutexLock lock(&bitmaps_mu_);
  std::vector<DirtyBitmapInfo> out;
  for (const PersistentBitmap& bm : bitmaps_) {
    if (!bm.on_disk) continue;  // QEMU lists what the image holds
    DirtyBitmapInfo info;
    info.name = bm.entry.name;
    info.granularity = bm.entry.granularity();
    info.in_use = bm.entry.in_use();
    info.enabled = bm.entry.enabled();
    info.inconsistent = bm.bits == nullptr;
    out.push_back(std::move(info));
  }
  return out;
}

absl::Status Qcow2Instance::AddDirtyBitmap(const std::string& name, uint64_t granularity,
                                           bool enabled, absl::string_view node_label) {
  aio::CoMutexLock lock(&mu_);
  absl::MutexLock bitmaps_lock(&bitmaps_mu_);
  if (FindBitmap(name) != nullptr) {
    return ErrnoError(EEXIST, absl::StrCat("Bitmap already exists: ", name));
  }
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  auto refuse = [&](absl::string_view why) {
    return ErrnoError(EINVAL, absl::StrCat("Can't make bitmap '", name, "' persistent in '",
                                           node_label, "': ", why));
  };
  if (header_.version < 3) return refuse("Cannot store dirty bitmaps in qcow2 v2 files");
  if (name.size() > kMaxBitmapNameSize) {
    return refuse("Name length exceeds maximum (1023 characters)");
  }
  const uint64_t table = BitmapTableEntries(header_.size, granularity, cluster_bits_);
  if (table > kMaxBitmapTableSize || table * cluster_size_ > kMaxBitmapPhysSize) {
    return refuse("Too much space will be occupied by the bitmap. Use larger granularity");
  }
  uint64_t dir_size = 0;
  for (const PersistentBitmap& bm : bitmaps_) {
    dir_size += BitmapDirectoryEntrySize(bm.entry.name.size(), bm.entry.extra_data.size());
  }
  if (bitmaps_.size() >= kMaxBitmaps) {
    return refuse("Maximum number of persistent bitmaps is already reached");
  }
  if (dir_size + BitmapDirectoryEntrySize(name.size(), 0) > kMaxBitmapDirectorySize) {
    return refuse("Not enough space in the bitmap directory");
  }
  PersistentBitmap bm;
  bm.entry.name = name;
  bm.entry.granularity_bits = static_cast<uint8_t>(std::countr_zero(granularity));
  bm.entry.flags = enabled ? kBitmapAuto : 0;
  bm.enabled = enabled;
  bm.bits = std::make_unique<DirtyBitmap>(header_.size, granularity);
  bitmaps_.push_back(std::move(bm));
  UpdateTracking();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::RemoveDirtyBitmap(const std::string& name) {
  aio::CoMutexLock lock(&mu_);
  std::vector<BitmapDirectoryEntry> remaining;
  BitmapDirectoryEntry removed;
  bool was_on_disk = false;
  {
    absl::MutexLock bitmaps_lock(&bitmaps_mu_);
    PersistentBitmap* bm = FindBitmap(name);
    if (bm == nullptr) return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
    if (read_only_) return ErrnoError(EACCES, "Image is read-only");
    removed = bm->entry;
    was_on_disk = bm->on_disk;
    bitmaps_.erase(bitmaps_.begin() + (bm - bitmaps_.data()));
    UpdateTracking();
    for (const PersistentBitmap& other : bitmaps_) {
      if (other.on_disk) remaining.push_back(other.entry);
    }
  }
  if (!was_on_disk) return absl::OkStatus();
  // As QEMU: the directory without it at once, then its clusters freed.
  const std::vector<BitmapTable> old_tables = ReadBitmapTables({removed});
  STRATA_RETURN_IF_ERROR(WriteBitmapDirectory(remaining));
  return FreeBitmapClusters(old_tables);
}

namespace {

absl::Status Inconsistent(const std::string& name) {
  return ErrnoError(EINVAL, absl::StrCat("Bitmap '", name,
                                         "' is inconsistent and cannot be used\nTry "
                                         "block-dirty-bitmap-remove to delete this bitmap from "
                                         "disk"));
}

}  // namespace

absl::Status Qcow2Instance::ClearDirtyBitmap(const std::string& name) {
  absl::MutexLock lock(&bitmaps_mu_);
  PersistentBitmap* bm = FindBitmap(name);
  if (bm == nullptr) return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
  if (!bm->bits) return Inconsistent(name);
  if (read_only_) return ErrnoError(EPERM, absl::StrCat("Bitmap '", name, "' is readonly and cannot be modified"));
  bm->bits->Clear();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::SetDirtyBitmapEnabled(const std::string& name, bool enabled) {
  absl::MutexLock lock(&bitmaps_mu_);
  PersistentBitmap* bm = FindBitmap(name);
  if (bm == nullptr) return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
  if (!bm->bits) return Inconsistent(name);
  if (read_only_) return ErrnoError(EPERM, absl::StrCat("Bitmap '", name, "' is readonly and cannot be modified"));
  bm->enabled = enabled;
  UpdateTracking();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::MergeDirtyBitmap(const std::string& target, const DirtyBitmap& source) {
  absl::MutexLock lock(&bitmaps_mu_);
  PersistentBitmap* bm = FindBitmap(target);
  if (bm == nullptr) {
    return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", target, "' not found"));
  }
  if (!bm->bits) return Inconsistent(target);
  if (read_only_) return ErrnoError(EPERM, absl::StrCat("Bitmap '", target, "' is readonly and cannot be modified"));
  if (source.size() != bm->bits->size()) {
    return ErrnoError(EINVAL, absl::StrFormat("Bitmaps are of different sizes (destination size "
                                              "is %u, source size is %u) and can't be merged",
                                              bm->bits->size(), source.size()));
  }
  bm->bits->Merge(source);
  return absl::OkStatus();
}

absl::StatusOr<DirtyBitmap> Qcow2Instance::GetDirtyBitmap(const std::string& name) {
  absl::MutexLock lock(&bitmaps_mu_);
  PersistentBitmap* bm = FindBitmap(name);
  if (bm == nullptr) return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
  if (!bm->bits) return Inconsistent(name);
  return *bm->bits;
}

absl::StatusOr<std::vector<DriverInstance::DirtyRun>> Qcow2Instance::GetDirtyRuns(
    const std::string& name, uint64_t offset, uint64_t length, size_t max_runs) {
  absl::MutexLock lock(&bitmaps_mu_);
  PersistentBitmap* bm = FindBitmap(name);
  if (bm == nullptr) return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
  if (!bm->bits) return Inconsistent(name);
  std::vector<DirtyRun> runs;
  const uint64_t end = std::min(offset + length, bm->bits->size());
  while (offset < end && runs.size() < max_runs) {
    bool dirty = false;
    const uint64_t n = bm->bits->RunAt(offset, end - offset, &dirty);
    runs.push_back({n, dirty});
    offset += n;
  }
  return runs;
}

}  // namespace strata::qcow2
