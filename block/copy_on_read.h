// strata: copy-on-read (QEMU's qemu-io -C, open -C): a read first copies what it would
// find outside the top node (in a backing node, or nowhere: zeroes) into the top node,
// whole clusters at a time, so that later reads are served by the top image alone.
// Copied zeroes are written as a zero write (a qcow2 zero cluster), data as data, as
// QEMU does. With a bottom node (the copy-on-read filter's `bottom` option), only ranges
// allocated in the backing chain from the top's backing node down to the bottom node
// (inclusive) are copied; the rest is read through, not copied.
//
// Ordering: a copy reads old data and writes it back. A guest write to the same clusters
// landing in between would be overwritten by the older data, so copies and data-changing
// requests exclude each other: a copy-on-read request holds serial() exclusively from
// its first allocation check to its last write; the owner makes every write, zero write,
// discard and truncate hold it shared.
//
// Thread safety: Preadv may be called from any thread, concurrently with anything that
// holds serial() as described. It blocks; coroutine callers offload it.
#ifndef STRATA_BLOCK_COPY_ON_READ_H_
#define STRATA_BLOCK_COPY_ON_READ_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "block/node.h"

namespace strata {

class CopyOnRead {
 public:
  // `top` (and `bottom`, a node of top's backing chain, or null for no limit) must
  // outlive this object.
  explicit CopyOnRead(BlockDriverState& top, BlockDriverState* bottom = nullptr)
      : top_(top), bottom_(bottom), unit_(Granularity(top)) {}

  // Reads [offset, offset + bytes) of the top node into `qiov` (a range the caller has
  // checked against the length), copying the clusters it covers that the top node does
  // not allocate into it first. A failed copy fails the read; clusters copied before it
  // stay copied (they hold what the chain held).
  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov, uint32_t flags)
      ABSL_LOCKS_EXCLUDED(serial_);

  // What data-changing requests hold shared (see the file comment).
  absl::Mutex& serial() ABSL_LOCK_RETURNED(serial_) { return serial_; }

 private:
  // The copy unit: the node's cluster size, else its request alignment (at least 512).
  // Fixed for the node's life, so taken once.
  static uint64_t Granularity(BlockDriverState& node);

  // Reads [offset, offset + bytes) (qiov's slice `qiov_offset` on) copying the clusters it
  // covers that the top does not allocate. Called with serial_ held.
  absl::Status CopyAndRead(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                           uint64_t qiov_offset, uint32_t flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(serial_);

  // Whether the run at `offset` is allocated somewhere from top's backing node down to
  // bottom_ (inclusive); returns the run's length (<= bytes), all of one answer.
  absl::StatusOr<uint64_t> AllocatedDownToBottom(uint64_t offset, uint64_t bytes,
                                                 bool* allocated);

  BlockDriverState& top_;
  BlockDriverState* const bottom_;
  const uint64_t unit_;
  absl::Mutex serial_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_COPY_ON_READ_H_
