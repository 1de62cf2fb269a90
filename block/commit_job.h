// strata: the commit block job: copy what a backing chain's upper images hold into the
// image below them (qemu-img commit, QEMU's block-commit).
//
// The caller opens the images: the ones above the base (top first, each opened on its
// own without its backing file, so that reading an allocated range reads that image) and
// the base, writable. The job copies every range allocated in any image above the base,
// as the topmost image holding it has it: data is read and written, ranges that read as
// zeroes without data (zero clusters) and align with the base's clusters are written as
// write-zeroes. Nothing else in the base is touched. It then flushes the base. Emptying
// the top (MakeEmpty) is the caller's next step, after a successful commit only.
#ifndef STRATA_BLOCK_COMMIT_JOB_H_
#define STRATA_BLOCK_COMMIT_JOB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "block/node.h"

namespace strata {

struct CommitRequest {
  // The images above the base, top first; the last one's backing file is the base.
  std::vector<BlockDriverState*> above;
  BlockDriverState* base = nullptr;
  // Bytes per second to copy at most; 0 = unlimited.
  uint64_t rate_limit = 0;
  // Called after each piece with the bytes of the top's virtual size processed so far and
  // the total (its virtual size). Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Checked between pieces; when it becomes true the job stops with ECANCELED. Optional.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs the commit to completion (or the first error, or cancellation). Grows the base to
// the top's virtual size first if it is smaller. On failure the base holds a mix of old
// and committed ranges, each range old or new (the images above are unchanged).
absl::Status RunCommit(const CommitRequest& request);

}  // namespace strata

#endif  // STRATA_BLOCK_COMMIT_JOB_H_
