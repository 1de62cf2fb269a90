// strata: the commit block job (see commit_job.h).
#include "block/commit_job.h"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/time/clock.h"
#include "block/buffer_pool.h"
#include "block/copy_pipeline.h"
#include "block/io_vector.h"
#include "block/status.h"

namespace strata {
namespace {

// Size of one copy step (and the granularity of progress reports and cancellation).
constexpr uint64_t kPieceBytes = 1 << 20;
// Pieces in flight at once.
constexpr int kParallelPieces = 4;

// The topmost image of `above` that has [offset, offset + *bytes) allocated, or nullptr;
// shortens *bytes to the run over which that answer holds for every image consulted.
absl::StatusOr<BlockDriverState*> SourceOf(const std::vector<BlockDriverState*>& above,
                                           uint64_t offset, uint64_t* bytes) {
  for (BlockDriverState* image : above) {
    STRATA_ASSIGN_OR_RETURN(uint64_t image_len, image->GetLength());
    if (offset >= image_len) continue;  // a shorter image holds nothing there
    bool allocated = false;
    STRATA_ASSIGN_OR_RETURN(uint64_t run,
                            image->IsAllocated(offset, std::min(*bytes, image_len - offset),
                                               &allocated));
    if (run == 0) return ErrnoError(EIO, "Block status returned an empty run");
    *bytes = std::min(*bytes, run);
    if (allocated) return image;
  }
  return nullptr;
}

}  // namespace

absl::Status RunCommit(const CommitRequest& request) {
  if (request.above.empty() || request.base == nullptr) {
    return ErrnoError(EINVAL, "Commit needs a top image and a base");
  }
  BlockDriverState* top = request.above.front();
  BlockDriverState* base = request.base;
  STRATA_ASSIGN_OR_RETURN(uint64_t length, top->GetLength());
  STRATA_ASSIGN_OR_RETURN(uint64_t base_length, base->GetLength());
  if (base_length < length) {
    STRATA_RETURN_IF_ERROR(Prefixed("Top image is larger than base image, and resizing the "
                                    "base image failed",
                                    base->Truncate(length, /*exact=*/false)));
  }
  const uint64_t base_cluster = std::max<uint64_t>(
      base->instance().GetInfo().cluster_size_bytes, 1);
  const absl::Time start = absl::Now();
  uint64_t copied = 0;  // touched only in the ordered part of each piece
  // Pieces are read in parallel and written in order (see copy_pipeline.h), so the base
  // gets its clusters in the same order as a serial copy, with several requests in flight.
  const uint64_t pieces = (length + kPieceBytes - 1) / kPieceBytes;
  BufferPool buffers(kPieceBytes);
  auto copy_piece = [&](uint64_t index, const std::function<void()>& wait_turn) -> absl::Status {
    if (request.cancel != nullptr && request.cancel->load()) return ErrnoError(ECANCELED);
    const uint64_t piece_end = std::min(length, (index + 1) * kPieceBytes);
    struct Run {
      uint64_t offset, bytes;
      bool zero;
    };
    std::vector<Run> runs;
    BufferPool::Lease buffer = buffers.Take();  // bytes not read below are not written
    for (uint64_t offset = index * kPieceBytes; offset < piece_end;) {
      uint64_t bytes = piece_end - offset;
      STRATA_ASSIGN_OR_RETURN(BlockDriverState * source, SourceOf(request.above, offset, &bytes));
      if (source != nullptr) {
        STRATA_ASSIGN_OR_RETURN(BlockStatus status, source->GetBlockStatus(offset, bytes));
        bytes = std::min(bytes, status.bytes);
        const bool zero = status.zero && !status.data && offset % base_cluster == 0 &&
                          bytes % base_cluster == 0;
        if (!zero) {
          STRATA_RETURN_IF_ERROR(source->Pread(offset, bytes,
                                               buffer.data() + offset % kPieceBytes));
        }
        runs.push_back({offset, bytes, zero});
      }
      offset += bytes;
    }
    wait_turn();
    if (request.cancel != nullptr && request.cancel->load()) return ErrnoError(ECANCELED);
    for (const Run& run : runs) {
      if (run.zero) {
        STRATA_RETURN_IF_ERROR(base->PwriteZeroes(run.offset, run.bytes, kReqMayUnmap));
      } else {
        STRATA_RETURN_IF_ERROR(
            base->Pwrite(run.offset, run.bytes, buffer.data() + run.offset % kPieceBytes));
      }
      copied += run.bytes;
      if (request.rate_limit > 0) {
        // Sleep until the average since the start is within the limit.
        absl::Duration due = absl::Seconds(static_cast<double>(copied) / request.rate_limit);
        absl::Duration elapsed = absl::Now() - start;
        if (due > elapsed) absl::SleepFor(due - elapsed);
      }
    }
    if (request.progress) request.progress(piece_end, length);
    return absl::OkStatus();
  };
  // A rate limit wants one request at a time.
  const int workers = request.rate_limit > 0 ? 1 : kParallelPieces;
  STRATA_RETURN_IF_ERROR(RunCopyPipeline(pieces, workers, /*in_order=*/true, copy_piece));
  return base->Flush();
}

}  // namespace strata
