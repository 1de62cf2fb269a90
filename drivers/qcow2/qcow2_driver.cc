// strata qcow2: the registered BlockDriver: probing, opening, and image creation in the
// layout qemu-img makes (header, reftable at cluster 1, refblock at cluster 2, then the
// L1 table allocated by a resize from 0, like QEMU's create-then-resize).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "block/graph_builder.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_bitmap_format.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_header.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "drivers/qcow2/qcow2_options.h"

namespace strata::qcow2 {
namespace {

struct CreateParams {
  uint32_t version = 3;
  uint32_t cluster_bits = 16;
  uint32_t refcount_order = 4;
  bool lazy_refcounts = false;
  bool extended_l2 = false;
  std::string data_file;  // external data file ("" = none)
  bool data_file_raw = false;
  uint8_t compression_type = 0;
  std::string backing_file, backing_fmt;
  uint64_t size = 0;
  PreallocMode prealloc = PreallocMode::kOff;
  EncryptCreateParams encrypt;
};

// The driver names QEMU 7.2's option schema accepts as a backing format (the formats
// `qemu-img --help` lists), whether or not strata has the driver: a name outside it is
// refused when the image is created, one inside it only when the backing file is opened.
bool IsQemuDriverName(absl::string_view name) {
  static constexpr absl::string_view kNames[] = {
      "blkdebug", "blklogwrites", "blkverify", "bochs", "cloop", "compress",
      "copy-before-write", "copy-on-read", "dmg", "file", "ftp", "ftps", "gluster",
      "host_cdrom", "host_device", "http", "https", "iscsi", "iser", "luks", "nbd", "nfs",
      "null-aio", "null-co", "nvme", "parallels", "preallocate", "qcow", "qcow2", "qed",
      "quorum", "raw", "rbd", "replication", "snapshot-access", "ssh", "throttle", "vdi",
      "vhdx", "vmdk", "vpc", "vvfat"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// The enumerated options, checked before any other in the order of QEMU's creation schema
// (version, backing-fmt, preallocation, compression-type), each refused with its message.
absl::Status CheckEnumeratedCreateOptions(const std::map<std::string, std::string>& options) {
  auto refuse = [](absl::string_view param, absl::string_view value) {
    return ErrnoError(EINVAL, absl::StrCat("Parameter '", param, "' does not accept value '",
                                           value, "'"));
  };
  if (auto it = options.find("compat"); it != options.end()) {
    const std::string& v = it->second;
    if (v != "0.10" && v != "v2" && v != "1.1" && v != "v3") return refuse("version", v);
  }
  if (auto it = options.find("backing_fmt");
      it != options.end() && !IsQemuDriverName(it->second)) {
    return refuse("backing-fmt", it->second);
  }
  if (auto it = options.find("preallocation"); it != options.end()) {
    const std::string& v = it->second;
    if (v != "off" && v != "metadata" && v != "falloc" && v != "full") {
      return refuse("preallocation", v);
    }
  }
  if (auto it = options.find("compression_type"); it != options.end()) {
    if (it->second != "zlib" && it->second != "zstd") {
      return refuse("compression-type", it->second);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CreateParams> ParseCreateOptions(const CreateRequest& r) {
  CreateParams p;
  p.size = (r.size_bytes + 511) / 512 * 512;
  STRATA_RETURN_IF_ERROR(CheckEnumeratedCreateOptions(r.options));
  for (const auto& [k, v] : r.options) {
    if (k == "compat") {
      p.version = (v == "0.10" || v == "v2") ? 2 : 3;
    } else if (k == "cluster_size") {
      STRATA_ASSIGN_OR_RETURN(uint64_t cs, ParseSize(v));
      if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)) != 0) {
        return ErrnoError(EINVAL, "Cluster size must be a power of two between 512 and 2048k");
      }
      p.cluster_bits = __builtin_ctzll(cs);
    } else if (k == "refcount_bits") {
      STRATA_ASSIGN_OR_RETURN(p.refcount_order, ParseRefcountOrder(v));
    } else if (k == "lazy_refcounts") {
      STRATA_ASSIGN_OR_RETURN(p.lazy_refcounts, ParseOnOff(v, k));
    } else if (k == "compression_type") {
      p.compression_type = v == "zstd" ? 1 : 0;
    } else if (k == "backing_file") {
      p.backing_file = v;
    } else if (k == "backing_fmt") {
      p.backing_fmt = v;
    } else if (k == "extended_l2") {
      STRATA_ASSIGN_OR_RETURN(p.extended_l2, ParseOnOff(v, k));
    } else if (k == "preallocation") {
      if (v == "metadata") p.prealloc = PreallocMode::kMetadata;
      else if (v == "falloc") p.prealloc = PreallocMode::kFalloc;
      else if (v == "full") p.prealloc = PreallocMode::kFull;
      else p.prealloc = PreallocMode::kOff;
    } else if (k == "data_file") {
      p.data_file = v;
    } else if (k == "data_file_raw") {
      STRATA_ASSIGN_OR_RETURN(p.data_file_raw, ParseOnOff(v, k));
    } else if (k == "size") {
      // Already in r.size_bytes.
    } else if (k == "nocow" || k == "extent_size_hint") {
      // The file's options (QEMU merges the protocol's into -o): Create hands them on.
    } else {
      STRATA_ASSIGN_OR_RETURN(bool taken, SetEncryptCreateParam(p.encrypt, k, v));
      if (!taken) return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", k, "'"));
    }
  }
  STRATA_RETURN_IF_ERROR(ValidateEncryptCreateParams(p.encrypt));
  // QEMU checks these first.
  if (p.extended_l2 && p.version < 3) {
    return ErrnoError(EINVAL, "Extended L2 entries are only supported with compatibility "
                              "level 1.1 and above (use version=v3 or greater)");
  }
  if (p.extended_l2 && p.cluster_bits < kMinExtendedClusterBits) {
    return ErrnoError(EINVAL, absl::StrCat("Extended L2 entries are only supported with cluster "
                                           "sizes of at least ",
                                           uint64_t{1} << kMinExtendedClusterBits, " bytes"));
  }
  if (!p.data_file.empty() && p.version < 3) {
    return ErrnoError(EINVAL, "External data files are only supported with compatibility "
                              "level 1.1 and above (use version=v3 or greater)");
  }
  if (p.data_file_raw && p.data_file.empty()) {
    return ErrnoError(EINVAL, "data-file-raw requires data-file");
  }
  if (p.data_file_raw && !p.backing_file.empty()) {
    return ErrnoError(EINVAL, "Backing file and data-file-raw cannot be used at the same time");
  }
  if (p.backing_file.empty() && !p.backing_fmt.empty()) {
    return ErrnoError(EINVAL, "Backing format cannot be used without backing file");
  }
  if (!p.backing_file.empty() && p.prealloc != PreallocMode::kOff && !p.extended_l2) {
    return ErrnoError(EINVAL, "Backing file and preallocation can only be used at the same "
                              "time if extended_l2 is on");
  }
  if (p.version == 2 && p.lazy_refcounts) {
    return ErrnoError(EINVAL, "Lazy refcounts only supported with compatibility level 1.1 "
                              "and above (use version=v3 or greater)");
  }
  if (p.version == 2 && p.refcount_order != 4) {
    return ErrnoError(EINVAL, "Different refcount widths than 16 bits require compatibility "
                              "level 1.1 or above (use version=v3 or greater)");
  }
  if (p.version == 2 && p.compression_type != 0) {
    return ErrnoError(EINVAL, "Non-zlib compression type is only supported with compatibility "
                              "level 1.1 and above (use version=v3 or greater)");
  }
  return p;
}

// Refcount table and block clusters needed to count `clusters` clusters plus themselves:
// the fixed point of "blocks for everything, table for the blocks" (QEMU's estimate).
uint64_t RefcountMetadataBytes(uint64_t clusters, uint64_t cluster_size,
                               uint32_t refcount_order) {
  const uint64_t blocks_per_table_cluster = cluster_size / 8;
  const uint64_t refcounts_per_block = cluster_size * 8 / (uint64_t{1} << refcount_order);
  uint64_t table = 0, blocks = 0, n = 0, last;
  do {
    last = n;
    blocks = DivRoundUp(clusters + table + blocks, refcounts_per_block);
    table = DivRoundUp(blocks, blocks_per_table_cluster);
    n = clusters + blocks + table;
  } while (n != last);
  return (blocks + table) * cluster_size;
}

// The file size of a fully allocated image of `size` bytes: header, L2 and L1 tables,
// refcount structure, data (QEMU's qcow2_calc_prealloc_size).
uint64_t FullyAllocatedBytes(uint64_t size, uint64_t cluster_size, uint32_t refcount_order,
                             uint32_t l2_entry_bytes) {
  const uint64_t aligned = AlignUp(size, cluster_size);
  uint64_t meta = cluster_size;
  const uint64_t l2_entries = AlignUp(aligned / cluster_size, cluster_size / l2_entry_bytes);
  meta += l2_entries * l2_entry_bytes;
  const uint64_t l1_entries =
      AlignUp(l2_entries * l2_entry_bytes / cluster_size, cluster_size / 8);
  meta += l1_entries * 8;
  meta += RefcountMetadataBytes((meta + aligned) / cluster_size, cluster_size, refcount_order);
  return meta + aligned;
}

// Bytes of `input` (through its whole backing chain) that hold data, counted in whole
// clusters of `cluster_size`; zero and unallocated regions are free.
absl::StatusOr<uint64_t> RequiredDataBytes(BlockDriverState* input, uint64_t cluster_size) {
  STRATA_ASSIGN_OR_RETURN(uint64_t length, input->GetLength());
  uint64_t required = 0;
  for (uint64_t offset = 0; offset < length;) {
    BlockDriverState* node = input;
    STRATA_ASSIGN_OR_RETURN(BlockStatus s, node->GetBlockStatus(offset, length - offset));
    uint64_t run = std::max<uint64_t>(s.bytes, 1);
    while (!s.allocated && !s.zero && node->backing() != nullptr) {
      node = &node->backing()->node();
      STRATA_ASSIGN_OR_RETURN(uint64_t backing_len, node->GetLength());
      if (offset >= backing_len) {
        s = BlockStatus{};
        s.zero = true;
        break;
      }
      STRATA_ASSIGN_OR_RETURN(s, node->GetBlockStatus(offset, std::min(run, backing_len - offset)));
      run = std::min(run, std::max<uint64_t>(s.bytes, 1));
    }
    if (!s.zero && s.data) {
      run = AlignUp(offset + run, cluster_size) - offset;
      required += offset % cluster_size + run;
    }
    offset += run;
  }
  return required;
}

class Qcow2Driver : public BlockDriver {
 public:
  absl::string_view name() const override { return "qcow2"; }
  absl::string_view required_child() const override { return "file"; }
  DriverKind kind() const override { return DriverKind::kFormat; }
  bool supports_backing() const override { return true; }
  bool supports_compressed_writes() const override { return true; }

  int Probe(absl::Span<const uint8_t> header, absl::string_view) const override {
    // Any version: a version 1 image (QEMU's older "qcow" format, which strata does not
    // read) must be refused at open, never taken for raw and written over.
    if (header.size() >= 8 && LoadBe32(header.data()) == kMagic) return 100;
    return 0;
  }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    STRATA_ASSIGN_OR_RETURN(
        BdrvChild * file,
        ctx.OpenChild("file", ChildRole::kFile, ctx.options().qcow2().file(),
                      FormatChildPermissions(ctx.flags().read_only), ctx.flags()));
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Qcow2Instance> inst, Qcow2Instance::Open(ctx, file));
    // A dirty image opened for writing is checked and repaired first (not for a check
    // run, which reports and repairs on its own terms).
    if (!ctx.flags().read_only && !ctx.flags().check_mode) {
      STRATA_RETURN_IF_ERROR(inst->RepairIfDirty());
    }
    return std::unique_ptr<DriverInstance>(std::move(inst));
  }

  absl::StatusOr<MeasureResult> Measure(const MeasureRequest& request) const override {
    CreateRequest create;
    create.size_bytes = request.size_bytes;
    create.options = request.options;
    // measure takes a backing file and preallocation together (only create refuses them).
    std::string backing_file;
    if (auto it = create.options.find("backing_file"); it != create.options.end()) {
      backing_file = it->second;
      create.options.erase(it);
    }
    STRATA_ASSIGN_OR_RETURN(CreateParams p, ParseCreateOptions(create));
    p.backing_file = backing_file;
    const uint64_t cluster_size = uint64_t{1} << p.cluster_bits;
    uint64_t virtual_size = AlignUp(request.size_bytes, cluster_size);
    uint64_t required = 0;
    if (request.input != nullptr) {
      STRATA_ASSIGN_OR_RETURN(uint64_t length, request.input->GetLength());
      virtual_size = AlignUp(length, cluster_size);
      if (!p.backing_file.empty()) {
        required = virtual_size;  // nothing known to be shared with the new backing file
      } else {
        STRATA_ASSIGN_OR_RETURN(required, RequiredDataBytes(request.input, cluster_size));
      }
    }
    if (p.prealloc == PreallocMode::kFull || p.prealloc == PreallocMode::kFalloc) {
      required = virtual_size;
    }
    MeasureResult r;
    r.fully_allocated = FullyAllocatedBytes(virtual_size, cluster_size, p.refcount_order,
                                            p.extended_l2 ? 16 : 8);
    r.required = r.fully_allocated - virtual_size + required;
    // Bitmaps are counted when both sides could hold them: v3 output, qcow2 v3 input.
    r.has_bitmaps = false;
    if (p.version >= 3 && request.input != nullptr &&
        request.input->instance().SupportsDirtyBitmaps()) {
      // What convert --bitmaps would store: every bitmap's data clusters as if all were
      // dirty, its table, and the directory (QEMU's estimate, in the target's clusters).
      r.has_bitmaps = true;
      STRATA_ASSIGN_OR_RETURN(uint64_t length, request.input->GetLength());
      uint64_t directory = 0;
      for (const DirtyBitmapInfo& b : request.input->instance().ListDirtyBitmaps()) {
        const uint64_t bytes = DivRoundUp(DivRoundUp(length, b.granularity), uint64_t{8});
        const uint64_t clusters = DivRoundUp(bytes, cluster_size);
        r.bitmaps += clusters * cluster_size + AlignUp(clusters * 8, cluster_size);
        directory += BitmapDirectoryEntrySize(b.name.size(), 0);
      }
      r.bitmaps += AlignUp(directory, cluster_size);
    }
    return r;
  }

  std::vector<CreateOptionSpec> create_options() const override {
    return {
        {"encryption", "bool",
         "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)", ""},
        {"encrypt.format", "str", "Encrypt the image, format choices: 'aes', 'luks'", ""},
        {"encrypt.key-secret", "str", "ID of secret providing qcow AES key or LUKS passphrase",
         ""},
        {"encrypt.cipher-alg", "str", "Name of encryption cipher algorithm", ""},
        {"encrypt.cipher-mode", "str", "Name of encryption cipher mode", ""},
        {"encrypt.ivgen-alg", "str", "Name of IV generator algorithm", ""},
        {"encrypt.ivgen-hash-alg", "str", "Name of IV generator hash algorithm", ""},
        {"encrypt.hash-alg", "str", "Name of encryption hash algorithm", ""},
        {"encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds", ""},
        {"cluster_size", "size", "qcow2 cluster size", "65536"},
        {"extended_l2", "bool", "Extended L2 tables", "off"},
        {"preallocation", "str",
         "Preallocation mode (allowed values: off, metadata, falloc, full)", ""},
        {"compression_type", "str", "Compression method used for image cluster compression",
         "zlib"},
        {"size", "size", "Virtual disk size", ""},
        {"compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])", ""},
        {"backing_file", "str", "File name of a base image", ""},
        {"backing_fmt", "str", "Image format of the base image", ""},
        {"data_file", "str", "File name of an external data file", ""},
        {"data_file_raw", "bool", "The external data file must stay valid as a raw image", ""},
        {"lazy_refcounts", "bool", "Postpone refcount updates", "off"},
        {"refcount_bits", "num", "Width of a reference count entry in bits", "16"},
    };
  }

  // QEMU's qcow2 takes new cache sizes, lazy refcounts, discard passing, overlap checks
  // and encryption settings at reopen.
  bool CanChangeAtReopen(absl::string_view key) const override {
    static constexpr absl::string_view kMutable[] = {
        "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-size",
        "cache-clean-interval", "lazy-refcounts", "pass-discard-request",
        "pass-discard-snapshot", "pass-discard-other", "overlap-check"};
    static constexpr absl::string_view kOverlapParts[] = {
        "template",       "main-header",    "active-l1",   "active-l2",   "refcount-table",
        "refcount-block", "snapshot-table", "inactive-l1", "inactive-l2", "bitmap-directory"};
    for (absl::string_view k : kMutable) {
      if (key == k) return true;
    }
    if (absl::ConsumePrefix(&key, "overlap-check.")) {
      for (absl::string_view k : kOverlapParts) {
        if (key == k) return true;
      }
      return false;
    }
    return absl::StartsWith(key, "encrypt.") || BlockDriver::CanChangeAtReopen(key);
  }

  std::vector<CreateOptionSpec> amend_options() const override {
    // The create options an existing image can change (qcow2_amend.cc).
    std::vector<CreateOptionSpec> specs = create_options();
    specs.erase(std::remove_if(specs.begin(), specs.end(),
                               [](const CreateOptionSpec& o) {
                                 return o.name == "cluster_size" || o.name == "extended_l2" ||
                                        o.name == "preallocation" ||
                                        o.name == "compression_type" ||
                                        o.name == "encryption" || o.name == "encrypt.format" ||
                                        o.name == "encrypt.cipher-alg" ||
                                        o.name == "encrypt.cipher-mode" ||
                                        o.name == "encrypt.ivgen-alg" ||
                                        o.name == "encrypt.ivgen-hash-alg" ||
                                        o.name == "encrypt.hash-alg" ||
                                        o.name == "encrypt.key-secret";
                               }),
                specs.end());
    // LUKS key-slot management (qcow2_amend.cc); iter-time is already a create option.
    for (CreateOptionSpec& o : luks::KeySlotAmendOptions("encrypt.")) {
      if (o.name != "encrypt.iter-time") specs.push_back(std::move(o));
    }
    return specs;
  }

  // Creates the image; when a step after the files were made fails, deletes the image
  // file and the data file it made (local files only), as QEMU does: a failed create
  // leaves no half-made qcow2 behind ("create x 7E": too large, and no x).
  absl::Status Create(const CreateRequest& request) const override {
    STRATA_ASSIGN_OR_RETURN(CreateParams p, ParseCreateOptions(request));
    std::vector<std::string> made;
    absl::Status st = CreateFiles(request, p, &made);
    if (!st.ok()) {
      for (const std::string& path : made) ::unlink(path.c_str());
    }
    return st;
  }

 private:
  // Create's body. Appends to `made` each local file it creates, before writing to it.
  absl::Status CreateFiles(const CreateRequest& request, const CreateParams& p,
                           std::vector<std::string>* made) const {
    // The image goes where its filename says: a file, or a protocol (rbd:...).
    const BlockDriver* file_driver = DriverRegistry::Global().FindByPrefix(request.filename);
    if (file_driver == nullptr) file_driver = DriverRegistry::Global().Find("file");
    CreateRequest file_request;
    file_request.filename = request.filename;
    for (const char* key : {"nocow", "extent_size_hint"}) {
      if (auto it = request.options.find(key); it != request.options.end()) {
        file_request.options.insert(*it);
      }
    }
    STRATA_RETURN_IF_ERROR(file_driver->Create(file_request));
    if (file_driver->name() == "file") made->push_back(request.filename);
    if (!p.data_file.empty()) {
      // The data file is created empty; the image's resize below sizes it.
      const BlockDriver* data_driver = DriverRegistry::Global().FindByPrefix(p.data_file);
      if (data_driver == nullptr) data_driver = DriverRegistry::Global().Find("file");
      CreateRequest data_request;
      data_request.filename = p.data_file;
      STRATA_RETURN_IF_ERROR(data_driver->Create(data_request));
      if (data_driver->name() == "file") made->push_back(p.data_file);
    }
    STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct file_tree,
                            ProtocolTreeForFilename(request.filename));
    STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions file_opts,
                            BlockdevOptionsFromTree(file_tree));
    OpenFlags rw;
    {
      STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlockDriverState> file,
                              OpenGraph(file_opts, rw, FormatChildPermissions(false)));
      const uint64_t cs = uint64_t{1} << p.cluster_bits;
      Qcow2Header h;
      h.version = p.version;
      h.cluster_bits = p.cluster_bits;
      h.refcount_order = p.refcount_order;
      h.refcount_table_offset = cs;
      h.refcount_table_clusters = 1;
      h.compression_type = p.compression_type;
      if (p.compression_type != 0) h.incompatible_features |= kIncompatCompression;
      if (p.lazy_refcounts) h.compatible_features |= kCompatLazyRefcounts;
      if (p.extended_l2) h.incompatible_features |= kIncompatExtendedL2;
      if (!p.data_file.empty()) {
        h.incompatible_features |= kIncompatDataFile;
        h.set_data_file_name(p.data_file);
        if (p.data_file_raw) h.autoclear_features |= kAutoclearDataFileRaw;
      }
      h.backing_file = p.backing_file;
      h.backing_format = p.backing_fmt;
      STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> cluster0, SerializeHeader(h));
      std::vector<uint8_t> image(3 * cs, 0);
      std::copy(cluster0.begin(), cluster0.end(), image.begin());
      StoreBe64(&image[cs], 2 * cs);  // reftable[0] -> refblock at cluster 2
      // Refcount 1 for clusters 0..2 in the first refcount block.
      const uint32_t bits = 1u << p.refcount_order;
      for (int c = 0; c < 3; ++c) {
        if (bits >= 8) {
          image[2 * cs + (c + 1) * (bits / 8) - 1] = 1;
        } else {
          image[2 * cs + c / (8 / bits)] |= static_cast<uint8_t>(1u << ((c % (8 / bits)) * bits));
        }
      }
      STRATA_RETURN_IF_ERROR(file->Pwrite(0, image.size(), image.data()));
      STRATA_RETURN_IF_ERROR(file->Flush());
    }
    if (p.size == 0 && p.encrypt.method == kCryptNone) return absl::OkStatus();
    proto::BlockdevOptions qcow2_opts;
    qcow2_opts.set_driver("qcow2");
    *qcow2_opts.mutable_qcow2()->mutable_file()->mutable_options() = file_opts;
    OpenFlags no_backing = rw;
    no_backing.no_backing = true;
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlockDriverState> node,
                            OpenGraph(qcow2_opts, no_backing, PermissionSet{}));
    if (p.size > 0) {
      absl::Status grown = node->Truncate(p.size, false, p.prealloc);
      if (!grown.ok()) return Prefixed("Could not resize image", grown);
    }
    // Encryption last, as QEMU: the volume's clusters follow the preallocated ones.
    if (p.encrypt.method != kCryptNone) {
      auto* qcow2 = dynamic_cast<Qcow2Instance*>(&node->instance());
      if (qcow2 == nullptr) return ErrnoError(EIO, "qcow2: unexpected driver instance");
      STRATA_RETURN_IF_ERROR(qcow2->SetUpEncryption(p.encrypt));
    }
    return node->Close();
  }
};

STRATA_REGISTER_DRIVER(Qcow2Driver);

}  // namespace
}  // namespace strata::qcow2
