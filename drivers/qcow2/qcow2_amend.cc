// strata qcow2: amend (qemu-img amend): LUKS key slots, compat upgrade and downgrade,
// refcount width, lazy refcounts, size.
//
// The steps run in QEMU's order: upgrade, refcount width, lazy refcounts, size, and the
// downgrade last (it needs refcount_bits=16 and no lazy refcounts). Each step is crash
// safe on its own:
// - upgrade and downgrade switch the version with one write of the header cluster; a
//   downgrade first makes the image clean and turns every zero cluster into something v2
//   reads the same way (unallocated without a backing file, a cluster of zeroes with one),
//   the new clusters written before the L2 tables that point at them;
// - a new refcount width gets a complete new refcount structure, written into clusters
//   free in the old one and made stable before one header write switches width and table;
//   the old structure is freed afterwards (a crash in between leaks it, nothing more).
#include <algorithm>
#include <cerrno>
#include <cinttypes>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "drivers/qcow2/qcow2_options.h"

namespace strata::qcow2 {
namespace {

// What an amend asks for; unset = leave as is.
struct AmendRequest {
  std::optional<uint32_t> version;
  std::optional<uint32_t> refcount_order;
  std::optional<bool> lazy_refcounts;
  std::optional<uint64_t> size;
  std::optional<std::string> data_file;  // a new name for the external data file
  std::optional<luks::KeySlotAmend> key_slots;  // encrypt.state, new-secret, ...
};

bool IsCreateOnlyOption(const std::string& key) {
  return key == "cluster_size" || key == "preallocation" || key == "extended_l2" ||
         key == "compression_type" || key == "encryption" || key == "encrypt.format" ||
         key == "encrypt.cipher-alg" || key == "encrypt.cipher-mode" ||
         key == "encrypt.ivgen-alg" || key == "encrypt.ivgen-hash-alg" ||
         key == "encrypt.hash-alg" || key == "encrypt.key-secret";
}

// Whether every option would parse as a qcow2 creation option (known, and its value
// valid for its type). QEMU adds "This option is only supported for image creation" to
// an amend refusal only then: `-o cluster_size` (read as "on", no size) gets the bare
// "Invalid parameter".
bool ParsesAsCreateOptions(const std::vector<std::pair<std::string, std::string>>& options) {
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  if (qcow2 == nullptr) return false;
  const std::vector<CreateOptionSpec> specs = qcow2->create_options();
  for (const auto& [key, value] : options) {
    const std::string& name = key;  // clang 14 cannot capture a structured binding
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const CreateOptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) return false;
    uint64_t number;
    if ((spec->type == "size" && !ParseSize(value).ok()) ||
        (spec->type == "bool" && !ParseOnOff(value, key).ok()) ||
        (spec->type == "num" && !absl::SimpleAtoi(value, &number))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<AmendRequest> ParseAmendOptions(
    const std::vector<std::pair<std::string, std::string>>& options) {
  AmendRequest r;
  for (const auto& [key, value] : options) {
    if (key == "compat") {
      if (value == "0.10" || value == "v2") r.version = 2;
      else if (value == "1.1" || value == "v3") r.version = 3;
      else return ErrnoError(EINVAL, absl::StrCat("Unknown compatibility level ", value));
    } else if (key == "lazy_refcounts") {
      STRATA_ASSIGN_OR_RETURN(r.lazy_refcounts, ParseOnOff(value, key));
    } else if (key == "refcount_bits") {
      STRATA_ASSIGN_OR_RETURN(r.refcount_order, ParseRefcountOrder(value));
    } else if (key == "size") {
      absl::StatusOr<uint64_t> size = ParseSize(value);
      if (!size.ok() && ErrnoOf(size.status()) == ERANGE) {
        return ErrnoError(EINVAL, absl::StrCat("Value '", value,
                                               "' is out of range for parameter 'size'"));
      }
      if (!size.ok()) {
        return ErrnoError(EINVAL,
                          "Parameter 'size' expects a non-negative number below 2^64\n"
                          "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
                          "tera-, peta-\nand exabytes, respectively.");
      }
      r.size = *size;
    } else if (key == "backing_file" || key == "backing_fmt") {
      return ErrnoError(EINVAL, "Cannot amend the backing file\n"
                                "You can use 'qemu-img rebase' instead.");
    } else if (key == "data_file") {
      r.data_file = value;
    } else if (key == "data_file_raw") {
      return ErrnoError(EINVAL, "data-file-raw cannot be set on existing images");
    } else if (key.rfind("encrypt.", 0) == 0 && !IsCreateOnlyOption(key)) {
      if (!r.key_slots) r.key_slots.emplace();
      STRATA_ASSIGN_OR_RETURN(bool taken, luks::SetKeySlotAmendParam(
                                              *r.key_slots, key.substr(8), value, "encrypt."));
      if (!taken) return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'"));
    } else if (IsCreateOnlyOption(key)) {
      return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'",
                                             ParsesAsCreateOptions(options)
                                                 ? "\nThis option is only supported for "
                                                   "image creation"
                                                 : ""));
    } else {
      return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'"));
    }
  }
  return r;
}

// One progress bar over amend's operations, as qemu-img draws it. Each operation that
// reports (done, work) is placed after the work of the operations that reported before
// it; the total is projected for the operations still to come by assuming each costs
// what the ones seen so far cost on average (integer arithmetic, as the figures qemu-img
// prints depend on it). An operation that never reports (a key-slot update) still
// counts among the operations but adds no work.
class CombinedAmendProgress {
 public:
  CombinedAmendProgress(const AmendProgress& out, uint64_t operations)
      : out_(out), operations_(operations) {}

