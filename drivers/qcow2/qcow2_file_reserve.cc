// strata qcow2: the file tail reservation (see qcow2_file_reserve.h).
#include "drivers/qcow2/qcow2_file_reserve.h"

#include <algorithm>
#include <cerrno>

#include "block/node.h"
#include "block/status.h"

namespace strata::qcow2 {
namespace {
constexpr uint64_t kMinStep = uint64_t{1} << 20;
constexpr uint64_t kMaxStep = uint64_t{128} << 20;
constexpr uint64_t kAlign = uint64_t{1} << 20;
}  // namespace

aio::Task<absl::Status> FileTailReservation::CoCover(uint64_t end) {
  if (disabled_ || end <= known_length_) co_return absl::OkStatus();
  absl::StatusOr<uint64_t> length = file_->node().GetLength();  // a size query, no data I/O
  if (!length.ok()) co_return absl::OkStatus();
  known_length_ = *length;
  if (end <= known_length_) co_return absl::OkStatus();
  const uint64_t step = std::clamp(known_length_, kMinStep, kMaxStep);
  const uint64_t new_end = (end + step + kAlign - 1) / kAlign * kAlign;
  absl::Status s = co_await file_->node().CoPwriteZeroes(known_length_, new_end - known_length_,
                                                         kReqNoFallback);
  // Only a file that really reached new_end is covered: a protocol may refuse zeroes
  // past its end (librbd fails them with EIO) or accept them without growing. Believing
  // it grew would let allocations below new_end be written past the real end, and a
  // later extension zero them while their writes are in flight. So any failure, or a
  // length short of new_end, turns the reservation off for good: with it off, nothing is
  // ever zeroed here, and allocations grow the file by their own writes.
  absl::StatusOr<uint64_t> grown = s.ok() ? file_->node().GetLength() : s;
  if (grown.ok() && *grown >= new_end) {
    known_length_ = new_end;
    extended_ = true;
  } else {
    disabled_ = true;
  }
  co_return absl::OkStatus();
}

absl::Status FileTailReservation::Trim(uint64_t used_end) {
  if (!extended_) return absl::OkStatus();
  const uint64_t target = std::max(used_end, floor_);
  STRATA_ASSIGN_OR_RETURN(uint64_t length, file_->node().GetLength());
  if (length > target) {
    STRATA_RETURN_IF_ERROR(file_->node().Truncate(target, /*exact=*/false, PreallocMode::kOff));
  }
  known_length_ = target;
  extended_ = false;
  return absl::OkStatus();
}

}  // namespace strata::qcow2
