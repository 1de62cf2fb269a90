// strata: copy-on-read (see copy_on_read.h).
#include "block/copy_on_read.h"

#include <algorithm>
#include <vector>

#include "block/status.h"

namespace strata {
namespace {

// The most one copy step reads and writes at a time (a bounce buffer of this size). QEMU
// copies in steps of this size too, and a step all zeroes becomes a zero write while one
// with any data is written whole as data, so the step decides the layout: kept equal.
constexpr uint64_t kMaxCopyBytes = uint64_t{16} << 20;

}  // namespace

uint64_t CopyOnRead::Granularity(BlockDriverState& node) {
  const uint64_t cluster = node.GetInfo().cluster_size_bytes;
  if (cluster != 0) return cluster;
  return std::max<uint64_t>(512, node.request_alignment());
}

absl::Status CopyOnRead::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                uint32_t flags) {
  if (bytes == 0) return absl::OkStatus();
  absl::MutexLock lock(&serial_);
  if (bottom_ == nullptr) return CopyAndRead(offset, bytes, qiov, 0, flags);
  // Split the request where the chain's allocation changes: the parts allocated in the
  // top or only below the bottom are read through; the rest is copied (QEMU splits the
  // same way, then widens each copied part to whole clusters).
  const uint64_t end = offset + bytes;
  for (uint64_t pos = offset; pos < end;) {
    bool in_top = false;
    STRATA_ASSIGN_OR_RETURN(uint64_t run, top_.IsAllocated(pos, end - pos, &in_top));
    if (run == 0) return ErrnoError(EIO, "Allocation status ends before the image does");
    bool copy = false;
    if (!in_top) {
      STRATA_ASSIGN_OR_RETURN(run, AllocatedDownToBottom(pos, run, &copy));
    }
    if (copy) {
      STRATA_RETURN_IF_ERROR(CopyAndRead(pos, run, qiov, pos - offset, flags));
    } else {
      STRATA_RETURN_IF_ERROR(top_.Preadv(pos, run, qiov.Slice(pos - offset, run), flags));
    }
    pos += run;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CopyOnRead::AllocatedDownToBottom(uint64_t offset, uint64_t bytes,
                                                           bool* allocated) {
  *allocated = false;
  // A bottom that is the top itself leaves nothing below to copy. (QEMU 7.2 walks the
  // whole chain then, and crashes on a range allocated nowhere.)
  if (bottom_ == &top_) return bytes;
  for (BdrvChild* link = top_.backing(); link != nullptr; link = link->node().backing()) {
    BlockDriverState& node = link->node();
    bool here = false;
    STRATA_ASSIGN_OR_RETURN(const uint64_t run, node.IsAllocated(offset, bytes, &here));
    if (run == 0) return bytes;  // the node is shorter: reads there give zeroes
    bytes = run;
    if (here) {
      *allocated = true;
      return bytes;
    }
    if (&node == bottom_) break;
  }
  return bytes;
}

absl::Status CopyOnRead::CopyAndRead(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                     uint64_t qiov_offset, uint32_t flags) {
  STRATA_ASSIGN_OR_RETURN(const uint64_t length, top_.GetLength());
  const uint64_t unit = unit_;
  const uint64_t end = offset + bytes;
  const uint64_t copy_end = std::min(length, (end + unit - 1) / unit * unit);
  std::vector<uint8_t> bounce;
  for (uint64_t pos = offset / unit * unit; pos < copy_end;) {
    bool allocated = false;
    STRATA_ASSIGN_OR_RETURN(uint64_t run,
                            top_.IsAllocated(pos, std::min(copy_end - pos, kMaxCopyBytes),
                                             &allocated));
    if (run == 0) break;  // the end of the node
    // The part of this run the caller asked for.
    const uint64_t want_begin = std::max(pos, offset), want_end = std::min(pos + run, end);
    const uint64_t into = qiov_offset + (want_begin - offset);
    if (allocated) {
      if (want_begin < want_end) {
        STRATA_RETURN_IF_ERROR(top_.Preadv(want_begin, want_end - want_begin,
                                           qiov.Slice(into, want_end - want_begin), flags));
      }
    } else {
      bounce.resize(run);
      STRATA_RETURN_IF_ERROR(top_.Pread(pos, run, bounce.data()));
      if (BufferIsZero(bounce.data(), run)) {
        STRATA_RETURN_IF_ERROR(top_.PwriteZeroes(pos, run, kReqNone));
      } else {
        STRATA_RETURN_IF_ERROR(top_.Pwrite(pos, run, bounce.data(), kReqNone));
      }
      if (want_begin < want_end) {
        qiov.CopyFrom(into, bounce.data() + (want_begin - pos), want_end - want_begin);
      }
    }
    pos += run;
  }
  return absl::OkStatus();
}

}  // namespace strata