  // The callback for the next operation in order. Valid while this object lives.
  AmendProgress NextOperation() {
    const uint64_t id = next_id_++;
    return [this, id](uint64_t done, uint64_t work) { Report(id, done, work); };
  }

 private:
  void Report(uint64_t id, uint64_t done, uint64_t work) {
    if (!out_) return;
    if (id != reporting_id_) {
      if (reporting_id_ != kNone) {
        finished_work_ += reporting_work_;
        ++finished_operations_;
      }
      reporting_id_ = id;
    }
    reporting_work_ = work;
    const uint64_t seen = finished_work_ + work;
    const uint64_t remaining = operations_ > finished_operations_ + 1
                                   ? operations_ - finished_operations_ - 1
                                   : 0;
    out_(finished_work_ + done, seen + seen * remaining / (finished_operations_ + 1));
  }

  static constexpr uint64_t kNone = UINT64_MAX;
  const AmendProgress& out_;
  const uint64_t operations_;
  uint64_t next_id_ = 0;
  uint64_t reporting_id_ = kNone;
  uint64_t reporting_work_ = 0;
  uint64_t finished_work_ = 0;
  uint64_t finished_operations_ = 0;
};

}  // namespace

absl::Status Qcow2Instance::Amend(
    const std::vector<std::pair<std::string, std::string>>& options,
    const AmendProgress& progress) {
  // Progress as qemu-img shows it, one bar over the operations (CombinedAmendProgress):
  // a key-slot update (no steps), an upgrade in two steps (0/2 before the header, 1/2
  // and 2/2 after it), a refcount width change (ChangeRefcountOrder's steps), a downgrade
  // one step per L1 entry walked.
  STRATA_ASSIGN_OR_RETURN(const AmendRequest r, ParseAmendOptions(options));
  std::optional<CombinedAmendProgress> combined;
  AmendProgress downgrade_progress;
  {
    aio::CoMutexLock lock(&mu_);
    PublishSizeOnExit publish(this);
    if (read_only_) return ErrnoError(EACCES, "Image is read-only");
    STRATA_RETURN_IF_ERROR(CheckUsable());
    WaitForAllocations(0, UINT64_MAX);
    const uint32_t new_version = r.version.value_or(header_.version);
    const uint32_t new_order = r.refcount_order.value_or(header_.refcount_order);
    if (r.refcount_order.has_value() && *r.refcount_order != 4 && new_version < 3) {
      return ErrnoError(EINVAL, "Refcount widths other than 16 bits require compatibility "
                                "level 1.1 or above (use compat=1.1 or greater)");
    }
    // Only turning lazy refcounts on is refused for v2 (a downgrade drops them anyway).
    const bool lazy_now = (header_.compatible_features & kCompatLazyRefcounts) != 0;
    if (r.lazy_refcounts.value_or(false) && !lazy_now && new_version < 3) {
      return ErrnoError(EINVAL, "Lazy refcounts only supported with compatibility level 1.1 "
                                "and above (use compat=1.1 or greater)");
    }
    if (new_version < 3 && new_order != 4) {
      return ErrnoError(EINVAL, "compat=0.10 requires refcount_bits=16");
    }
    const bool upgrade = new_version > header_.version;
    const bool reorder = new_order != header_.refcount_order;
    combined.emplace(progress, uint64_t{r.key_slots.has_value()} +
                                   uint64_t{new_version != header_.version} + uint64_t{reorder});
    // Key slots first, as QEMU (the image must have been opened with its passphrase).
    if (r.key_slots) {
      (void)combined->NextOperation();  // counted, never reported
      if (!crypto_) {
        return ErrnoError(EINVAL, "Can't amend encryption options - encryption not present");
      }
      STRATA_RETURN_IF_ERROR(crypto_->AmendKeySlots(*r.key_slots, file_->node()));
    }
    if (upgrade) {
      const AmendProgress report = combined->NextOperation();
      report(0, 2);
      const Qcow2Header old = header_;
      header_.version = new_version;
      absl::Status s = RewriteHeader();
      if (!s.ok()) {
        header_ = old;
        return s;
      }
      version_ = new_version;
      report(1, 2);
      report(2, 2);
    }
    if (reorder) {
      STRATA_RETURN_IF_ERROR(ChangeRefcountOrder(new_order, combined->NextOperation()));
    }
    if (r.lazy_refcounts.has_value()) STRATA_RETURN_IF_ERROR(SetLazyRefcounts(*r.lazy_refcounts));
    if (new_version < header_.version) downgrade_progress = combined->NextOperation();
    if (r.data_file.has_value()) {
      // Only the name in the header changes (the data file itself stays as it is).
      if (!header_.has_data_file()) {
        return ErrnoError(EINVAL, "data-file can only be set for images that use an external "
                                  "data file");
      }
      const Qcow2Header old = header_;
      header_.set_data_file_name(*r.data_file);
      absl::Status s = RewriteHeader();
      if (!s.ok()) {
        header_ = old;
        return s;
      }
    }
  }
  if (r.size.has_value()) {
    // As QEMU's amend, which truncates through the block layer: its limits first.
    STRATA_RETURN_IF_ERROR(BlockDriverState::CheckNewLength(*r.size));
    STRATA_RETURN_IF_ERROR(Truncate(*r.size, false, PreallocMode::kOff));
  }
  aio::CoMutexLock lock(&mu_);
  if (r.version.has_value() && *r.version < header_.version) {
    STRATA_RETURN_IF_ERROR(Downgrade(downgrade_progress));
  }
  return absl::OkStatus();
}

absl::Status Qcow2Instance::SetLazyRefcounts(bool on) {
  const bool has_bit = (header_.compatible_features & kCompatLazyRefcounts) != 0;
  if (!on) STRATA_RETURN_IF_ERROR(MarkClean());  // nothing may stay excused by the bit
  lazy_refcounts_ = on;
  if (on == has_bit) return absl::OkStatus();
  header_.compatible_features ^= kCompatLazyRefcounts;
  absl::Status s = WriteHeaderBytes(80, 8);
  if (!s.ok()) header_.compatible_features ^= kCompatLazyRefcounts;
  return s;
}

absl::Status Qcow2Instance::ChangeRefcountOrder(uint32_t refcount_order,
                                                const AmendProgress& progress) {
  // One pass over the reftable's entries per phase below (reading the old refcounts,
  // writing the new structure, freeing the old one), reported as each phase ends.
  const uint64_t entries = uint64_t{header_.refcount_table_clusters} * cluster_size_ / 8;
  uint64_t step = 0;
  auto pass_done = [&] {
    for (uint64_t i = 0; progress && i < entries; ++i) progress(++step, 3 * entries);
  };
  if (progress) progress(0, 3 * entries);  // qemu-img shows the start (0.00) once more
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  std::unique_ptr<Qcow2Refcounts> layout = NewRefcounts(refcount_order);
  STRATA_ASSIGN_OR_RETURN(const uint64_t file_length, file_->node().GetLength());
  const uint64_t clusters =
      std::max(refcounts_->end_cluster(), DivRoundUp(file_length, cluster_size_));
  // The refcounts are untrusted input. A refcount block that lies on other metadata
  // cannot be read as refcounts at all (QEMU fails the same way).
  using Index = MetadataOverlapIndex;
  for (uint64_t block : refcounts_->table()) {
    const uint64_t offset = block & kReftableOffsetMask;
    if (offset != 0 && OverlapsMetadata(offset, cluster_size_, Index::kRefcountBlock)) {
      return Prefixed("Overlap check failed", ErrnoError(EIO));
    }
  }
  // The old structure keeps its own refcounts here, so the new one goes elsewhere; every
  // cluster holding metadata counts as used whatever its refcount says, so the new
  // structure is never laid over the header or a table.
  std::vector<uint64_t> refs(clusters);
  for (uint64_t c = 0; c < clusters; ++c) {
    STRATA_ASSIGN_OR_RETURN(refs[c], refcounts_->GetRefcount(c));
    if (refs[c] == 0 && OverlapsMetadata(c << cluster_bits_, cluster_size_, 0)) refs[c] = 1;
    if (refs[c] > layout->refcount_max()) {
      return ErrnoError(EINVAL, absl::StrFormat("Cannot decrease refcount entry width to %u "
                                                "bits: Cluster at offset %#" PRIx64
                                                " has a refcount of %" PRIu64,
                                                1u << refcount_order, c << cluster_bits_,
                                                refs[c]));
    }
  }
  pass_done();
  STRATA_ASSIGN_OR_RETURN(auto table, WriteRefcountStructure(*layout, refs));
  pass_done();
  const Qcow2Header old_header = header_;
  const std::vector<uint64_t> old_blocks = refcounts_->table();
  header_.refcount_order = refcount_order;
  header_.refcount_table_offset = table.first;
  header_.refcount_table_clusters = table.second;
  // Width and table switch in one write (bytes 48..103 of the header).
  absl::Status switched = WriteHeaderBytes(48, 56);
  if (!switched.ok()) {
    header_ = old_header;
    return switched;
  }
  STRATA_ASSIGN_OR_RETURN(const uint64_t new_length, file_->node().GetLength());
  refcounts_ = std::move(layout);
  STRATA_RETURN_IF_ERROR(refcounts_->Load(table.first, table.second, new_length));
  // The old structure is unreferenced now: free it.
  for (uint64_t block : old_blocks) {
    if (block != 0) STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(block, 1));
  }
  STRATA_RETURN_IF_ERROR(refcounts_->FreeClusters(old_header.refcount_table_offset,
                                                  old_header.refcount_table_clusters));
  STRATA_RETURN_IF_ERROR(refcounts_->Flush());
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  pass_done();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<uint64_t>>> Qcow2Instance::AllL1Tables() {
  std::vector<std::vector<uint64_t>> tables{l1_};
  for (const Qcow2Snapshot& snapshot : snapshots_) {
    STRATA_ASSIGN_OR_RETURN(std::vector<uint64_t> l1,
                            ReadL1Table(snapshot.l1_table_offset, snapshot.l1_size));
    tables.push_back(std::move(l1));
  }
  return tables;
}

absl::Status Qcow2Instance::Downgrade(const AmendProgress& progress) {
  for (const Qcow2Snapshot& snapshot : snapshots_) {
    if (snapshot.DiskSize(header_.size) != header_.size) {
      return ErrnoError(ENOTSUP, "Internal snapshots prevent downgrade of image");
    }
  }
  for (const HeaderExtension& e : header_.other_extensions) {
    if (e.magic == kExtBitmaps) {
      return ErrnoError(ENOTSUP, "Cannot downgrade an image with persistent bitmaps");
    }
  }
  STRATA_ASSIGN_OR_RETURN(const std::vector<std::vector<uint64_t>> l1_tables, AllL1Tables());
  if (header_.compression_type != 0) {
    for (const std::vector<uint64_t>& l1 : l1_tables) {
      for (uint64_t l1_entry : l1) {
        const uint64_t l2 = l1_entry & kL1OffsetMask;
        if (l2 == 0) continue;
        for (uint64_t i = 0; i < l2_entries_; ++i) {
          STRATA_ASSIGN_OR_RETURN(uint8_t * table, l2_cache_->Get(l2));
          if (TypeOf(LoadBe64(table + i * l2_entry_bytes_)) == ClusterType::kCompressed) {
            return ErrnoError(ENOTSUP, "Cannot downgrade an image with zstd compression type "
                                       "and existing compressed clusters");
          }
        }
      }
    }
  }
  const uint64_t blocking = header_.incompatible_features &
                            ~(kIncompatDirty | kIncompatCorrupt | kIncompatCompression);
  if (blocking != 0) {
    if (blocking & kIncompatDataFile) {
      return ErrnoError(ENOTSUP, "Cannot downgrade an image with a data file");
    }
    return ErrnoError(ENOTSUP, absl::StrFormat("Cannot downgrade an image with incompatible "
                                               "features 0x%" PRIx64 " set", blocking));
  }
  STRATA_RETURN_IF_ERROR(MarkClean());
  uint64_t entries = 0, done = 0;
  for (const std::vector<uint64_t>& l1 : l1_tables) entries += l1.size();
  for (const std::vector<uint64_t>& l1 : l1_tables) {
    for (uint64_t entry : l1) {
      STRATA_RETURN_IF_ERROR(ExpandZeroClusters({entry}));
      progress(++done, entries);
    }
  }
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  const Qcow2Header old = header_;
  header_.version = 2;
  header_.incompatible_features = 0;
  header_.compatible_features = 0;
  header_.autoclear_features = 0;
  header_.compression_type = 0;
  header_.unknown_header_fields.clear();
  header_.has_feature_table = false;
  header_.feature_table.clear();
  absl::Status s = RewriteHeader();
  if (!s.ok()) {
    header_ = old;
    return s;
  }
  version_ = 2;
  lazy_refcounts_ = false;
  return absl::OkStatus();
}

absl::Status Qcow2Instance::ExpandZeroClusters(const std::vector<uint64_t>& l1) {
  for (uint64_t l1_entry : l1) {
    const uint64_t l2 = l1_entry & kL1OffsetMask;
    if (l2 == 0) continue;
    // A table shared by several L1 tables stands for as many references to each cluster.
    STRATA_ASSIGN_OR_RETURN(const uint64_t l2_refcount,
                            refcounts_->GetRefcount(l2 >> cluster_bits_));
    for (uint64_t i = 0; i < l2_entries_; ++i) {
      STRATA_ASSIGN_OR_RETURN(uint8_t * table, l2_cache_->Get(l2));
      const uint64_t entry = LoadBe64(table + i * l2_entry_bytes_);
      const ClusterType type = TypeOf(entry);
      if (type != ClusterType::kZeroPlain && type != ClusterType::kZeroAlloc) continue;
      uint64_t host = entry & kL2OffsetMask;
      uint64_t replacement = 0;
      if (backing_ == nullptr) {
        // Unallocated reads as zeroes too; an allocated cluster is released.
        for (uint64_t k = 0; k < l2_refcount && host != 0; ++k) {
          pending_frees_.push_back({host, 1, false});
        }
      } else {
        uint64_t flags = entry & kOflagCopied;
        if (host == 0) {
          STRATA_ASSIGN_OR_RETURN(host, refcounts_->AllocateClusters(1));
          if (l2_refcount > 1) {
            STRATA_RETURN_IF_ERROR(refcounts_->UpdateRefcount(
                host >> cluster_bits_, static_cast<int64_t>(l2_refcount) - 1));
          }
          flags = l2_refcount == 1 ? kOflagCopied : 0;
        }
        STRATA_RETURN_IF_ERROR(file_->node().PwriteZeroes(host, cluster_size_, kReqNone));
        replacement = host | flags;
      }
      STRATA_ASSIGN_OR_RETURN(table, l2_cache_->Get(l2));  // allocation may have evicted it
      StoreBe64(table + i * l2_entry_bytes_, replacement);
      l2_cache_->MarkDirty(l2);
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::qcow2
