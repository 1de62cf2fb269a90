// strata: the `copy-on-read` filter driver (QEMU's driver=copy-on-read). Reads through it
// copy what they find below its `file` node into that node (block/copy_on_read.h), down
// to the `bottom` node when one is named; everything else passes through unchanged.
#include <cerrno>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "block/copy_on_read.h"
#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

// The filter's state: its child and the copier. Requests may come from any thread; data
// changing ones hold the copier's lock shared, so that no copy writes older data over
// them (copy_on_read.h). The coroutine hooks are the default: offloaded to the pool.
class CopyOnReadInstance : public DriverInstance {
 public:
  CopyOnReadInstance(BdrvChild* file, BlockDriverState* bottom)
      : file_(file), copier_(file->node(), bottom) {}

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    return copier_.Preadv(offset, bytes, qiov, flags);
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    absl::ReaderMutexLock after_copies(&copier_.serial());
    return file_->node().Pwritev(offset, bytes, qiov, flags);
  }
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    absl::ReaderMutexLock after_copies(&copier_.serial());
    return file_->node().PwriteZeroes(offset, bytes, flags);
  }
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    absl::ReaderMutexLock after_copies(&copier_.serial());
    return file_->node().Pdiscard(offset, bytes);
  }
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    absl::ReaderMutexLock after_copies(&copier_.serial());
    return file_->node().Truncate(length, exact, prealloc);
  }
  absl::StatusOr<uint64_t> GetLength() override { return file_->node().GetLength(); }
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    return PassThroughStatus(&file_->node(), offset, bytes);
  }
  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    return file_->node().AllocatedFileSize();
  }
  uint32_t request_alignment() const override { return file_->node().request_alignment(); }
  // QEMU's filter reports its child's cluster size and vm state offset, and no format
  // specific information.
  DriverInfo GetInfo() override { return file_->node().GetInfo(); }

 private:
  BdrvChild* const file_;
  CopyOnRead copier_;
};

// The node named `name` if it is `top` or lies in its backing chain; an error otherwise.
absl::StatusOr<BlockDriverState*> FindBottom(BlockDriverState& top, const std::string& name) {
  BlockDriverState* named = top.FindNodeNamed(name);
  if (named == nullptr) {
    return ErrnoError(EINVAL, absl::StrCat("Bottom node '", name, "' not found"));
  }
  for (BlockDriverState* n = &top; n != nullptr;
       n = n->backing() != nullptr ? &n->backing()->node() : nullptr) {
    if (n == named) return named;
  }
  // QEMU 7.2 loops forever here (a bottom that is, say, the protocol node of `file`).
  return ErrnoError(EINVAL, absl::StrCat("Bottom node '", name,
                                         "' is not in the backing chain of the filtered node"));
}

class CopyOnReadDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "copy-on-read"; }
  absl::string_view required_child() const override { return "file"; }
  DriverKind kind() const override { return DriverKind::kFilter; }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::CopyOnReadOptions& opts = ctx.options().copy_on_read();
    // Copies write, so the filter needs a writable child (QEMU takes WRITE_UNCHANGED).
    if (ctx.flags().read_only) return ErrnoError(EACCES, "Block node is read-only");
    STRATA_ASSIGN_OR_RETURN(BdrvChild * file,
                            ctx.OpenChild("file", ChildRole::kFiltered, opts.file(),
                                          PassThroughPermissions(false), ctx.flags()));
    BlockDriverState* bottom = nullptr;
    if (!opts.bottom().empty()) {
      STRATA_ASSIGN_OR_RETURN(bottom, FindBottom(file->node(), opts.bottom()));
    }
    return std::make_unique<CopyOnReadInstance>(file, bottom);
  }
};

STRATA_REGISTER_DRIVER(CopyOnReadDriver);

}  // namespace
}  // namespace strata
