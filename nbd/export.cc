// strata nbd: exports and their metadata contexts (see export.h).
#include "nbd/export.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "aio/offload.h"
#include "block/status.h"
#include "nbd/protocol.h"

namespace strata::nbd {

namespace {

// A reply carries at most this many extents; the client asks again for the rest.
constexpr size_t kMaxExtents = 64 * 1024;

// Appends a run, merging it into the last one when the flags agree.
void AddExtent(std::vector<Extent>* out, uint64_t length, uint32_t flags) {
  if (!out->empty() && out->back().flags == flags &&
      uint64_t{out->back().length} + length <= UINT32_MAX) {
    out->back().length += static_cast<uint32_t>(length);
    return;
  }
  out->push_back({static_cast<uint32_t>(length), flags});
}

}  // namespace

Export::Export(ExportOptions options, BlockBackend* backend, uint64_t size)
    : options_(std::move(options)), backend_(backend), size_(size) {
  contexts_.push_back(kBaseAllocation);
  if (options_.allocation_depth) contexts_.push_back(kQemuAllocationDepth);
  // qemu-nbd offers the -B bitmaps last given first.
  for (auto b = options_.bitmaps.rbegin(); b != options_.bitmaps.rend(); ++b) {
    contexts_.push_back(kQemuDirtyBitmapPrefix + *b);
  }
}

absl::StatusOr<BlockDriverState*> Export::BitmapNode(const std::string& name) const {
  for (BlockDriverState* node = &backend_->root(); node != nullptr;) {
    absl::StatusOr<std::vector<DriverInstance::DirtyRun>> probe =
        node->instance().GetDirtyRuns(name, 0, 0, 1);
    if (probe.ok()) return node;
    if (ErrnoOf(probe.status()) != ENOENT) {
      // Inconsistent: QEMU names the problem on one line (no hint).
      std::string message(probe.status().message());
      return ErrnoError(ErrnoOf(probe.status()), message.substr(0, message.find('\n')));
    }
    BdrvChild* backing = node->backing();
    node = backing != nullptr ? &backing->node() : nullptr;
  }
  return ErrnoError(ENOENT, absl::StrCat("Bitmap '", name, "' is not found"));
}

uint16_t Export::transmission_flags(bool structured) const {
  uint16_t flags = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendCache;
  if (structured) flags |= kFlagSendDf;
  if (options_.read_only) {
    flags |= kFlagReadOnly;
  } else {
    flags |= kFlagSendTrim | kFlagSendWriteZeroes | kFlagSendFastZero;
  }
  if (options_.multi_conn) flags |= kFlagCanMultiConn;
  return flags;
}

uint32_t Export::max_block() const { return kMaxBufferSize; }

aio::Task<absl::StatusOr<std::vector<Extent>>> Export::CoExtents(uint32_t context_id,
                                                                 uint64_t offset,
                                                                 uint64_t length,
                                                                 bool one) const {
  co_return co_await aio::Offload(
      [this, context_id, offset, length, one] { return Extents(context_id, offset, length, one); });
}

absl::StatusOr<std::vector<Extent>> Export::Extents(uint32_t context_id, uint64_t offset,
                                                    uint64_t length, bool one) const {
  if (context_id >= contexts_.size()) return ErrnoError(EINVAL, "unknown metadata context");
  offset += options_.offset;
  const std::string& context = contexts_[context_id];
  if (context == kBaseAllocation) return AllocationExtents(offset, length, one);
  if (context == kQemuAllocationDepth) return DepthExtents(offset, length, one);
  return BitmapExtents(context.substr(strlen(kQemuDirtyBitmapPrefix)), offset, length, one);
}

absl::StatusOr<std::vector<Extent>> Export::AllocationExtents(uint64_t offset,
                                                              uint64_t length,
                                                              bool one) const {
  std::vector<Extent> out;
  const uint64_t end = offset + length;
  while (offset < end && out.size() < kMaxExtents) {
    STRATA_ASSIGN_OR_RETURN(BlockStatus s,
                            backend_->root().GetBlockStatusAbove(offset, end - offset));
    if (s.bytes == 0) break;  // the image is shorter than it said: stop at its end
    const uint64_t run = std::min(s.bytes, end - offset);
    const uint32_t flags = (s.data ? 0 : kStateHole) | (s.zero ? kStateZero : 0);
    AddExtent(&out, run, flags);
    offset += run;
    if (one) break;
  }
  if (out.empty()) return ErrnoError(EIO, "no block status");
  return out;
}

absl::StatusOr<std::vector<Extent>> Export::DepthExtents(uint64_t offset, uint64_t length,
                                                         bool one) const {
  std::vector<Extent> out;
  const uint64_t end = offset + length;
  while (offset < end && out.size() < kMaxExtents) {
    uint64_t run = end - offset;
    uint32_t depth = 0;
    uint32_t level = 1;
    for (BlockDriverState* node = &backend_->root(); node != nullptr; ++level) {
      bool allocated = false;
      STRATA_ASSIGN_OR_RETURN(uint64_t n, node->IsAllocated(offset, run, &allocated));
      if (n == 0) break;
      run = std::min(run, n);
      if (allocated) {
        depth = level;
        break;
      }
      BdrvChild* backing = node->backing();
      node = backing != nullptr ? &backing->node() : nullptr;
    }
    AddExtent(&out, run, depth);
    offset += run;
    if (one) break;
  }
  if (out.empty()) return ErrnoError(EIO, "no block status");
  return out;
}

absl::StatusOr<std::vector<Extent>> Export::BitmapExtents(const std::string& bitmap,
                                                          uint64_t offset, uint64_t length,
                                                          bool one) const {
  STRATA_ASSIGN_OR_RETURN(BlockDriverState * node, BitmapNode(bitmap));
  STRATA_ASSIGN_OR_RETURN(std::vector<DriverInstance::DirtyRun> runs,
                          node->instance().GetDirtyRuns(bitmap, offset, length,
                                                        one ? 1 : kMaxExtents));
  std::vector<Extent> out;
  for (const DriverInstance::DirtyRun& r : runs) {
    for (uint64_t left = r.bytes; left > 0;) {
      const uint64_t n = std::min<uint64_t>(left, UINT32_MAX & ~uint64_t{511});
      AddExtent(&out, n, r.dirty ? kStateDirty : 0);
      left -= n;
    }
  }
  if (one && out.size() > 1) out.resize(1);
  if (out.empty()) return ErrnoError(EIO, "no block status");
  return out;
}

}  // namespace strata::nbd
