// strata blkdebug: the `blkdebug` filter driver. Passes every request to its `image`
// child unless an armed rule fails it, and turns debug events from the node above into
// rule actions: arming errors, switching states, suspending requests at breakpoints.
//
// Configured by `blkdebug:CONFIG:IMAGE` filenames, by `config`/`image` options, or by inline
// `inject-error` / `set-state` lists (blkdebug_config.h).
#include <cerrno>
#include <cstdio>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "aio/offload.h"
#include "blkdebug/blkdebug_config.h"
#include "blkdebug/blkdebug_rules.h"
#include "block/node_filename.h"
#include "block/diagnostics.h"
#include "block/graph_builder.h"
#include "block/node.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata::blkdebug {
namespace {

// One open blkdebug node. Thread-safe: the rule engine and the suspended-request list are
// guarded by `mu_`; a suspended request blocks its own thread on `mu_`'s condition, never
// holding `mu_` itself (it may hold locks of the nodes above, as QEMU's coroutines do).
// Its armed breakpoints and suspended requests count as aio parking points, so that no
// loop runs blocking work inline that may end up waiting at one (aio/offload.h).
class BlkdebugInstance : public DriverInstance, public DebugBreakpoints {
 public:
  BlkdebugInstance(BdrvChild* image, std::optional<uint32_t> align, uint64_t max_transfer,
                   uint64_t write_zero_align, uint64_t discard_align)
      : image_(image),
        align_(align),
        max_transfer_(max_transfer),
        write_zero_align_(write_zero_align),
        discard_align_(discard_align) {}
  ~BlkdebugInstance() override {
    absl::MutexLock lock(&mu_);
    aio::ParkingPoints::Add(-parking_points_);
  }

