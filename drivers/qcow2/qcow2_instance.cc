// strata qcow2: the open image (see qcow2_instance.h).
#include "drivers/qcow2/qcow2_instance.h"


#include <cerrno>
#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "aio/run_sync.h"
#include "block/diagnostics.h"
#include "block/graph_builder.h"
#include "block/node_filename.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "drivers/qcow2/qcow2_cache_cleaner.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_compression.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {

Qcow2Instance::Qcow2Instance(BdrvChild* file, Qcow2Header header, bool read_only)
    : file_(file),
      data_file_(file),
      read_only_(read_only),
      cluster_bits_(header.cluster_bits),
      cluster_size_(header.cluster_size()),
      extended_l2_(header.extended_l2()),
      l2_entry_bytes_(header.l2_entry_bytes()),
      l2_entries_(header.cluster_size() / header.l2_entry_bytes()),
      subcluster_bits_(header.extended_l2() ? header.cluster_bits - 5 : header.cluster_bits),
      subcluster_size_(uint64_t{1} << subcluster_bits_),
      version_(header.version),
      compression_type_(header.compression_type),
      header_(std::move(header)) {
  size_.store(header_.size);
}

absl::StatusOr<std::unique_ptr<Qcow2Instance>> Qcow2Instance::Open(OpenContext& ctx,
                                                                   BdrvChild* file) {
  const OpenFlags& flags = ctx.flags();
  STRATA_ASSIGN_OR_RETURN(uint64_t file_length, file->node().GetLength());
  // Cluster 0 holds the header and its extensions: read the fixed fields to learn the
  // cluster size, then just that cluster (the parser rejects bad sizes itself).
  std::vector<uint8_t> buf(std::min<uint64_t>(file_length, kV3HeaderBytes));
  absl::Status read = file->node().Pread(0, buf.size(), buf.data());
  if (!read.ok()) return Prefixed("Could not read qcow2 header", ErrnoError(ErrnoOf(read)));
  if (buf.size() >= kV2HeaderBytes) {
    uint32_t bits = LoadBe32(&buf[20]);
    if (bits >= kMinClusterBits && bits <= kMaxClusterBits) {
      buf.resize(std::min<uint64_t>(file_length, uint64_t{1} << bits));
      STRATA_RETURN_IF_ERROR(file->node().Pread(0, buf.size(), buf.data()));
    }
  }
  STRATA_ASSIGN_OR_RETURN(Qcow2Header header, ParseHeader(buf, file_length));
  // QEMU's limit for any node: INT64_MAX rounded down to its largest alignment (1 GiB).
  constexpr uint64_t kMaxNodeLength = (uint64_t{INT64_MAX} >> 30) << 30;
  if (header.size > kMaxNodeLength) {
    return ErrnoError(EFBIG, "Could not refresh total sector count: File too large");
  }
  if (!flags.read_only && !flags.check_mode && (header.incompatible_features & kIncompatCorrupt)) {
    return ErrnoError(EACCES, "qcow2: Image is corrupt; cannot be opened read/write");
  }
  const proto::Qcow2Options& qopts = ctx.options().qcow2();
  std::unique_ptr<Qcow2Crypto> crypto;
  if (header.crypt_method != kCryptNone) {
    STRATA_ASSIGN_OR_RETURN(crypto,
                            Qcow2Crypto::Open(header, qopts.encrypt(), flags.no_io, file->node()));
  } else if (!qopts.encrypt().format().empty()) {
    return ErrnoError(EINVAL, absl::StrCat("No encryption in image header, but options "
                                           "specified format '",
                                           qopts.encrypt().format(), "'"));
  }
  bool lazy = (header.compatible_features & kCompatLazyRefcounts) != 0;
  if (qopts.has_lazy_refcounts()) lazy = qopts.lazy_refcounts();
  if (lazy && header.version < 3) {
    return ErrnoError(EINVAL, "Lazy refcounts require a qcow2 image with at least qemu 1.1 "
                              "compatibility level");
  }
  auto inst = std::unique_ptr<Qcow2Instance>(
      new Qcow2Instance(file, std::move(header), flags.read_only));
  aio::CoMutexLock lock(&inst->mu_);
  inst->node_ = &ctx.node();
  inst->crypto_ = std::move(crypto);
  inst->lazy_refcounts_ = lazy;
  inst->pass_discard_request_ =
      qopts.has_pass_discard_request() ? qopts.pass_discard_request() : flags.discard_unmap;
  if (qopts.has_pass_discard_snapshot()) {
    inst->pass_discard_snapshot_ = qopts.pass_discard_snapshot();
  }
  if (qopts.has_pass_discard_other()) inst->pass_discard_other_ = qopts.pass_discard_other();
  Qcow2Header& h = inst->header_;
  CacheSizeOptions cache_options;
  if (qopts.has_l2_cache_size()) cache_options.l2_cache_size = qopts.l2_cache_size();
  if (qopts.has_refcount_cache_size()) {
    cache_options.refcount_cache_size = qopts.refcount_cache_size();
  }
  if (qopts.has_cache_size()) cache_options.cache_size = qopts.cache_size();
  if (qopts.has_l2_cache_entry_size()) {
    // Checked as QEMU checks it; strata's cache entries stay whole L2 tables.
    const uint64_t entry = qopts.l2_cache_entry_size();
    if (entry < 512 || entry > inst->cluster_size_ || (entry & (entry - 1)) != 0) {
      return ErrnoError(EINVAL, absl::StrCat("L2 cache entry size must be a power of two "
                                             "between 512 and the cluster size (",
                                             inst->cluster_size_, ")"));
    }
  }
  STRATA_ASSIGN_OR_RETURN(inst->cache_sizes_,
                          ComputeCacheSizes(cache_options, h.size, inst->cluster_size_,
                                            inst->l2_entry_bytes_));
  inst->l2_cache_ = std::make_unique<Qcow2TableCache>(
      file, inst->cluster_size_, inst->cache_sizes_.l2_tables, DebugEvent::kL2Load,
      DebugEvent::kL2Update);
  // overlap-check as an object: its template, then each structure switched on or off.
  const proto::Qcow2OverlapCheckFlags& oflags = qopts.overlap_check_flags();
  const std::string& overlap =
      qopts.has_overlap_check_flags() ? oflags.template_() : qopts.overlap_check();
  if (overlap == "none") {
    inst->overlap_ignore_ = ~uint32_t{0};
  } else if (overlap == "constant") {
    inst->overlap_ignore_ = MetadataOverlapIndex::kActiveL2 |
                            MetadataOverlapIndex::kRefcountBlock |
                            MetadataOverlapIndex::kInactiveL1;
  } else if (!overlap.empty() && overlap != "cached" && overlap != "all") {
    return ErrnoError(EINVAL, absl::StrCat("Unsupported value '", overlap,
                                           "' for qcow2 option 'overlap-check'. Allowed are any "
                                           "of the following: none, constant, cached, all"));
  }
  if (qopts.has_overlap_check_flags()) {
    using K = MetadataOverlapIndex;
    struct Switch {
      bool given, on;
      uint32_t kind;
    };
    const Switch switches[] = {
        {oflags.has_main_header(), oflags.main_header(), K::kMainHeader},
        {oflags.has_active_l1(), oflags.active_l1(), K::kActiveL1},
        {oflags.has_active_l2(), oflags.active_l2(), K::kActiveL2},
        {oflags.has_refcount_table(), oflags.refcount_table(), K::kRefcountTable},
        {oflags.has_refcount_block(), oflags.refcount_block(), K::kRefcountBlock},
        {oflags.has_snapshot_table(), oflags.snapshot_table(), K::kSnapshotTable},
        {oflags.has_inactive_l1(), oflags.inactive_l1(), K::kInactiveL1},
        {oflags.has_bitmap_directory(), oflags.bitmap_directory(), K::kBitmapDirectory},
    };
    for (const Switch& sw : switches) {
      if (!sw.given) continue;
      if (sw.on) {
        inst->overlap_ignore_ &= ~sw.kind;
      } else {
        inst->overlap_ignore_ |= sw.kind;
      }
    }
  }
  Qcow2Instance* self = inst.get();
  inst->l2_cache_->set_write_check([self](uint64_t offset) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // Data reaches an external data file before any table that links it (within one
    // file, the caller's flush order does this).
    if (self->external_data_) STRATA_RETURN_IF_ERROR(self->data_file_->node().Flush());
    self->NoteUncountedWrite(offset + self->cluster_size_);
    return self->CheckMetadataOverlap(offset, self->cluster_size_,
                                      self->overlap_ignore_ | MetadataOverlapIndex::kActiveL2);
  });
  inst->refcounts_ = inst->NewRefcounts(h.refcount_order);
  STRATA_RETURN_IF_ERROR(
      inst->refcounts_->Load(h.refcount_table_offset, h.refcount_table_clusters, file_length));
  if (!flags.read_only) {
    inst->tail_reserve_ = std::make_unique<FileTailReservation>(file, file_length);
  }
  inst->l1_.assign(h.l1_size, 0);
  if (h.l1_size > 0) {
    std::vector<uint8_t> raw(uint64_t{h.l1_size} * 8);
    STRATA_RETURN_IF_ERROR(file->node().Pread(h.l1_table_offset, raw.size(), raw.data()));
    for (uint32_t i = 0; i < h.l1_size; ++i) inst->l1_[i] = LoadBe64(&raw[i * 8]);
  }
  STRATA_RETURN_IF_ERROR(inst->OpenDataFile(ctx));
  absl::Status snapshots = inst->LoadSnapshots();
  if (!snapshots.ok() && !flags.check_mode) return snapshots;
  // Persistent bitmaps: read, and (writable) marked in use before any write.
  STRATA_RETURN_IF_ERROR(inst->LoadBitmaps(/*load_data=*/true));
  // A writer clears autoclear bits it does not understand (QEMU does the same).
  if (!flags.read_only && (h.autoclear_features & ~kAutoclearKeptByWriters) && h.version >= 3) {
    h.autoclear_features &= kAutoclearKeptByWriters;
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> cluster0, SerializeHeader(h));
    STRATA_RETURN_IF_ERROR(file->node().Pwrite(0, cluster0.size(), cluster0.data()));
    STRATA_RETURN_IF_ERROR(file->node().Flush());
  }
  // The backing chain.
  const proto::Qcow2Options& opts = ctx.options().qcow2();
  if (!flags.no_backing) {
    OpenFlags backing_flags = flags;
    backing_flags.read_only = true;
    if (opts.backing().kind_case() == proto::BlockdevRef::kNone) {
      // Explicitly no backing file.
    } else if (opts.backing().kind_case() != proto::BlockdevRef::KIND_NOT_SET) {
      STRATA_ASSIGN_OR_RETURN(inst->backing_,
                              ctx.OpenChild("backing", ChildRole::kBacking, opts.backing(),
                                            FormatChildPermissions(true), backing_flags));
    } else if (!h.backing_file.empty()) {
      STRATA_ASSIGN_OR_RETURN(const std::string path,
                              FullBackingFilename(file->node(), h.backing_file));
      backing_flags.images_above.push_back(ImageIdentity(file->node().filename()));
      const std::string canonical = ImageIdentity(path);
      if (std::find(backing_flags.images_above.begin(), backing_flags.images_above.end(),
                    canonical) != backing_flags.images_above.end()) {
        return ErrnoError(ELOOP, absl::StrCat("Backing file '", h.backing_file,
                                              "' creates an infinite loop"));
      }
      proto::BlockdevRef ref;
      if (!h.backing_format.empty() && DriverRegistry::Global().Find(h.backing_format) == nullptr) {
        // Never probe instead: the image said what its backing file is.
        return ErrnoError(EINVAL, absl::StrCat("Could not open backing file: Unknown driver '",
                                               h.backing_format, "'"));
      }
      if (absl::StartsWith(path, "json:")) {
        ref.set_reference(path);  // the options name their own driver
      } else if (!h.backing_format.empty()) {
        proto::BlockdevOptions* o = ref.mutable_options();
        o->set_driver(h.backing_format);
        // Only format drivers take a `file` child; others would need their own options.
        proto::BlockdevOptions* f = nullptr;
        if (h.backing_format == "qcow2") f = o->mutable_qcow2()->mutable_file()->mutable_options();
        else if (h.backing_format == "raw") f = o->mutable_raw()->mutable_file()->mutable_options();
        if (f != nullptr) {
          // A file, or the protocol the name gives (rbd:..., nbd://...).
          STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree, ProtocolTreeForFilename(path));
          STRATA_ASSIGN_OR_RETURN(*f, BlockdevOptionsFromTree(tree));
        } else {
          ref.set_reference(path);
        }
      } else {
        ref.set_reference(path);
      }
      absl::StatusOr<BdrvChild*> backing = ctx.OpenChild("backing", ChildRole::kBacking, ref,
                                                         FormatChildPermissions(true),
                                                         backing_flags);
      if (!backing.ok()) {
        return Prefixed("Could not open backing file", backing.status());
      }
      inst->backing_ = *backing;
    }
  }
  // QEMU's default interval on Linux is 600 s; 0 disables the cleaner.
  const uint64_t interval = qopts.has_cache_clean_interval() ? qopts.cache_clean_interval() : 600;
  if (interval > UINT32_MAX) return ErrnoError(EINVAL, "Cache clean interval too big");
  if (interval > 0) {
    inst->cleaner_ = CacheCleaner::Global().Register(
        absl::Seconds(interval), [self = inst.get()] { self->CleanCaches(); });
  }
  return inst;
}

