// strata: the `raw` format driver: the guest sees the file (or a window of it, with the
// `offset` and `size` options) unchanged. Everything passes through to the `file` child.
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "aio/offload.h"
#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

// A window [offset, offset + size) of the child. Stateless after open: thread-safe.
class RawInstance : public DriverInstance {
 public:
  RawInstance(BdrvChild* file, uint64_t offset, std::optional<uint64_t> size, bool probed)
      : file_(file), offset_(offset), size_(size), probed_(probed) {}

  // Snapshots are the file's (QEMU falls back to the file for a driver without its own:
  // rbd snapshots through a raw node).
  absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() override {
    return file_->node().instance().ListSnapshots();
  }
  absl::Status CreateSnapshot(const std::string& name) override {
    return file_->node().instance().CreateSnapshot(name);
  }
  absl::Status DeleteSnapshot(const std::string& name) override {
    return file_->node().instance().DeleteSnapshot(name);
  }
  absl::Status ApplySnapshot(const std::string& name) override {
    return file_->node().instance().ApplySnapshot(name);
  }

  // QEMU's raw asks its file (an rbd file has a cluster size: its object size).
  DriverInfo GetInfo() override {
    const DriverInfo file = file_->node().instance().GetInfo();
    DriverInfo info;
    info.available = file.available;
    info.cluster_size_bytes = file.cluster_size_bytes;
    return info;
  }

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    STRATA_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    return file_->node().Preadv(offset_ + offset, bytes, qiov, flags);
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    STRATA_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    if (probed_ && offset < kProbeSector && bytes > 0) {
      // Check and write as one step, so two writes to sector 0 cannot race past the check.
      absl::MutexLock lock(&sector0_mu_);
      STRATA_RETURN_IF_ERROR(CheckSector0Write(offset, bytes, qiov));
      return file_->node().Pwritev(offset_ + offset, bytes, qiov, flags);
    }
    return file_->node().Pwritev(offset_ + offset, bytes, qiov, flags);
  }
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override {
    STRATA_CO_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    co_return co_await file_->node().CoPreadv(offset_ + offset, bytes, qiov, flags);
  }
  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override {
    if (probed_ && offset < kProbeSector && bytes > 0) {
      // The sector-0 check reads and holds a lock across the write: the synchronous path.
      co_return co_await aio::Offload([&] { return Pwritev(offset, bytes, qiov, flags); });
    }
    STRATA_CO_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    co_return co_await file_->node().CoPwritev(offset_ + offset, bytes, qiov, flags);
  }
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    STRATA_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    return file_->node().PwriteZeroes(offset_ + offset, bytes, flags);
  }
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    STRATA_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    return file_->node().Pdiscard(offset_ + offset, bytes);
  }
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                         uint32_t flags) override {
    STRATA_CO_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    co_return co_await file_->node().CoPwriteZeroes(offset_ + offset, bytes, flags);
  }
  aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes) override {
    STRATA_CO_RETURN_IF_ERROR(CheckWindow(offset, bytes));
    co_return co_await file_->node().CoPdiscard(offset_ + offset, bytes);
  }
  // No cache of its own to write back.
  aio::Task<absl::Status> CoFlushToOs() override { co_return absl::OkStatus(); }
  // No disk of its own (the file's flush follows): nothing to hand to the pool.
  aio::Task<absl::Status> CoFlushToDisk() override { co_return absl::OkStatus(); }
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    if (size_.has_value() || offset_ != 0) {
      return ErrnoError(ENOTSUP, "Cannot resize fixed-size raw disks");
    }
    return file_->node().Truncate(length, exact, prealloc);
  }
  absl::StatusOr<uint64_t> GetLength() override {
    if (size_.has_value()) return *size_;
    STRATA_ASSIGN_OR_RETURN(uint64_t len, file_->node().GetLength());
    return len < offset_ ? 0 : len - offset_;
  }
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    return PassThroughStatus(&file_->node(), offset_ + offset, bytes);
  }
  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    return file_->node().AllocatedFileSize();
  }
  uint32_t request_alignment() const override { return 1; }

 private:
  // Bytes of the first sector a format probe looks at (QEMU's BLOCK_PROBE_BUF_SIZE).
  static constexpr uint64_t kProbeSector = 512;

  // An image whose format was probed must not become another format by a guest write:
  // refuses (EPERM) a write after which the first sector would probe as non-raw.
  absl::Status CheckSector0Write(uint64_t offset, uint64_t bytes, const IoVector& qiov) {
    STRATA_ASSIGN_OR_RETURN(uint64_t length, GetLength());
    std::vector<uint8_t> sector(std::min<uint64_t>(kProbeSector, std::max(length, offset + bytes)));
    const uint64_t existing = std::min<uint64_t>(sector.size(), length);
    if (existing > 0) {
      STRATA_RETURN_IF_ERROR(file_->node().Pread(offset_, existing, sector.data()));
    }
    const uint64_t n = std::min<uint64_t>(bytes, sector.size() - offset);
    qiov.CopyTo(0, sector.data() + offset, n);
    const BlockDriver* probed = DriverRegistry::Global().ProbeFormat(sector, "");
    if (probed != nullptr && probed->name() != "raw") return ErrnoError(EPERM);
    return absl::OkStatus();
  }

  absl::Status CheckWindow(uint64_t offset, uint64_t bytes) {
    if (size_.has_value() && (offset > *size_ || bytes > *size_ - offset)) {
      return ErrnoError(EIO);
    }
    return absl::OkStatus();
  }

  BdrvChild* const file_;
  const uint64_t offset_;
  const std::optional<uint64_t> size_;
  const bool probed_;
  absl::Mutex sector0_mu_;
};

