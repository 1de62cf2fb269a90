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
    if (allocated) {
      if (want_begin < want_end) {
        STRATA_RETURN_IF_ERROR(top_.Preadv(want_begin, want_end - want_begin,
                                           qiov.Slice(want_begin - offset, want_end - want_begin),
                                           flags));
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
        qiov.CopyFrom(want_begin - offset, bounce.data() + (want_begin - pos),
                      want_end - want_begin);
      }
    }
    pos += run;
  }
  return absl::OkStatus();
}

}  // namespace strata