void Qcow2Instance::CleanCaches() {
  aio::CoMutexLock lock(&mu_);
  l2_cache_->DropUnused();
  refcounts_->DropUnusedBlocks();
}

void Qcow2Instance::StopCacheCleaner() { cleaner_.Reset(); }

Qcow2Instance::~Qcow2Instance() { StopCacheCleaner(); }

Qcow2Instance::ClusterType Qcow2Instance::TypeOf(uint64_t e) const {
  if (e & kOflagCompressed) return ClusterType::kCompressed;
  const bool marked = extended_l2_ && (e & kUnallocatedWithHost);  // effective entries only
  if ((e & kOflagZero) && version_ >= 3) {
    return (e & kL2OffsetMask) || marked ? ClusterType::kZeroAlloc : ClusterType::kZeroPlain;
  }
  if ((e & kL2OffsetMask) && !marked) return ClusterType::kNormal;
  // Offset 0 is a data cluster of an external data file when COPIED says so.
  if (external_data_ && (e & kOflagCopied) && !marked) return ClusterType::kNormal;
  return ClusterType::kUnallocated;
}

absl::StatusOr<uint64_t> Qcow2Instance::MappingRunBytes(uint64_t offset, uint64_t bytes,
                                                        uint64_t entry) {
  if (extended_l2_) return SubclusterRunBytes(offset, bytes, entry);
  const uint64_t first_gc = offset >> cluster_bits_;
  const ClusterType type = TypeOf(entry);
  const uint64_t host = entry & kL2OffsetMask;
  uint64_t run = std::min(cluster_size_ - (offset & (cluster_size_ - 1)), bytes);
  for (uint64_t gc = first_gc + 1; run < bytes && type != ClusterType::kCompressed; ++gc) {
    const uint64_t l1_index = gc / l2_entries_;
    if (type == ClusterType::kUnallocated && gc % l2_entries_ == 0 &&
        (l1_index >= l1_.size() || (l1_[l1_index] & kL1OffsetMask) == 0)) {
      // A whole L2 range without a table: one step, so that time follows what is
      // allocated and not the virtual size.
      run += std::min(l2_entries_ << cluster_bits_, bytes - run);
      gc += l2_entries_ - 1;
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(uint64_t next, GetL2Entry(gc));
    if (TypeOf(next) != type) break;
    if ((type == ClusterType::kNormal || type == ClusterType::kZeroAlloc) &&
        (next & kL2OffsetMask) != host + ((gc - first_gc) << cluster_bits_)) {
      break;
    }
    run += std::min(cluster_size_, bytes - run);
  }
  return run;
}

absl::StatusOr<const uint8_t*> Qcow2Instance::FindL2Slot(uint64_t gc) {
  uint64_t l1_index = gc / l2_entries_;
  if (l1_index >= l1_.size()) return nullptr;
  uint64_t l2_offset = l1_[l1_index] & kL1OffsetMask;
  if (l2_offset == 0) return nullptr;
  if (l2_offset % cluster_size_ != 0) {
    return SignalCorruption(true, absl::StrFormat("L2 table offset %#x unaligned (L1 index: "
                                                  "%#x)", l2_offset, l1_index));
  }
  uint8_t* table = nullptr;
  if (cached_only_) {
    table = l2_cache_->Peek(l2_offset);
    if (table == nullptr) {
      miss_ = {CachedOnlyMiss::Kind::kLoadL2, l2_offset};
      return NotCached();
    }
  } else {
    STRATA_ASSIGN_OR_RETURN(table, l2_cache_->Get(l2_offset));
  }
  return table + (gc % l2_entries_) * l2_entry_bytes_;
}

absl::StatusOr<uint64_t> Qcow2Instance::GetL2Entry(uint64_t gc) {
  STRATA_ASSIGN_OR_RETURN(const uint8_t* slot, FindL2Slot(gc));
  if (slot == nullptr) return 0;
  const uint64_t entry = LoadBe64(slot);
  if (extended_l2_) return NormalizeEntry(entry);
  // v2 has no zero clusters: the flag is corruption, not data (as QEMU reads it).
  if (version_ < 3 && (entry & kOflagZero) && TypeOf(entry) != ClusterType::kCompressed) {
    return SignalCorruption(true, absl::StrFormat("Zero cluster entry found in pre-v3 image "
                                                  "(L2 offset: %#x, L2 index: %#x)",
                                                  l1_[gc / l2_entries_] & kL1OffsetMask,
                                                  gc % l2_entries_));
  }
  return entry;
}

absl::StatusOr<uint64_t> Qcow2Instance::GetL2Bitmap(uint64_t gc) {
  if (!extended_l2_) return 0;
  STRATA_ASSIGN_OR_RETURN(const uint8_t* slot, FindL2Slot(gc));
  return slot == nullptr ? 0 : LoadBe64(slot + 8);
}

absl::StatusOr<Qcow2Instance::L2EntryAndBitmap> Qcow2Instance::GetL2EntryAndBitmap(
    uint64_t gc) {
  if (!extended_l2_) {
    STRATA_ASSIGN_OR_RETURN(uint64_t entry, GetL2Entry(gc));
    return L2EntryAndBitmap{entry, 0};
  }
  STRATA_ASSIGN_OR_RETURN(const uint8_t* slot, FindL2Slot(gc));
  if (slot == nullptr) return L2EntryAndBitmap{0, 0};
  return L2EntryAndBitmap{NormalizeEntry(LoadBe64(slot)), LoadBe64(slot + 8)};
}

absl::Status Qcow2Instance::SetL2Entry(uint64_t gc, uint64_t entry, uint64_t bitmap) {
  STRATA_ASSIGN_OR_RETURN(uint64_t l2_offset, EnsureL2Table(gc / l2_entries_));
  STRATA_ASSIGN_OR_RETURN(uint8_t * table, l2_cache_->Get(l2_offset));
  const uint64_t at = (gc % l2_entries_) * l2_entry_bytes_;
  StoreBe64(table + at, entry);
  if (extended_l2_) StoreBe64(table + at + 8, bitmap);
  l2_cache_->MarkDirty(l2_offset, at, l2_entry_bytes_);
  return absl::OkStatus();
}

void Qcow2Instance::ReleaseLater(uint64_t old_entry, bool discard) {
  switch (TypeOf(old_entry)) {
    case ClusterType::kNormal:
    case ClusterType::kZeroAlloc:
      if (external_data_) {
        // Not refcounted: the data file's cluster is discarded (zeroed when the data file
        // must stay a valid raw image), as QEMU passes it down. The guest reads zeroes or
        // the old data there until the L2 change is stable, either being allowed.
        const uint64_t host = old_entry & kL2OffsetMask;
        (void)(data_file_raw_ ? ZeroDataFile(host, cluster_size_, kReqMayUnmap)
                              : data_file_->node().Pdiscard(host, cluster_size_));
        break;
      }
      pending_frees_.push_back({old_entry & kL2OffsetMask, 1, discard});
      break;
    case ClusterType::kCompressed: {
      const CompressedExtent extent = DecodeCompressed(old_entry, cluster_bits_);
      for (uint64_t c = extent.first_cluster(cluster_bits_);
           c <= extent.last_cluster(cluster_bits_); ++c) {
        pending_frees_.push_back({c << cluster_bits_, 1, discard});
      }
      break;
    }
    default:
      break;
  }
}

absl::Status Qcow2Instance::ReadBacking(uint64_t offset, uint64_t len, const IoVector& out) {
  if (backing_ == nullptr) {
    out.Memset(0, 0, len);
    return absl::OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(uint64_t backing_len, backing_->node().GetLength());
  uint64_t avail = offset >= backing_len ? 0 : std::min(len, backing_len - offset);
  if (avail > 0) {
    file_->NotifyDebugEvent(DebugEvent::kReadBackingAio);
    STRATA_RETURN_IF_ERROR(backing_->node().Preadv(offset, avail, out.Slice(0, avail)));
  }
  if (avail < len) out.Memset(avail, 0, len - avail);
  return absl::OkStatus();
}

absl::Status Qcow2Instance::ReadCompressed(uint64_t entry, uint64_t in_cluster, uint64_t len,
                                           const IoVector& out) {
  const CompressedExtent extent = DecodeCompressed(entry, cluster_bits_);
  std::vector<uint8_t> compressed(extent.bytes());
  file_->NotifyDebugEvent(DebugEvent::kReadCompressed);
  STRATA_RETURN_IF_ERROR(file_->node().Pread(extent.offset, compressed.size(), compressed.data()));
  std::vector<uint8_t> cluster(cluster_size_);
  STRATA_RETURN_IF_ERROR(DecompressCluster(compression_type_, compressed.data(),
                                           compressed.size(), cluster.data(), cluster_size_));
  out.CopyFrom(0, cluster.data() + in_cluster, len);
  return absl::OkStatus();
}

absl::Status Qcow2Instance::ReadFromEntry(uint64_t gc, uint64_t entry, uint64_t in_cluster,
                                          uint64_t len, const IoVector& out) {
  switch (TypeOf(entry)) {
    case ClusterType::kUnallocated:
      return ReadBacking(gc * cluster_size_ + in_cluster, len, out);
    case ClusterType::kZeroPlain:
    case ClusterType::kZeroAlloc:
      out.Memset(0, 0, len);
      return absl::OkStatus();
    case ClusterType::kCompressed:
      return ReadCompressed(entry, in_cluster, len, out);
    case ClusterType::kNormal: {
      uint64_t host = entry & kL2OffsetMask;
      if (host % cluster_size_ != 0) {
        return ErrnoError(EIO, "Cluster allocation offset unaligned");
      }
      file_->NotifyDebugEvent(DebugEvent::kReadAio);
      return ReadData(host + in_cluster, (gc << cluster_bits_) + in_cluster, len, out);
    }
  }
  return ErrnoError(EIO);
}

absl::Status Qcow2Instance::ReadData(uint64_t host, uint64_t guest, uint64_t len,
                                     const IoVector& out) {
  if (!crypto_) return data_file_->node().Preadv(host, len, out);
  if (!crypto_->can_transform()) return ErrnoError(EIO);
  std::vector<uint8_t> buf(std::min(len, kCryptBounceBytes));
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
    STRATA_RETURN_IF_ERROR(data_file_->node().Pread(host + done, n, buf.data()));
    crypto_->Decrypt(host + done, guest + done, buf.data(), n);
    out.CopyFrom(done, buf.data(), n);
    done += n;
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::WriteData(uint64_t host, uint64_t guest, uint64_t len,
                                      const IoVector& in, uint32_t flags) {
  // The file keeps its length past data written here even if the cluster is freed
  // before close (QEMU never shortens the file at close either).
  if (!external_data_) NoteUncountedWrite(host + len);
  if (!crypto_) return data_file_->node().Pwritev(host, len, in, flags);
  if (!crypto_->can_transform()) return ErrnoError(EIO);
  std::vector<uint8_t> buf(std::min(len, kCryptBounceBytes));
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
    in.CopyTo(done, buf.data(), n);
    crypto_->Encrypt(host + done, guest + done, buf.data(), n);
    STRATA_RETURN_IF_ERROR(data_file_->node().Pwrite(host + done, n, buf.data(), flags));
    done += n;
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::MapRead(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    bool wait, std::vector<MappedRead>* out,
                                    uint64_t* epoch) {
  STRATA_RETURN_IF_ERROR(CheckUsable());
  const uint64_t first_gc = offset >> cluster_bits_;
  const uint64_t last_gc = (offset + bytes - 1) >> cluster_bits_;
  if (wait) {
    WaitForAllocations(first_gc, last_gc);
  } else {
    STRATA_RETURN_IF_ERROR(NotCachedIfAllocationInFlight(first_gc, last_gc));
  }
  uint64_t done = 0;
  while (done < bytes) {
    uint64_t pos = offset + done;
    uint64_t gc = pos >> cluster_bits_;
    uint64_t in_cluster = pos & (cluster_size_ - 1);
    STRATA_ASSIGN_OR_RETURN(uint64_t entry, GetMapping(pos));
    STRATA_ASSIGN_OR_RETURN(uint64_t len, MappingRunBytes(pos, bytes - done, entry));
    const ClusterType type = TypeOf(entry);
    STRATA_RETURN_IF_ERROR(CheckHostOffset(gc, entry));
    if (type == ClusterType::kZeroPlain || type == ClusterType::kZeroAlloc ||
        (type == ClusterType::kUnallocated && backing_ == nullptr)) {
      qiov.Memset(done, 0, len);
    } else {
      out->push_back({gc, entry, in_cluster, len, qiov.Slice(done, len)});
    }
    done += len;
  }
  if (!out->empty()) *epoch = BeginTransfer();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::CheckHostOffset(uint64_t gc, uint64_t entry) {
  // Every kind with a host cluster (data, zero, an extended image's unallocated
  // subclusters) is checked, as QEMU checks them when it maps.
  const uint64_t host = entry & kL2OffsetMask;
  // (Only for messages; a VM state cluster may lie past the L1 table sized for the disk.)
  const uint64_t l1_index = gc / l2_entries_;
  const uint64_t l2_offset = l1_index < l1_.size() ? l1_[l1_index] & kL1OffsetMask : 0;
  const ClusterType type = TypeOf(entry);
  if (external_data_ && type == ClusterType::kCompressed) {
    return SignalCorruption(
        true, absl::StrFormat("Compressed cluster entry found in image with external data "
                              "file (L2 offset: %#x, L2 index: %#x)",
                              l2_offset, gc % l2_entries_));
  }
  if (type == ClusterType::kCompressed) return absl::OkStatus();
  const bool has_host = HasHost(entry);
  if (external_data_ && has_host && host % cluster_size_ == 0 && host != gc << cluster_bits_) {
    // (QEMU's message, its unbalanced parenthesis included.)
    return SignalCorruption(
        true, absl::StrFormat("External data file host cluster offset %#x does not match "
                              "guest cluster offset: %#x, L2 index: %#x)",
                              host, gc << cluster_bits_, gc % l2_entries_));
  }
  if (host % cluster_size_ == 0) return absl::OkStatus();
  return SignalCorruption(
      true, absl::StrFormat("Cluster allocation offset %#x unaligned (L2 offset: %#x, "
                            "L2 index: %#x)", host, l2_offset, gc % l2_entries_));
}

absl::Status Qcow2Instance::ReadVmState(uint64_t pos, uint64_t bytes, void* buf) {
  file_->NotifyDebugEvent(DebugEvent::kVmstateLoad);
  return Preadv(VmStateOffset() + pos, bytes, IoVector(buf, bytes), kReqNone);
}

absl::Status Qcow2Instance::WriteVmState(uint64_t pos, uint64_t bytes, const void* buf) {
  file_->NotifyDebugEvent(DebugEvent::kVmstateSave);
  return Pwritev(VmStateOffset() + pos, bytes, IoVector(const_cast<void*>(buf), bytes), kReqNone);
}

absl::Status Qcow2Instance::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) {
  // Mapping under the lock; every read that needs I/O (allocated clusters, the backing
  // file, compressed clusters and their inflation) after it is released, in guest order,
  // counted as a transfer so that no cluster they read is freed and reused meanwhile.
  // A backing read under the lock would serialise every read of an overlay whose data
  // lives in its base.
  std::vector<MappedRead> deferred;
  uint64_t epoch = 0;
  {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(MapRead(offset, bytes, qiov, /*wait=*/true, &deferred, &epoch));
    if (deferred.empty()) return absl::OkStatus();
  }
  absl::Status status;
  for (const MappedRead& m : deferred) {
    status = ReadFromEntry(m.gc, m.entry, m.in_cluster, m.len, m.iov);
    if (!status.ok()) break;
  }
  EndTransfer(epoch);
  return status;
}

bool Qcow2Instance::AllocationInFlight(uint64_t first_gc, uint64_t last_gc) const {
  for (const InflightAllocation& a : inflight_allocs_) {
    if (a.first_gc <= last_gc && first_gc < a.first_gc + a.count) return true;
  }
  return false;
}

absl::Status Qcow2Instance::NotCachedIfAllocationInFlight(uint64_t first_gc, uint64_t last_gc) {
  if (!AllocationInFlight(first_gc, last_gc)) return absl::OkStatus();
  miss_ = {CachedOnlyMiss::Kind::kAllocationInFlight, first_gc, last_gc};
  return NotCached();
}

void Qcow2Instance::WakeAllocationWaiters(uint64_t first_gc, uint64_t last_gc) {
  auto overlaps = [&](const AllocationWaiter& w) {
    return w.first_gc <= last_gc && first_gc <= w.last_gc;
  };
  for (const AllocationWaiter& w : allocation_waiters_) {
    if (overlaps(w)) w.waiter.context->Post(w.waiter.handle);
  }
  std::erase_if(allocation_waiters_, overlaps);
}

void Qcow2Instance::WaitForAllocations(uint64_t first_gc, uint64_t last_gc) {
  mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return !AllocationInFlight(first_gc, last_gc);
  });
}

absl::StatusOr<Qcow2Instance::AllocationPlan> Qcow2Instance::PlanAllocation(
    uint64_t offset, uint64_t bytes, const IoVector& qiov) {
  if (extended_l2_) return PlanSubclusterAllocation(offset, bytes, qiov);
  AllocationPlan plan;
  plan.first_gc = offset >> cluster_bits_;
  plan.offset = offset;
  // How many clusters from first_gc need allocation, within this request and this L2 table.
  const uint64_t last_gc = (offset + bytes - 1) >> cluster_bits_;
  const uint64_t table_end = (plan.first_gc / l2_entries_ + 1) * l2_entries_;
  auto keeps_host = [this](uint64_t e) {
    return TypeOf(e) == ClusterType::kZeroAlloc && (e & kOflagCopied) &&
           (e & kL2OffsetMask) % cluster_size_ == 0;
  };
  STRATA_ASSIGN_OR_RETURN(const uint64_t first_entry, GetL2Entry(plan.first_gc));
  plan.reuses_host_clusters = keeps_host(first_entry);
  for (uint64_t gc = plan.first_gc; gc <= last_gc && gc < table_end; ++gc) {
    STRATA_ASSIGN_OR_RETURN(uint64_t e, GetL2Entry(gc));
    if (TypeOf(e) == ClusterType::kNormal && (e & kOflagCopied)) break;
    if (plan.reuses_host_clusters) {
      // A run of zero clusters whose host clusters follow each other.
      const uint64_t expected =
          (first_entry & kL2OffsetMask) + ((gc - plan.first_gc) << cluster_bits_);
      if (!keeps_host(e) || (e & kL2OffsetMask) != expected) break;
    } else if (keeps_host(e)) {
      break;
    }
    plan.old_entries.push_back(e);
  }
  plan.count = plan.old_entries.size();
  if (plan.reuses_host_clusters) {
    plan.host = first_entry & kL2OffsetMask;
    if (!external_data_) {
      STRATA_RETURN_IF_ERROR(
          CheckMetadataOverlap(plan.host, plan.count << cluster_bits_, overlap_ignore_));
    }
    const uint64_t run_end = (plan.first_gc + plan.count) << cluster_bits_;
    plan.data_end = std::min(offset + bytes, run_end);
    plan.data = qiov.Slice(0, plan.data_end - offset);
    plan.write_start = plan.first_gc << cluster_bits_;
    plan.write_end = run_end;
    inflight_allocs_.push_back({plan.first_gc, plan.count});
    return plan;
  }
  STRATA_RETURN_IF_ERROR(AllocateRun(plan, bytes, qiov));
  return plan;
}

absl::Status Qcow2Instance::ZeroDataFile(uint64_t host, uint64_t bytes, uint32_t flags) {
  STRATA_ASSIGN_OR_RETURN(const uint64_t length, data_file_->node().GetLength());
  if (host >= length) return absl::OkStatus();
  return data_file_->node().PwriteZeroes(host, std::min(bytes, length - host), flags);
}

absl::StatusOr<uint64_t> Qcow2Instance::AllocateDataClusters(uint64_t first_gc,
                                                             uint64_t count) {
  if (external_data_) return first_gc << cluster_bits_;
  STRATA_RETURN_IF_ERROR(MakeGuestFreesReusable());
  return refcounts_->AllocateClusters(count);
}

absl::Status Qcow2Instance::MakeGuestFreesReusable() {
  if (!guest_frees_pending_) return absl::OkStatus();
  guest_frees_pending_ = false;
  return FlushMetadata();
}

void Qcow2Instance::FreeDataClusters(uint64_t host, uint64_t count) {
  if (!external_data_) (void)refcounts_->FreeClusters(host, count);
}

absl::Status Qcow2Instance::AllocateRun(AllocationPlan& plan, uint64_t bytes,
                                        const IoVector& qiov) {
  if (cached_only_) STRATA_RETURN_IF_ERROR(CheckAllocationCached(plan.first_gc / l2_entries_,
                                                                 plan.count));
  // Clusters freed by the guest are reusable first (for the table too), then the L2
  // table, then the data clusters (QEMU's order, so layouts match).
  if (!external_data_) STRATA_RETURN_IF_ERROR(MakeGuestFreesReusable());
  STRATA_RETURN_IF_ERROR(EnsureL2Table(plan.first_gc / l2_entries_).status());
  // Clusters past every cluster used since the image was opened (end_cluster() starts at
  // the end of the file and covers every allocation since) were never written: they read
  // as zeroes, past the end of the file or in the tail reserved by a zeroing fallocate.
  const uint64_t never_used_from = refcounts_->end_cluster() << cluster_bits_;
  STRATA_ASSIGN_OR_RETURN(plan.host, AllocateDataClusters(plan.first_gc, plan.count));
  if (!external_data_) {
    plan.reads_as_zero = plan.host >= never_used_from;
    if (plan.host < cluster_size_) {
      return ErrnoError(EIO, "Preventing invalid allocation of cluster at offset 0");
    }
    STRATA_RETURN_IF_ERROR(
        CheckMetadataOverlap(plan.host, plan.count << cluster_bits_, overlap_ignore_));
    if (tail_reserve_) tail_reserve_->Cover(refcounts_->end_cluster() << cluster_bits_);
  }
  const uint64_t run_end = (plan.first_gc + plan.count) << cluster_bits_;
  plan.data_end = std::min(plan.offset + bytes, run_end);
  plan.data = qiov.Slice(0, plan.data_end - plan.offset);
  plan.write_start = plan.first_gc << cluster_bits_;
  plan.write_end = run_end;
  inflight_allocs_.push_back({plan.first_gc, plan.count});
  return absl::OkStatus();
}

Qcow2Instance::CowLayout Qcow2Instance::LayOutCow(const AllocationPlan& plan) const {
  CowLayout l;
  l.run_start = plan.first_gc << cluster_bits_;
  l.run_end = (plan.first_gc + plan.count) << cluster_bits_;
  l.head_bytes = plan.offset - plan.write_start;
  l.tail_bytes = plan.write_end - plan.data_end;
  l.tail_gc = (plan.data_end - 1) >> cluster_bits_;
  // Regions that were never allocated anywhere in the chain read as zeroes: no reads
  // (QEMU zeroes such a new area instead of copying, and says so with cluster_alloc_space).
  // Not for encrypted images: zeroes must be stored encrypted.
  l.zero_cow = !extended_l2_ && backing_ == nullptr && !crypto_ &&
               (l.head_bytes > 0 || l.tail_bytes > 0) &&
               TypeOf(plan.old_entries.front()) == ClusterType::kUnallocated &&
               TypeOf(plan.old_entries.back()) == ClusterType::kUnallocated;
  return l;
}

absl::Status Qcow2Instance::WriteAllocation(const AllocationPlan& plan) {
  const CowLayout l = LayOutCow(plan);
  auto old_bitmap = [&](uint64_t i) { return extended_l2_ ? plan.old_bitmaps[i] : 0; };
  if (l.zero_cow) {
    file_->NotifyDebugEvent(DebugEvent::kClusterAllocSpace);
    // Zero the whole new run in the file (a cheap fallocate where the file system has
    // one; nothing at all where it was never written), then write just the guest data:
    // far less I/O than writing the zeroes. Both land before the L2 entry links the run,
    // so a crash still sees old or new data.
    absl::Status zeroed =
        plan.reads_as_zero
            ? absl::OkStatus()
            : data_file_->node().PwriteZeroes(plan.host, l.run_end - l.run_start, kReqNoFallback);
    if (zeroed.ok()) {
      file_->NotifyDebugEvent(DebugEvent::kWriteAio);
      if (!external_data_) NoteUncountedWrite(plan.host + (l.run_end - l.run_start));
      return data_file_->node().Pwritev(plan.offset - l.run_start + plan.host, plan.data.size(),
                                   plan.data, 0);
    }
    if (ErrnoOf(zeroed) != ENOTSUP) return zeroed;
  }
  // Copy-on-write: only the head and tail the request does not cover, in one write with
  // the guest data (zeroes for a zero_cow without a cheap write-zeroes).
  std::vector<uint8_t> head(l.head_bytes), tail(l.tail_bytes);
  if (!l.zero_cow && !head.empty()) {
    file_->NotifyDebugEvent(DebugEvent::kCowRead);
    STRATA_RETURN_IF_ERROR(ReadOldCluster(plan.first_gc, plan.old_entries.front(),
                                          old_bitmap(0), plan.write_start - l.run_start,
                                          head.size(), IoVector(head.data(), head.size())));
  }
  if (!tail.empty() && !l.zero_cow) {
    file_->NotifyDebugEvent(DebugEvent::kCowRead);
    STRATA_RETURN_IF_ERROR(ReadOldCluster(l.tail_gc, plan.old_entries[l.tail_gc - plan.first_gc],
                                          old_bitmap(l.tail_gc - plan.first_gc),
                                          plan.data_end & (cluster_size_ - 1), tail.size(),
                                          IoVector(tail.data(), tail.size())));
  }
  IoVector combined;
  if (!head.empty()) combined.Append(head.data(), head.size());
  combined.Concat(plan.data);
  if (!tail.empty()) combined.Append(tail.data(), tail.size());
  file_->NotifyDebugEvent(DebugEvent::kWriteAio);
  return WriteData(plan.host + (plan.write_start - l.run_start), plan.write_start,
                   combined.size(), combined, 0);
}

absl::Status Qcow2Instance::FinishAllocation(const AllocationPlan& plan,
                                             absl::Status written) {
  absl::Status status = written;
  if (status.ok()) {
    status = MarkDirtyForLazyRefcounts();
  }
  if (status.ok()) {
    ++allocations_since_ordering_flush_;
    l2_awaits_data_flush_ = true;
    for (uint64_t i = 0; i < plan.count && status.ok(); ++i) {
      status = SetL2Entry(plan.first_gc + i, (plan.host + (i << cluster_bits_)) | kOflagCopied,
                          extended_l2_ ? plan.new_bitmaps[i] : 0);
      // A reused cluster is the old entry's own: nothing to release. With an external
      // data file the new cluster is the old one's place (the guest offset): nothing
      // to release either.
      if (status.ok() && !plan.reuses_host_clusters && !external_data_) {
        ReleaseLater(plan.old_entries[i]);
      }
    }
  } else if (!plan.reuses_host_clusters) {
    // Nothing references the new clusters: give them back. (Reused ones stay with their
    // zero entries, which still read as zeroes.)
    FreeDataClusters(plan.host, plan.count);
  }
  for (auto it = inflight_allocs_.begin(); it != inflight_allocs_.end(); ++it) {
    if (it->first_gc == plan.first_gc && it->count == plan.count) {
      inflight_allocs_.erase(it);
      break;
    }
  }
  WakeAllocationWaiters(plan.first_gc, plan.first_gc + plan.count - 1);
  return status;
}

absl::Status Qcow2Instance::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) {
  MarkBitmapsDirty(offset, bytes);
  if (flags & kReqWriteCompressed) return PwriteCompressed(offset, bytes, qiov);
  // Three phases. Under the lock: wait until no other request is allocating any of our
  // clusters, then map: writes into clusters the image owns (COPIED) become plain data
  // segments; the rest get new host clusters (refcounts taken, L2 table present) and are
  // registered in-flight. Without the lock: copy-on-write reads and all data writes, so
  // requests run in parallel (and a breakpoint can park one while others proceed). Under
  // the lock again: link the written clusters into L2 (or give them back on failure).
  std::vector<DataSegment> in_place;
  std::vector<AllocationPlan> plans;
  uint64_t epoch = 0;
  {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(CheckUsable());
    WaitForAllocations(offset >> cluster_bits_, (offset + bytes - 1) >> cluster_bits_);
    STRATA_RETURN_IF_ERROR(PlanWrite(offset, bytes, qiov, &in_place, &plans));
    epoch = BeginTransfer();
  }
  std::vector<absl::Status> results;
  results.reserve(plans.size());
  for (const AllocationPlan& p : plans) results.push_back(WriteAllocation(p));
  absl::Status status;
  for (const DataSegment& d : in_place) {
    file_->NotifyDebugEvent(DebugEvent::kWriteAio);
    status = WriteData(d.host, d.guest, d.len, d.iov, flags & ~uint32_t{kReqFua});
    if (!status.ok()) break;
  }
  {
    aio::CoMutexLock lock(&mu_);
    for (size_t i = 0; i < plans.size(); ++i) {
      absl::Status s = FinishAllocation(plans[i], results[i]);
      if (status.ok()) status = s;
    }
    EndTransfer(epoch);
  }
  STRATA_RETURN_IF_ERROR(status);
  if (flags & kReqFua) return FlushForFua();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::FlushForFua() {
  {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(FlushMetadata());
  }
  if (external_data_) STRATA_RETURN_IF_ERROR(data_file_->node().Flush());
  return file_->node().Flush();
}

absl::Status Qcow2Instance::PlanWrite(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                     std::vector<DataSegment>* in_place,
                                     std::vector<AllocationPlan>* plans) {
  auto plan_all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    uint64_t done = 0;
    while (done < bytes) {
      const uint64_t pos = offset + done;
      STRATA_ASSIGN_OR_RETURN(const uint64_t entry, GetL2Entry(pos >> cluster_bits_));
      STRATA_ASSIGN_OR_RETURN(const bool in_place_writable, InPlaceWritable(pos, entry));
      if (in_place_writable) {
        STRATA_ASSIGN_OR_RETURN(
            DataSegment segment,
            PlanInPlace(pos, bytes - done, entry, qiov.Slice(done, bytes - done)));
        done += segment.len;
        in_place->push_back(std::move(segment));
        continue;
      }
      STRATA_ASSIGN_OR_RETURN(AllocationPlan plan,
                              PlanAllocation(pos, bytes - done, qiov.Slice(done, bytes - done)));
      done = plan.data_end - offset;
      plans->push_back(std::move(plan));
    }
    return absl::OkStatus();
  };
  absl::Status planned = plan_all();
  if (!planned.ok()) {
    for (const AllocationPlan& p : *plans) (void)FinishAllocation(p, planned);
    plans->clear();
    in_place->clear();
  }
  return planned;
}

absl::StatusOr<Qcow2Instance::DataSegment> Qcow2Instance::PlanInPlace(uint64_t pos,
                                                                      uint64_t bytes,
                                                                      uint64_t entry,
                                                                      const IoVector& data) {
  STRATA_ASSIGN_OR_RETURN(uint64_t len, WritableRunBytes(pos, bytes, entry));
  if ((entry & kL2OffsetMask) % cluster_size_ != 0) {
    return SignalCorruption(
        true, absl::StrFormat("Data cluster offset %#x unaligned (guest offset: %#x)",
                              entry & kL2OffsetMask, pos & ~(cluster_size_ - 1)));
  }
  const uint64_t host = (entry & kL2OffsetMask) + (pos & (cluster_size_ - 1));
  if (!external_data_) STRATA_RETURN_IF_ERROR(CheckMetadataOverlap(host, len, overlap_ignore_));
  return DataSegment{host, pos, len, data.Slice(0, len)};
}

absl::StatusOr<uint64_t> Qcow2Instance::WritableRunBytes(uint64_t pos, uint64_t bytes,
                                                         uint64_t entry) {
  // In place; extend over following clusters that are writable and host-contiguous.
  const uint64_t gc = pos >> cluster_bits_;
  const uint64_t in_cluster = pos & (cluster_size_ - 1);
  const uint64_t base_host = entry & kL2OffsetMask;
  // With extended L2 entries: the allocated subclusters from `from` on, in bytes (the
  // caller checked that `from` itself is allocated).
  auto allocated_bytes = [&](uint64_t cluster, uint32_t from)
                             ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<uint64_t> {
    STRATA_ASSIGN_OR_RETURN(uint64_t bitmap, GetL2Bitmap(cluster));
    return uint64_t{SameStateSubclusters(bitmap, from)} << subcluster_bits_;
  };
  uint64_t len = std::min(cluster_size_ - in_cluster, bytes);
  if (extended_l2_) {
    const uint32_t sc = static_cast<uint32_t>(in_cluster >> subcluster_bits_);
    STRATA_ASSIGN_OR_RETURN(uint64_t run, allocated_bytes(gc, sc));
    len = std::min((uint64_t{sc} << subcluster_bits_) + run - in_cluster, bytes);
    if (in_cluster + len < cluster_size_) return len;
  }
  while (len < bytes) {
    uint64_t next_gc = gc + ((in_cluster + len) >> cluster_bits_);
    STRATA_ASSIGN_OR_RETURN(uint64_t next, GetL2Entry(next_gc));
    if (TypeOf(next) != ClusterType::kNormal || !(next & kOflagCopied) ||
        (next & kL2OffsetMask) != base_host + ((next_gc - gc) << cluster_bits_)) {
      break;
    }
    if (!extended_l2_) {
      len += std::min(cluster_size_, bytes - len);
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(bool writable, InPlaceWritable(next_gc << cluster_bits_, next));
    if (!writable) break;
    STRATA_ASSIGN_OR_RETURN(uint64_t run, allocated_bytes(next_gc, 0));
    len += std::min(run, bytes - len);
    if (run < cluster_size_) break;
  }
  return len;
}

absl::Status Qcow2Instance::ZeroClusters(uint64_t first_gc, uint64_t count, bool unmap) {
  if (count == 0) return absl::OkStatus();
  WaitForAllocations(first_gc, first_gc + count - 1);
  if (header_.version < 3) {
    // No zero flag (and no backing file, see PwriteZeroes): QEMU discards instead.
    const uint64_t offset = first_gc << cluster_bits_;
    if (offset >= header_.size) return absl::OkStatus();
    return DiscardClusters(offset, std::min(count << cluster_bits_, header_.size - offset));
  }
  // QEMU takes every L2 table the range touches for writing first: a table shared with a
  // snapshot is copied even where no entry changes (files stay identical).
  for (uint64_t i = first_gc / l2_entries_; i <= (first_gc + count - 1) / l2_entries_; ++i) {
    STRATA_RETURN_IF_ERROR(EnsureL2Table(i).status());
  }
  for (uint64_t gc = first_gc; gc < first_gc + count; ++gc) {
    STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
    const uint64_t old = l2.entry, old_bitmap = l2.bitmap;
    ClusterType type = TypeOf(old);
    // Extended L2 entries: every subcluster's zero bit instead of the zero flag.
    uint64_t entry = extended_l2_ ? 0 : kOflagZero;
    const uint64_t bitmap = extended_l2_ ? kL2BitmapAllZero : 0;
    // Without unmap the host cluster stays linked, read as zeroes, also when it is shared
    // with a snapshot (not COPIED: a later write copies it as before): QEMU's layout.
    bool keep = !unmap && (type == ClusterType::kNormal || type == ClusterType::kZeroAlloc);
    if (keep) entry |= old & (kL2OffsetMask | kOflagCopied);
    if (entry == old && bitmap == old_bitmap) continue;
    STRATA_RETURN_IF_ERROR(SetL2Entry(gc, entry, bitmap));
    if (!keep) {
      ReleaseLater(old, pass_discard_request_);
      guest_frees_pending_ = true;
    } else if (data_file_raw_) {
      // The raw data file must read as the guest does.
      STRATA_RETURN_IF_ERROR(
          ZeroDataFile(old & kL2OffsetMask, cluster_size_, unmap ? kReqMayUnmap : 0));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Qcow2Instance::ZeroPartialCluster(uint64_t offset, uint64_t bytes,
                                                      uint32_t flags) {
  // The unit is the cluster, or the subcluster with extended L2 entries.
  const uint64_t gc = offset >> cluster_bits_;
  const uint64_t start = offset & ~(subcluster_size_ - 1);
  const uint64_t end = std::min(start + subcluster_size_, size_.load(std::memory_order_acquire));
  // The rest of the cluster must read as zeroes from the backing chain (checked before
  // the lock, as QEMU does; the type is checked again under it).
  auto backing_reads_zero = [&](uint64_t from, uint64_t to) -> absl::StatusOr<bool> {
    if (backing_ == nullptr) return true;
    BlockDriverState& b = backing_->node();
    STRATA_ASSIGN_OR_RETURN(uint64_t blen, b.GetLength());
    for (uint64_t pos = from; pos < std::min(to, blen);) {
      STRATA_ASSIGN_OR_RETURN(BlockStatus st, b.GetBlockStatusAbove(pos, std::min(to, blen) - pos));
      if (!st.zero || st.bytes == 0) return false;
      pos += st.bytes;
    }
    return true;
  };
  uint64_t entry;
  {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(CheckUsable());
    STRATA_ASSIGN_OR_RETURN(entry, GetMapping(offset));
  }
  const ClusterType type = TypeOf(entry);
  if (type == ClusterType::kZeroAlloc && (flags & kReqMayUnmap) && !extended_l2_) {
    // QEMU zeroes the whole cluster again with the request's flags: unmapping gives the
    // host cluster back (a subcluster zeroing never does).
    aio::CoMutexLock lock(&mu_);
    WaitForAllocations(gc, gc);
    STRATA_ASSIGN_OR_RETURN(entry, GetMapping(offset));
    if (TypeOf(entry) == ClusterType::kZeroAlloc) {
      STRATA_RETURN_IF_ERROR(ZeroClusters(gc, 1, /*unmap=*/true));
    }
    return true;
  }
  if (type == ClusterType::kZeroPlain || type == ClusterType::kZeroAlloc) {
    // Already zero; QEMU still zeroes the whole cluster (its L2 table taken for writing).
    if (!extended_l2_) {
      aio::CoMutexLock lock(&mu_);
      WaitForAllocations(gc, gc);
      STRATA_ASSIGN_OR_RETURN(entry, GetMapping(offset));
      const ClusterType now = TypeOf(entry);
      if (now == ClusterType::kZeroPlain || now == ClusterType::kZeroAlloc) {
        STRATA_RETURN_IF_ERROR(ZeroClusters(gc, 1, /*unmap=*/false));
      }
    }
    return true;
  }
  if (type != ClusterType::kUnallocated) return false;
  STRATA_ASSIGN_OR_RETURN(bool head_zero, backing_reads_zero(start, offset));
  if (!head_zero) return false;
  STRATA_ASSIGN_OR_RETURN(bool tail_zero, backing_reads_zero(offset + bytes, end));
  if (!tail_zero) return false;
  aio::CoMutexLock lock(&mu_);
  WaitForAllocations(gc, gc);
  STRATA_ASSIGN_OR_RETURN(entry, GetMapping(offset));
  if (TypeOf(entry) != ClusterType::kUnallocated) return false;
  if (extended_l2_) {
    const uint32_t sc = static_cast<uint32_t>((offset & (cluster_size_ - 1)) >> subcluster_bits_);
    return ZeroSubclusters(gc, sc, sc + 1);
  }
  STRATA_RETURN_IF_ERROR(ZeroClusters(gc, 1, /*unmap=*/false));
  return true;
}

absl::Status Qcow2Instance::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  MarkBitmapsDirty(offset, bytes);
  // Version 2 has no zero flag: without a backing file, zeroed clusters become
  // unallocated (QEMU discards them); with one, zero buffers are written.
  if (version_ < 3 && backing_ != nullptr) return ErrnoError(ENOTSUP);
  // The unit: the cluster, or the subcluster with extended L2 entries.
  const uint64_t unit = subcluster_size_;
  uint64_t head_end = std::min(AlignUp(offset, unit), offset + bytes);
  uint64_t tail_start = std::max(head_end, (offset + bytes) & ~(unit - 1));
  // Partial units at either end: a unit that reads as zeroes around the piece becomes a
  // zero cluster or subcluster (QEMU's rule: no data cluster for zeroes); others get a
  // zero buffer written.
  auto write_zero_buffer = [&](uint64_t off, uint64_t len) -> absl::Status {
    if (len == 0) return absl::OkStatus();
    STRATA_ASSIGN_OR_RETURN(bool done, ZeroPartialCluster(off, len, flags));
    if (done) return absl::OkStatus();
    std::vector<uint8_t> zeroes(len, 0);
    return Pwritev(off, len, IoVector(zeroes.data(), len), 0);
  };
  if (head_end - offset < unit && offset % unit != 0) {
    STRATA_RETURN_IF_ERROR(write_zero_buffer(offset, head_end - offset));
  } else {
    head_end = offset;
  }
  STRATA_ASSIGN_OR_RETURN(uint64_t length, GetLength());
  // A partial last cluster of the image counts as whole.
  if (offset + bytes == length) tail_start = offset + bytes;
  if (tail_start > head_end && !extended_l2_) {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(ZeroClusters(head_end >> cluster_bits_,
                                        DivRoundUp(tail_start - head_end, cluster_size_),
                                        flags & kReqMayUnmap));
  }
  // Extended L2 entries: whole clusters as above, subclusters of the others in their
  // bitmaps. A compressed cluster only partly covered cannot be zeroed so: then, as in
  // QEMU, zeroes are written over the whole aligned range (what was zeroed before it
  // included).
  for (uint64_t pos = head_end; pos < tail_start && extended_l2_;) {
    const uint64_t gc = pos >> cluster_bits_;
    const uint64_t in_cluster = pos & (cluster_size_ - 1);
    const uint64_t len = std::min(cluster_size_ - in_cluster, tail_start - pos);
    bool done = true;
    {
      aio::CoMutexLock lock(&mu_);
      // (A partial last cluster is zeroed by subclusters here, as QEMU does.)
      if (len == cluster_size_) {
        STRATA_RETURN_IF_ERROR(ZeroClusters(gc, 1, flags & kReqMayUnmap));
      } else {
        WaitForAllocations(gc, gc);
        const uint32_t first_sc = static_cast<uint32_t>(in_cluster >> subcluster_bits_);
        const uint32_t end_sc = static_cast<uint32_t>(DivRoundUp(in_cluster + len, unit));
        STRATA_ASSIGN_OR_RETURN(done, ZeroSubclusters(gc, first_sc, end_sc));
      }
    }
    if (!done) {
      const uint64_t all = tail_start - head_end;
      std::vector<uint8_t> zeroes(all, 0);
      STRATA_RETURN_IF_ERROR(Pwritev(head_end, all, IoVector(zeroes.data(), all), 0));
      break;
    }
    pos += len;
  }
  if (offset + bytes > tail_start) {
    STRATA_RETURN_IF_ERROR(write_zero_buffer(tail_start, offset + bytes - tail_start));
  }
  if (flags & kReqFua) return FlushForFua();
  return absl::OkStatus();
}

absl::Status Qcow2Instance::Pdiscard(uint64_t offset, uint64_t bytes) {
  MarkBitmapsDirty(offset, bytes);
  aio::CoMutexLock lock(&mu_);
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(offset >> cluster_bits_, (offset + bytes - 1) >> cluster_bits_);
  if (header_.version < 3 && backing_ != nullptr) return ErrnoError(ENOTSUP);
  return DiscardClusters(offset, bytes);
}

absl::Status Qcow2Instance::DiscardClusters(uint64_t offset, uint64_t bytes) {
  uint64_t length = header_.size;
  uint64_t start = AlignUp(offset, cluster_size_);
  uint64_t end = offset + bytes == length ? offset + bytes : (offset + bytes) & ~(cluster_size_ - 1);
  // QEMU discards through the L2 tables, allocating one where an L1 entry has none: the
  // same here, so that the file's layout stays QEMU's.
  if (start < end) {
    const uint64_t clusters_per_l2 = l2_entries_;
    for (uint64_t i = (start >> cluster_bits_) / clusters_per_l2;
         i <= ((end - 1) >> cluster_bits_) / clusters_per_l2; ++i) {
      STRATA_RETURN_IF_ERROR(EnsureL2Table(i).status());
    }
  }
  for (uint64_t pos = start; pos < end; pos += cluster_size_) {
    uint64_t gc = pos >> cluster_bits_;
    STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
    const uint64_t old = l2.entry, old_bitmap = l2.bitmap;
    if (TypeOf(old) == ClusterType::kUnallocated && backing_ == nullptr) continue;
    // Reads as zeroes afterwards: the zero flag, or every subcluster's zero bit.
    const uint64_t entry = extended_l2_ || header_.version < 3 ? 0 : kOflagZero;
    const uint64_t bitmap = extended_l2_ ? kL2BitmapAllZero : 0;
    if (old == entry && old_bitmap == bitmap) continue;
    STRATA_RETURN_IF_ERROR(SetL2Entry(gc, entry, bitmap));
    ReleaseLater(old, pass_discard_request_);
    guest_frees_pending_ = true;
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::WriteL1() { return aio::RunSync(CoWriteL1()); }

aio::Task<absl::Status> Qcow2Instance::CoWriteL1() {
  std::vector<uint8_t> raw(l1_.size() * 8);
  for (size_t i = 0; i < l1_.size(); ++i) StoreBe64(&raw[i * 8], l1_[i]);
  file_->NotifyDebugEvent(DebugEvent::kL1Update);
  STRATA_CO_RETURN_IF_ERROR(CheckMetadataOverlap(
      header_.l1_table_offset, raw.size(), overlap_ignore_ | MetadataOverlapIndex::kActiveL1));
  NoteUncountedWrite(header_.l1_table_offset + raw.size());
  STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPwritev(
      header_.l1_table_offset, raw.size(), IoVector(raw.data(), raw.size()), 0));
  l1_dirty_ = false;
  co_return absl::OkStatus();
}

absl::Status Qcow2Instance::FlushMetadata(bool with_refcounts) {
  return aio::RunSync(CoFlushMetadata(with_refcounts));
}

bool Qcow2Instance::FlushMetadataCanRunOnLoop() {
  // Freeing a cluster changes its refcount block; discarding it is awaited.
  for (const PendingFree& f : pending_frees_) {
    if (!refcounts_->BlocksCached(f.offset, f.count)) return false;
  }
  for (const StableFree& f : stable_frees_) {
    if (!refcounts_->BlocksCached(f.offset, f.count)) return false;
  }
  return !RefcountPoolFillDue() || refcounts_->FillPoolIsCached(NextRefcountPoolTarget());
}

aio::Task<absl::Status> Qcow2Instance::CoFlushMetadata(bool with_refcounts) {
  if (read_only_) co_return absl::OkStatus();
  bool later = l2_cache_->HasDirty() || l1_dirty_;
  // Lazy refcounts: while the dirty bit is on disk, refcounts may lag behind L2 (a crash
  // is repaired on the next open), so L2 no longer waits for them.
  const bool lazy_dirty = lazy_refcounts_ && (header_.incompatible_features & kIncompatDirty);
  if (with_refcounts) STRATA_CO_RETURN_IF_ERROR(refcounts_->ReleasePool());
  bool file_flushed = false;
  if (refcounts_->HasDirty() && (!lazy_dirty || with_refcounts)) {
    // The ordering flush (refcounts stable before the L2 tables): when it comes with
    // nearly every allocation, count clusters ahead so that the next ones need none.
    if (later && !with_refcounts) STRATA_CO_RETURN_IF_ERROR(GrowRefcountPoolIfFlushingOften());
    STRATA_CO_RETURN_IF_ERROR(co_await refcounts_->CoFlush());
    if (later) {
      STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoFlush());
      file_flushed = true;
    }
  }
  if (l2_cache_->HasDirty()) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoFlushDataBeforeL2(file_flushed));
    STRATA_CO_RETURN_IF_ERROR(co_await l2_cache_->CoFlush());
    if (l1_dirty_ || !pending_frees_.empty()) {
      STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoFlush());
    }
  }
  if (l1_dirty_) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoWriteL1());
    if (!pending_frees_.empty()) STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoFlush());
  }
  if (!pending_frees_.empty()) {
    // Nothing on disk references these clusters any more; transfers mapped before the L2
    // change may still use them: those of this epoch or older. Later ones cannot.
    const uint64_t epoch = transfers_.Advance();
    for (const PendingFree& f : pending_frees_) {
      stable_frees_.push_back({epoch, f.offset, f.count, f.discard});
    }
    pending_frees_.clear();
  }
  STRATA_CO_ASSIGN_OR_RETURN(bool freed, ApplyStableFrees());
  if (freed && (!lazy_dirty || with_refcounts)) {
    STRATA_CO_RETURN_IF_ERROR(co_await refcounts_->CoFlush());
  }
  co_return co_await CoDiscardFreedClusters();
}