// The raw format: probes with the lowest score, so any other format wins.
class RawDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "raw"; }
  absl::string_view required_child() const override { return "file"; }
  DriverKind kind() const override { return DriverKind::kFormat; }
  std::vector<absl::string_view> strong_options() const override { return {"offset", "size"}; }
  int Probe(absl::Span<const uint8_t>, absl::string_view) const override { return 1; }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::RawOptions& opts = ctx.options().raw();
    OpenFlags child_flags = ctx.flags();
    child_flags.format_probed = false;
    STRATA_ASSIGN_OR_RETURN(
        BdrvChild * file,
        ctx.OpenChild("file", ChildRole::kFile, opts.file(),
                      PassThroughPermissions(ctx.flags().read_only), child_flags));
    STRATA_ASSIGN_OR_RETURN(uint64_t file_len, file->node().GetLength());
    uint64_t offset = opts.offset();
    std::optional<uint64_t> size;
    if (opts.has_size()) size = opts.size();
    // QEMU's checks, in its order: the offset, the sum, then the size's alignment.
    if (offset > file_len) {
      return ErrnoError(EINVAL, absl::StrCat("Offset (", offset, ") cannot be greater than "
                                             "size of the containing file (", file_len, ")"));
    }
    if (size.has_value() && *size > file_len - offset) {
      return ErrnoError(EINVAL, absl::StrCat("The sum of offset (", offset, ") and size (",
                                             *size,
                                             ") has to be smaller or equal to the  actual "
                                             "size of the containing file (",
                                             file_len, ")"));
    }
    if (size.has_value() && *size % 512 != 0) {
      return ErrnoError(EINVAL, "Specified size is not multiple of 512");
    }
    return std::make_unique<RawInstance>(file, offset, size, ctx.flags().format_probed);
  }

  std::vector<CreateOptionSpec> create_options() const override {
    return {{"size", "size", "Virtual disk size", ""}};
  }

  // A raw image holds exactly its virtual size (QEMU counts it all as required).
  absl::StatusOr<MeasureResult> Measure(const MeasureRequest& request) const override {
    for (const auto& [key, value] : request.options) {
      // The file protocol's options are accepted with the format's, as QEMU merges them.
      if (key != "size" && key != "preallocation" && key != "nocow" &&
          key != "extent_size_hint") {
        return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'"));
      }
    }
    uint64_t size = request.size_bytes;
    if (request.input != nullptr) {
      STRATA_ASSIGN_OR_RETURN(size, request.input->GetLength());
    }
    MeasureResult r;
    r.required = r.fully_allocated = (size + 511) / 512 * 512;
    return r;
  }

  absl::Status Create(const CreateRequest& request) const override {
    // The protocol the filename names (rbd:..., nbd://...), else a file.
    const BlockDriver* protocol = DriverRegistry::Global().FindByPrefix(request.filename);
    if (protocol == nullptr) protocol = DriverRegistry::Global().Find("file");
    if (protocol == nullptr) return ErrnoError(ENOTSUP, "Unknown protocol 'file'");
    return protocol->Create(request);
  }
};

STRATA_REGISTER_DRIVER(RawDriver);

}  // namespace
}  // namespace strata