  // Adds the inject-error and set-state rules of `rules` (blkdebug_config.h).
  absl::Status LoadRules(const proto::BlkdebugOptions& rules) {
    absl::MutexLock lock(&mu_);
    return AddRules(rules, &engine_);
  }

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    STRATA_RETURN_IF_ERROR(Check(IoType::kRead, offset, bytes));
    return Split(offset, bytes, [&](uint64_t at, uint64_t n) {
      return image_->node().Preadv(at, n, qiov.Slice(at - offset, n), flags);
    });
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    STRATA_RETURN_IF_ERROR(Check(IoType::kWrite, offset, bytes));
    return Split(offset, bytes, [&](uint64_t at, uint64_t n) {
      return image_->node().Pwritev(at, n, qiov.Slice(at - offset, n), flags);
    });
  }
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    // QEMU refuses write-zeroes smaller than the alignment it advertises, so the layer
    // above falls back to writing zeroes.
    if (write_zero_align_ > 1 && (offset % write_zero_align_ || bytes % write_zero_align_)) {
      return ErrnoError(ENOTSUP);
    }
    STRATA_RETURN_IF_ERROR(Check(IoType::kWriteZeroes, offset, bytes));
    return image_->node().PwriteZeroes(offset, bytes, flags);
  }
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    if (discard_align_ > 1 && (offset % discard_align_ || bytes % discard_align_)) {
      return ErrnoError(ENOTSUP);
    }
    STRATA_RETURN_IF_ERROR(Check(IoType::kDiscard, offset, bytes));
    return image_->node().Pdiscard(offset, bytes);
  }
  // Flush rules apply where QEMU's blkdebug checks them: at the flush to disk, which the
  // node skips when nothing was written since the last one. The node flushes the image
  // child afterwards.
  absl::Status FlushToDisk() override { return Check(IoType::kFlush, 0, 0); }
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    return image_->node().Truncate(length, exact, prealloc);
  }
  absl::StatusOr<uint64_t> GetLength() override { return image_->node().GetLength(); }
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    STRATA_RETURN_IF_ERROR(Check(IoType::kBlockStatus, offset, bytes));
    return PassThroughStatus(&image_->node(), offset, bytes);
  }
  // QEMU's blkdebug does not say (a protocol driver without the hook): "disk size:
  // unavailable", for it and for a format node above it. Not ENOTSUP, which would make
  // the node sum its children's sizes instead.
  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    return ErrnoError(ENODATA, "blkdebug does not report the host size of its image");
  }
  uint32_t request_alignment() const override {
    return align_.value_or(image_->node().request_alignment());
  }

  bool WantsDebugEvents() const override { return true; }
  void HandleDebugEvent(DebugEvent event) override {
    absl::MutexLock lock(&mu_);
    for (std::string& tag : engine_.OnEvent(event)) {
      auto request = std::make_shared<Suspended>(Suspended{std::move(tag), false});
      suspended_.push_back(request);
      SyncParkingPoints();
      Diagnose(DiagnosticKind::kBreakpoint,
               absl::StrFormat("blkdebug: Suspended request '%s'", request->tag.c_str()));
      mu_.Await(absl::Condition(
          +[](Suspended* r) { return r->resumed; }, request.get()));
    }
  }

  DebugBreakpoints* debug_breakpoints() override { return this; }
  absl::Status AddBreakpoint(absl::string_view event, absl::string_view tag) override {
    std::optional<DebugEvent> e = ParseDebugEvent(event);
    if (!e.has_value()) return ErrnoError(ENOENT);
    absl::MutexLock lock(&mu_);
    engine_.AddBreakpoint(*e, std::string(tag));
    SyncParkingPoints();
    return absl::OkStatus();
  }
  absl::Status RemoveBreakpoint(absl::string_view tag) override {
    absl::MutexLock lock(&mu_);
    bool found = engine_.RemoveBreakpoints(tag);
    for (auto it = suspended_.begin(); it != suspended_.end();) {
      if ((*it)->tag == tag) {
        Release(**it);
        it = suspended_.erase(it);
        found = true;
      } else {
        ++it;
      }
    }
    SyncParkingPoints();
    return found ? absl::OkStatus() : ErrnoError(ENOENT);
  }
  absl::Status Resume(absl::string_view tag) override {
    absl::MutexLock lock(&mu_);
    for (auto it = suspended_.begin(); it != suspended_.end(); ++it) {
      if ((*it)->tag == tag) {
        Release(**it);
        suspended_.erase(it);
        SyncParkingPoints();
        return absl::OkStatus();
      }
    }
    return ErrnoError(ENOENT);
  }
  void ResumeAll() override {
    absl::MutexLock lock(&mu_);
    for (auto& r : suspended_) Release(*r);
    suspended_.clear();
    SyncParkingPoints();
  }
  bool IsSuspended(absl::string_view tag) override {
    absl::MutexLock lock(&mu_);
    for (const auto& r : suspended_) {
      if (r->tag == tag) return true;
    }
    return false;
  }
  int SuspendedCount() override {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(suspended_.size());
  }

 private:
  struct Suspended {
    std::string tag;
    bool resumed;
  };

  // Marks `r` resumed (its thread wakes when `mu_` is released). Prints what QEMU's
  // resumed coroutine prints, from the resuming side so the output order is fixed.
  void Release(Suspended& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Diagnose(DiagnosticKind::kBreakpoint,
             absl::StrFormat("blkdebug: Resuming request '%s'", r.tag.c_str()));
    r.resumed = true;
  }

  // Brings this node's share of the process's parking points up to date.
  void SyncParkingPoints() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int now = engine_.BreakpointCount() + static_cast<int>(suspended_.size());
    aio::ParkingPoints::Add(now - parking_points_);
    parking_points_ = now;
  }

  absl::Status Check(IoType type, uint64_t offset, uint64_t bytes) {
    absl::MutexLock lock(&mu_);
    int error = engine_.CheckRequest(type, offset, bytes);
    return error != 0 ? ErrnoError(error) : absl::OkStatus();
  }

  template <typename Fn>
  absl::Status Split(uint64_t offset, uint64_t bytes, Fn&& fn) {
    if (max_transfer_ == 0 || bytes <= max_transfer_) return fn(offset, bytes);
    for (uint64_t done = 0; done < bytes;) {
      uint64_t n = std::min(max_transfer_, bytes - done);
      STRATA_RETURN_IF_ERROR(fn(offset + done, n));
      done += n;
    }
    return absl::OkStatus();
  }

  BdrvChild* const image_;
  const std::optional<uint32_t> align_;
  const uint64_t max_transfer_;
  const uint64_t write_zero_align_;
  const uint64_t discard_align_;
  absl::Mutex mu_;
  RuleEngine engine_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Suspended>> suspended_ ABSL_GUARDED_BY(mu_);
  int parking_points_ ABSL_GUARDED_BY(mu_) = 0;  // counted in aio::ParkingPoints
};

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// A filename names the image as a protocol node (QEMU opens blkdebug's image child with
// protocol probing: "blkdebug::disk.qcow2" puts blkdebug under the qcow2 node).
absl::StatusOr<proto::BlockdevRef> RefForFilename(const std::string& filename) {
  STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree, ProtocolTreeForFilename(filename));
  proto::BlockdevRef ref;
  STRATA_ASSIGN_OR_RETURN(*ref.mutable_options(), BlockdevOptionsFromTree(tree));
  return ref;
}

class BlkdebugDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "blkdebug"; }
  absl::string_view required_child() const override { return "image"; }
  DriverKind kind() const override { return DriverKind::kFilter; }
  absl::string_view protocol_prefix() const override { return "blkdebug"; }
  std::vector<absl::string_view> strong_options() const override {
    return {"config",         "inject-error.", "set-state.",  "align",      "max-transfer",
            "opt-write-zero", "max-write-zero", "opt-discard", "max-discard"};
  }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::BlkdebugOptions& opts = ctx.options().blkdebug();
    std::string config = opts.config();
    std::string image_name = !opts.x_image().empty() ? opts.x_image() : opts.filename();
    if (!opts.x_filename().empty()) {
      // "blkdebug:CONFIG:IMAGE"; only the first colon after the prefix separates.
      absl::string_view rest = absl::string_view(opts.x_filename()).substr(strlen("blkdebug:"));
      size_t colon = rest.find(':');
      if (colon == absl::string_view::npos) {
        return ErrnoError(EINVAL, "blkdebug requires both config file and image path");
      }
      config = std::string(rest.substr(0, colon));
      image_name = std::string(rest.substr(colon + 1));
    }

    proto::BlkdebugOptions rules;
    if (opts.has_config() || !config.empty()) {
      STRATA_RETURN_IF_ERROR(ParseConfigFile(config, &rules));
    }
    rules.MergeFrom(opts);  // inline rules come after the file's (QEMU's order)

    std::optional<uint32_t> align;
    if (opts.has_align()) {
      if (!IsPowerOfTwo(opts.align()) || opts.align() > (1u << 30)) {
        return ErrnoError(EINVAL, "Cannot meet constraints with align " +
                                      absl::StrCat(opts.align()));
      }
      align = static_cast<uint32_t>(opts.align());
    }
    const uint64_t max_transfer = opts.max_transfer();
    if (max_transfer != 0 && align.has_value() && max_transfer % *align != 0) {
      return ErrnoError(EINVAL, absl::StrCat("Cannot meet constraints with max-transfer ",
                                             max_transfer));
    }

    proto::BlockdevRef image_ref;
    if (opts.has_image()) {
      image_ref = opts.image();
    } else if (!image_name.empty()) {
      STRATA_ASSIGN_OR_RETURN(image_ref, RefForFilename(image_name));
    }
    STRATA_ASSIGN_OR_RETURN(
        BdrvChild * image,
        ctx.OpenChild("image", ChildRole::kFiltered, image_ref,
                      PassThroughPermissions(ctx.flags().read_only), ctx.flags()));
    // QEMU's name for a blkdebug node given no strong option but its config file (and
    // its image): "blkdebug:CONFIG:IMAGE", as the short form would be written.
    if (!GivenStrongOptions(ctx.options(), {"config"}) && !image->node().filename().empty() &&
        !absl::StartsWith(image->node().filename(), "json:")) {
      ctx.node().set_filename(absl::StrCat("blkdebug:", config, ":", image->node().filename()));
    }
    auto instance = std::make_unique<BlkdebugInstance>(
        image, align, max_transfer, std::max<uint64_t>(opts.opt_write_zero(), align.value_or(1)),
        std::max<uint64_t>(opts.opt_discard(), align.value_or(1)));
    STRATA_RETURN_IF_ERROR(instance->LoadRules(rules));
    instance->HandleDebugEvent(DebugEvent::kNone);
    return instance;
  }
};

STRATA_REGISTER_DRIVER(BlkdebugDriver);

}  // namespace
}  // namespace strata::blkdebug