absl::Status Qcow2Instance::FlushDataBeforeL2(bool file_flushed) {
  return aio::RunSync(CoFlushDataBeforeL2(file_flushed));
}

aio::Task<absl::Status> Qcow2Instance::CoFlushDataBeforeL2(bool file_flushed) {
  if (!l2_awaits_data_flush_) co_return absl::OkStatus();
  if (external_data_ || !file_flushed) {
    STRATA_CO_RETURN_IF_ERROR(co_await data_file_->node().CoFlush());
  }
  l2_awaits_data_flush_ = false;
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoDiscardFreedClusters() {
  // Under mu_: no allocation can take these clusters before their discard is done. Their
  // refcount blocks were just updated, so the lookups are cache hits.
  for (uint64_t c : refcounts_->TakeDiscards()) {
    absl::StatusOr<uint64_t> rc = refcounts_->GetRefcount(c);
    if (rc.ok() && *rc == 0) {
      (void)co_await file_->node().CoPdiscard(c << cluster_bits_, cluster_size_);
    }
  }
  co_return absl::OkStatus();
}

absl::StatusOr<bool> Qcow2Instance::ApplyStableFrees() {
  const uint64_t oldest_in_flight = transfers_.OldestInFlight();
  bool freed = false;
  size_t kept = 0;
  for (size_t i = 0; i < stable_frees_.size(); ++i) {
    const StableFree f = stable_frees_[i];
    if (f.epoch >= oldest_in_flight) {
      stable_frees_[kept++] = f;
      continue;
    }
    l2_cache_->Discard(f.offset);
    absl::Status s = refcounts_->FreeClusters(f.offset, f.count, f.discard);
    if (!s.ok()) {
      // Keep what was not freed (a later flush retries), drop what was.
      for (size_t j = i + 1; j < stable_frees_.size(); ++j) stable_frees_[kept++] = stable_frees_[j];
      stable_frees_.resize(kept);
      return s;
    }
    freed = true;
  }
  stable_frees_.resize(kept);
  return freed;
}

namespace {
// Few allocations between ordering flushes, twice running: writethrough-like use.
constexpr uint64_t kFewAllocations = 4;
}  // namespace

bool Qcow2Instance::RefcountPoolFillDue() const {
  const int next =
      allocations_since_ordering_flush_ <= kFewAllocations ? flushing_often_ + 1 : 0;
  return next >= 2;
}

absl::Status Qcow2Instance::GrowRefcountPoolIfFlushingOften() {
  flushing_often_ =
      allocations_since_ordering_flush_ <= kFewAllocations ? flushing_often_ + 1 : 0;
  allocations_since_ordering_flush_ = 0;
  if (flushing_often_ < 2) return absl::OkStatus();
  pool_target_ = NextRefcountPoolTarget();
  return refcounts_->FillPool(pool_target_);
}

uint64_t Qcow2Instance::NextRefcountPoolTarget() const {
  // The pool doubles each time it ran dry, up to 256 clusters or 32 MiB: what a crash
  // can leak at most.
  const uint64_t max_pool =
      std::max<uint64_t>(1, std::min<uint64_t>(256, (uint64_t{32} << 20) >> cluster_bits_));
  if (refcounts_->pool_size() != 0) return pool_target_;
  return std::min(max_pool, std::max<uint64_t>(8, pool_target_ * 2));
}

absl::Status Qcow2Instance::MarkDirtyForLazyRefcounts() {
  if (!lazy_refcounts_ || (header_.incompatible_features & kIncompatDirty)) {
    return absl::OkStatus();
  }
  // The bit must be stable before any L2 entry can point at clusters whose refcount is
  // not on disk.
  header_.incompatible_features |= kIncompatDirty;
  absl::Status s = WriteHeaderBytes(72, 8);
  if (!s.ok()) header_.incompatible_features &= ~kIncompatDirty;
  return s;
}

absl::Status Qcow2Instance::MarkClean() {
  if (read_only_ || !(header_.incompatible_features & kIncompatDirty)) return absl::OkStatus();
  // Everything the dirty bit excused must be on disk before the bit goes.
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  header_.incompatible_features &= ~kIncompatDirty;
  absl::Status s = WriteHeaderBytes(72, 8);
  if (!s.ok()) header_.incompatible_features |= kIncompatDirty;
  return s;
}

absl::Status Qcow2Instance::RepairIfDirty() {
  {
    aio::CoMutexLock lock(&mu_);
    if (read_only_ || !(header_.incompatible_features & kIncompatDirty)) {
      return absl::OkStatus();
    }
  }
  absl::StatusOr<CheckResult> result = Check(kCheckFixLeaks | kCheckFixErrors);
  if (!result.ok() || result->check_errors > 0) {
    int error = result.ok() ? EIO : ErrnoOf(result.status());
    return Prefixed("Could not repair dirty image", ErrnoError(error));
  }
  aio::CoMutexLock lock(&mu_);
  return MarkClean();
}

absl::Status Qcow2Instance::FlushToOs() {
  aio::CoMutexLock lock(&mu_);
  STRATA_RETURN_IF_ERROR(CheckUsable());
  return FlushMetadata();
}

std::unique_ptr<Qcow2Refcounts> Qcow2Instance::NewRefcounts(uint32_t refcount_order) {
  // Every callback runs inside a refcount operation, under mu_.
  auto refcounts = std::make_unique<Qcow2Refcounts>(
      file_, cluster_bits_, refcount_order, cache_sizes_.refcount_blocks,
      [this](uint64_t offset, uint32_t clusters) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        header_.refcount_table_offset = offset;
        header_.refcount_table_clusters = clusters;
        return WriteHeaderBytes(48, 12);
      });
  refcounts->set_corruption_handler(
      [this](const std::string& message) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return SignalCorruption(true, message);
      });
  // Whatever the refcounts say, nothing is allocated on metadata (all kinds checked, even
  // with overlap-check=none: an allocation there could only destroy the image).
  refcounts->set_allocation_check(
      [this](uint64_t offset, uint64_t bytes) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return CheckMetadataOverlap(offset, bytes, 0);
      });
  refcounts->set_table_write_check(
      [this](uint64_t offset, uint64_t bytes) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return CheckMetadataOverlap(offset, bytes,
                                    overlap_ignore_ | MetadataOverlapIndex::kRefcountTable);
      });
  refcounts->set_write_check([this](uint64_t offset) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return CheckMetadataOverlap(offset, cluster_size_,
                                overlap_ignore_ | MetadataOverlapIndex::kRefcountBlock);
  });
  return refcounts;
}

