// strata/commit.h (public API): the commit job (qemu-img commit, QEMU's block-commit):
// copies what the upper images of a backing chain hold into the image below them.
//
//   strata::CommitSpec c;
//   c.above = {top->root()};      // opened with no_backing, top first
//   c.base = base->root();        // writable
//   absl::Status s = strata::Commit(c);
//   if (s.ok()) s = top->root().MakeEmpty();    // optional: drop what was committed
//
// The job copies every range allocated in an image above the base as the topmost image
// holding it has it (zero ranges as write-zeroes where they align with the base's
// clusters), grows the base to the top's size first if it is smaller, and flushes the
// base. On failure the base holds each range old or committed; the images above are
// unchanged. Runs on the calling thread (with helper threads of its own).
#ifndef STRATA_STRATA_COMMIT_H_
#define STRATA_STRATA_COMMIT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "strata/node.h"

namespace strata {

struct CommitSpec {
  // The images above the base, top first; the last one's backing file is the base.
  std::vector<Node> above;
  Node base;
  // Bytes per second to copy at most; 0 = unlimited.
  uint64_t rate_limit = 0;
  // Called after each piece with the bytes of the top processed and the total. Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Checked between pieces; when it becomes true the job stops with ECANCELED. Optional.
  const std::atomic<bool>* cancel = nullptr;
};

absl::Status Commit(const CommitSpec& spec);

}  // namespace strata

#endif  // STRATA_STRATA_COMMIT_H_