absl::Status Qcow2Instance::RewriteHeader() {
  // The whole header cluster in one write, so a crash leaves the old or the new header.
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> cluster0, SerializeHeader(header_));
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(0, cluster0.size(), cluster0.data()));
  return file_->node().Flush();
}

absl::Status Qcow2Instance::WriteHeaderBytes(uint64_t offset, uint64_t len) {
  Qcow2Header copy = header_;
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> cluster0, SerializeHeader(copy));
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(offset, len, cluster0.data() + offset));
  return file_->node().Flush();
}

absl::Status Qcow2Instance::GrowL1(uint64_t min_size) {
  if (min_size * 8 > kMaxL1Bytes) return ErrnoError(EFBIG, "Active L1 table too large");
  uint64_t new_size = min_size;
  STRATA_RETURN_IF_ERROR(FlushMetadata());
  file_->NotifyDebugEvent(DebugEvent::kL1GrowAllocTable);
  uint64_t clusters = DivRoundUp(new_size * 8, cluster_size_);
  STRATA_ASSIGN_OR_RETURN(uint64_t offset, refcounts_->AllocateClusters(clusters));
  // On any failure from here the new table is unreferenced: give its clusters back.
  auto give_back = [&](absl::Status s) {
    (void)refcounts_->FreeClusters(offset, clusters);
    return s;
  };
  absl::Status s = refcounts_->Flush();
  std::vector<uint8_t> raw(new_size * 8, 0);
  for (size_t i = 0; i < l1_.size(); ++i) StoreBe64(&raw[i * 8], l1_[i]);
  if (s.ok()) {
    file_->NotifyDebugEvent(DebugEvent::kL1GrowWriteTable);
    s = file_->node().Pwrite(offset, raw.size(), raw.data());
  }
  if (s.ok()) s = file_->node().Flush();
  if (!s.ok()) return give_back(s);
  uint64_t old_offset = header_.l1_table_offset;
  uint32_t old_size = header_.l1_size;
  uint64_t old_clusters = DivRoundUp(l1_.size() * 8, cluster_size_);
  header_.l1_size = static_cast<uint32_t>(new_size);
  header_.l1_table_offset = offset;
  file_->NotifyDebugEvent(DebugEvent::kL1GrowActivateTable);
  s = WriteHeaderBytes(36, 12);
  if (!s.ok()) {
    header_.l1_size = old_size;
    header_.l1_table_offset = old_offset;
    return give_back(s);
  }
  l1_.resize(new_size, 0);
  ++l1_epoch_;
  if (old_clusters > 0 && old_offset != 0) {
    // The switch is done; an old table the refcounts do not count (a hostile image) is
    // left as it is, as QEMU does: at worst a leak, never a failed grow.
    (void)refcounts_->FreeClusters(old_offset, old_clusters);
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::Truncate(uint64_t length, bool exact, PreallocMode prealloc) {
  aio::CoMutexLock lock(&mu_);
  PublishSizeOnExit publish(this);
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(0, UINT64_MAX);
  if (length % 512 != 0) return ErrnoError(EINVAL, "The new size must be a multiple of 512");
  if (prealloc != PreallocMode::kOff && length < header_.size) {
    return ErrnoError(ENOTSUP, "Preallocation can't be used for shrinking an image");
  }
  {
    // The bitmaps follow the new size; an inconsistent one cannot (QEMU's refusal).
    absl::MutexLock bitmaps_lock(&bitmaps_mu_);
    for (const PersistentBitmap& bm : bitmaps_) {
      if (!bm.bits) {
        return ErrnoError(EINVAL, absl::StrCat("Bitmap '", bm.entry.name,
                                               "' is inconsistent and cannot be used\nTry "
                                               "block-dirty-bitmap-remove to delete this bitmap "
                                               "from disk"));
      }
    }
  }
  // Snapshots keep their own size in v3's snapshot table, not in v2's.
  if (header_.nb_snapshots > 0 && header_.version < 3) {
    return ErrnoError(ENOTSUP, "Can't resize a v2 image which has snapshots");
  }
  if (external_data_) {
    // The data file follows the image's size; a raw one gets every new cluster mapped
    // (metadata preallocation), so that it stays the guest disk byte for byte.
    absl::Status sized = data_file_->node().Truncate(length, exact, PreallocMode::kOff);
    if (!sized.ok()) return sized;
    if (data_file_raw_ && prealloc == PreallocMode::kOff) prealloc = PreallocMode::kMetadata;
  }
  if (length < header_.size) {
    // QEMU discards the dropped clusters through their L2 tables, giving the L2 entry
    // that still holds the new end a table of its own even where it had none: the same
    // here, so that the file's layout (and what check reports) stays QEMU's.
    const uint64_t first_dropped = DivRoundUp(length, cluster_size_);
    if (first_dropped < DivRoundUp(header_.size, cluster_size_) &&
        first_dropped % l2_entries_ != 0) {
      STRATA_RETURN_IF_ERROR(EnsureL2Table(first_dropped / l2_entries_).status());
    }
    // Drop every cluster past the new end (a partial last cluster keeps its data); a
    // table shared with a snapshot is copied first, the snapshot keeps its clusters.
    for (uint64_t gc = DivRoundUp(length, cluster_size_);
         gc < DivRoundUp(header_.size, cluster_size_); ++gc) {
      STRATA_ASSIGN_OR_RETURN(const L2EntryAndBitmap l2, GetL2EntryAndBitmap(gc));
      const uint64_t old = l2.entry, old_bitmap = l2.bitmap;
      if (old == 0 && old_bitmap == 0) continue;
      STRATA_RETURN_IF_ERROR(SetL2Entry(gc, 0));
      ReleaseLater(old, /*discard=*/true);  // QEMU's QCOW2_DISCARD_ALWAYS
    }
  }
  uint64_t needed_l1 = DivRoundUp(length, cluster_size_ * l2_entries_);
  if (needed_l1 > l1_.size()) {
    absl::Status grown = GrowL1(needed_l1);
    if (!grown.ok()) return Prefixed("Failed to grow the L1 table", ErrnoError(ErrnoOf(grown)));
  }
  if (prealloc != PreallocMode::kOff && length > header_.size) {
    // Over a backing file, the old partial last cluster keeps showing the backing data.
    const uint64_t first_gc = backing_ != nullptr ? DivRoundUp(header_.size, cluster_size_)
                                                  : header_.size >> cluster_bits_;
    STRATA_RETURN_IF_ERROR(Preallocate(first_gc, DivRoundUp(length, cluster_size_), prealloc, length));
    if (external_data_) {
      // QEMU leaves a preallocated data file ending with the last allocation unit (the
      // cluster, or the subcluster with extended L2 entries) that holds guest data.
      const uint64_t data_end = AlignUp(length, subcluster_size_);
      STRATA_ASSIGN_OR_RETURN(const uint64_t data_length, data_file_->node().GetLength());
      if (data_length > data_end) {
        STRATA_RETURN_IF_ERROR(data_file_->node().Truncate(data_end, false, PreallocMode::kOff));
      }
    }
  }
  STRATA_RETURN_IF_ERROR(FlushMetadata());
  header_.size = length;
  ResizeBitmaps(length);
  return WriteHeaderBytes(24, 8);
}

absl::StatusOr<uint64_t> Qcow2Instance::GetLength() {
  return size_.load(std::memory_order_acquire);
}

absl::StatusOr<BlockStatus> Qcow2Instance::GetBlockStatus(uint64_t offset, uint64_t bytes) {
  aio::CoMutexLock lock(&mu_);
  // No wait for in-flight allocations, as in QEMU: a cluster being allocated reports its
  // state before the write (its L2 entry is linked when the write completes). Waiting
  // would hang a status query behind a write parked at a blkdebug breakpoint.
  STRATA_ASSIGN_OR_RETURN(uint64_t entry, GetMapping(offset));
  STRATA_RETURN_IF_ERROR(CheckHostOffset(offset >> cluster_bits_, entry));
  const ClusterType type = TypeOf(entry);
  const uint64_t host = entry & kL2OffsetMask;
  BlockStatus s;
  STRATA_ASSIGN_OR_RETURN(s.bytes, MappingRunBytes(offset, bytes, entry));
  // At most to the end of the L2 table that maps `offset`, as QEMU answers (one table
  // slice at a time): qemu-img convert cuts its copy pieces, and counts -p, there.
  const uint64_t table_bytes = l2_entries_ << cluster_bits_;
  s.bytes = std::min(s.bytes, table_bytes - offset % table_bytes);
  switch (type) {
    case ClusterType::kUnallocated:
      s.zero = backing_ == nullptr;
      if (HasHost(entry)) {  // a subcluster of a cluster with a host cluster: QEMU reports it
        s.offset_valid = true;
        s.host_offset = host + (offset & (cluster_size_ - 1));
        s.file = &data_file_->node();  // the data file, if external
      }
      break;
    case ClusterType::kZeroPlain:
      s.allocated = s.zero = true;
      break;
    case ClusterType::kZeroAlloc:
      s.allocated = s.zero = true;
      s.offset_valid = true;
      s.host_offset = host + (offset & (cluster_size_ - 1));
      s.file = &data_file_->node();
      break;
    case ClusterType::kNormal:
      s.allocated = s.data = true;
      s.offset_valid = true;
      s.host_offset = host + (offset & (cluster_size_ - 1));
      s.file = &data_file_->node();
      s.recurse_for_zero = MetadataPreallocated();
      break;
    case ClusterType::kCompressed:
      s.allocated = s.data = true;
      break;
  }
  if (crypto_) {  // encrypted data has no offset a reader could use (QEMU's rule)
    s.offset_valid = false;
    s.file = nullptr;
    s.recurse_for_zero = false;
  }
  return s;
}

bool Qcow2Instance::MetadataPreallocated() {
  // QEMU's test: the refcounts claim clearly more clusters than the file has blocks for
  // (at least a ninth more, and two clusters), so many clusters are allocated holes.
  if (metadata_preallocation_checked_) return metadata_preallocated_;
  metadata_preallocation_checked_ = true;
  absl::StatusOr<uint64_t> file_length = file_->node().GetLength();
  absl::StatusOr<uint64_t> real_bytes = file_->node().AllocatedFileSize();
  if (!file_length.ok() || !real_bytes.ok()) return false;
  const uint64_t real_clusters = *real_bytes / cluster_size_;
  const uint64_t threshold = std::max(real_clusters * 10 / 9, real_clusters + 2);
  const uint64_t end_cluster = (*file_length + cluster_size_ - 1) >> cluster_bits_;
  uint64_t in_use = 0;
  for (uint64_t i = 0; i < end_cluster && in_use < threshold; ++i) {
    absl::StatusOr<uint64_t> refcount = refcounts_->GetRefcount(i);
    if (!refcount.ok()) return false;
    in_use += *refcount != 0;
  }
  metadata_preallocated_ = in_use >= threshold;
  return metadata_preallocated_;
}

absl::Status Qcow2Instance::Close() {
  StopCacheCleaner();
  aio::CoMutexLock lock(&mu_);
  if (closed_) return absl::OkStatus();
  closed_ = true;
  WaitForAllocations(0, UINT64_MAX);
  if (read_only_ || !unusable_.ok()) return absl::OkStatus();
  // Bitmaps first: storing them allocates clusters the flushes below write back. As in
  // QEMU, failing to store them is reported and the close goes on: the directory on disk
  // still flags them in use, so they are inconsistent, never wrong.
  absl::Status bitmaps = StoreBitmaps();
  if (!bitmaps.ok()) {
    Diagnose(DiagnosticKind::kError,
             absl::StrCat("Lost persistent bitmaps during inactivation of node '",
                          node_ != nullptr ? node_->display_name() : "", "': ",
                          bitmaps.message()));
  }
  // Like QEMU: write back the L2 tables (with what they depend on), then the refcount
  // blocks, each made stable; report each failure as its own line.
  std::vector<std::string> failures;
  int error = 0;
  absl::Status s = FlushMetadata(/*with_refcounts=*/true);
  if (s.ok()) s = file_->node().Flush();
  if (!s.ok()) {
    error = ErrnoOf(s);
    failures.push_back("Failed to flush the L2 table cache: " + StrError(error));
  }
  s = refcounts_->Flush();
  if (s.ok()) s = file_->node().Flush();
  if (!s.ok()) {
    error = ErrnoOf(s);
    failures.push_back("Failed to flush the refcount block cache: " + StrError(error));
  }
  if (!failures.empty()) return ErrnoError(error, absl::StrJoin(failures, "\n"));
  // A clean close of a lazily dirty image clears the bit (everything is on disk now).
  if (lazy_refcounts_) STRATA_RETURN_IF_ERROR(MarkClean());
  return TrimFileTail();
}

absl::Status Qcow2Instance::TrimFileTail() {
  if (!tail_reserve_ || !tail_reserve_->extended()) return absl::OkStatus();
  const uint64_t floor_cluster = tail_reserve_->floor() >> cluster_bits_;
  STRATA_ASSIGN_OR_RETURN(uint64_t used_end, refcounts_->UsedEnd(floor_cluster));
  const uint64_t uncounted = uncounted_write_end_.load();
  if (uncounted > used_end << cluster_bits_) {
    return tail_reserve_->Trim(DivRoundUp(uncounted, cluster_size_) << cluster_bits_);
  }
  // Compressed data ends inside its cluster; when it is the last, so does the file (as
  // QEMU leaves it).
  if (compressed_end_ > 0 && ((compressed_end_ - 1) >> cluster_bits_) + 1 == used_end) {
    return tail_reserve_->Trim(compressed_end_);
  }
  return tail_reserve_->Trim(used_end << cluster_bits_);
}

absl::Status Qcow2Instance::ChangeBackingFile(const std::string& name,
                                              const std::string& format) {
  aio::CoMutexLock lock(&mu_);
  PublishSizeOnExit publish(this);
  if (read_only_) return ErrnoError(EACCES, "Image is read-only");
  STRATA_RETURN_IF_ERROR(FlushMetadata());
  const Qcow2Header old = header_;
  header_.backing_file = name;
  header_.backing_format = name.empty() ? "" : format;
  absl::Status s = RewriteHeader();
  if (!s.ok()) header_ = old;
  return s;
}

uint64_t Qcow2Instance::VmStateOffsetLocked() {
  const uint64_t l2_span = cluster_size_ * l2_entries_;
  return DivRoundUp(header_.size, l2_span) * l2_span;
}

uint64_t Qcow2Instance::VmStateOffset() {
  aio::CoMutexLock lock(&mu_);
  return VmStateOffsetLocked();
}

DriverInfo Qcow2Instance::GetInfo() {
  aio::CoMutexLock lock(&mu_);
  DriverInfo info;
  info.cluster_size_bytes = cluster_size_;
  info.vm_state_offset_bytes = VmStateOffsetLocked();
  info.is_dirty = header_.incompatible_features & kIncompatDirty;
  info.backing_filename = header_.backing_file;
  info.backing_format = header_.backing_format;
  info.encrypted = header_.crypt_method != kCryptNone;
  return info;
}

FormatSpecificInfo Qcow2Instance::GetFormatSpecificInfo() {
  aio::CoMutexLock lock(&mu_);
  FormatSpecificInfo fs;
  fs.type = "qcow2";
  auto add = [&](const char* key, std::variant<bool, int64_t, std::string> value) {
    FormatSpecificEntry entry;
    entry.key = key;
    std::visit([&](auto& v) { entry.value = std::move(v); }, value);
    fs.entries.push_back(std::move(entry));
  };
  const std::string compression = header_.compression_type == 1 ? "zstd" : "zlib";
  const int64_t refcount_bits = header_.refcount_bits();
  // The volume's description (none for a LUKS image without its crypto header).
  auto add_encrypt = [&] {
    if (!crypto_ || (crypto_->method() == kCryptLuks && !crypto_->volume_extent())) return;
    FormatSpecificEntry entry;
    entry.key = "encrypt";
    entry.value = crypto_->Info();
    fs.entries.push_back(std::move(entry));
  };
  if (header_.version == 2) {
    add("compat", std::string("0.10"));
    add("compression-type", compression);
    add("refcount-bits", refcount_bits);
    add_encrypt();
    return fs;
  }
  add("compat", std::string("1.1"));
  add("compression-type", compression);
  add("lazy-refcounts", (header_.compatible_features & kCompatLazyRefcounts) != 0);
  {
    absl::MutexLock bitmaps_lock(&bitmaps_mu_);
    std::vector<FormatSpecificDict> bitmaps;
    for (const PersistentBitmap& bm : bitmaps_) {
      if (!bm.on_disk) continue;
      std::vector<std::string> flags;
      if (bm.entry.in_use()) flags.push_back("in-use");
      if (bm.entry.enabled()) flags.push_back("auto");
      FormatSpecificDict dict;
      dict.resize(3);
      dict[0].key = "flags";
      dict[0].value = std::move(flags);
      dict[1].key = "name";
      dict[1].value = bm.entry.name;
      dict[2].key = "granularity";
      dict[2].value = static_cast<int64_t>(bm.entry.granularity());
      bitmaps.push_back(std::move(dict));
    }
    if (!bitmaps.empty()) {
      FormatSpecificEntry entry;
      entry.key = "bitmaps";
      entry.value = std::move(bitmaps);
      fs.entries.push_back(std::move(entry));
    }
  }
  add("refcount-bits", refcount_bits);
  if (header_.has_data_file()) {  // from the header: info does not open the data file
    const std::string name = header_.data_file_name();
    if (!name.empty()) add("data-file", name);
  }
  add_encrypt();
  if (header_.has_data_file()) add("data-file-raw", header_.data_file_raw());
  add("corrupt", (header_.incompatible_features & kIncompatCorrupt) != 0);
  add("extended-l2", extended_l2_);
  return fs;
}

}  // namespace strata::qcow2
