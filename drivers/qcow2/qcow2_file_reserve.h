// strata qcow2: keeps the image file extended ahead of the clusters in use.
//
// A write past the end of a file is the slow kind: the file system must extend
// it synchronously, and (with O_DIRECT above all) such writes serialise on the
// inode. So when an allocation reaches the end of the file, the file is
// extended well past it in one zeroing fallocate, in steps that grow with the
// file (1 MiB up to 128 MiB, QEMU's `preallocate` filter sizes), and allocating
// writes land inside the file.
//
// Crash safety: nothing references the reserved tail; it reads as zeroes. After
// a crash it is unused space past the last cluster in use (check reports
// nothing; the allocator hands it out again). A clean close trims it off
// (Trim), so a closed image has the length it would have had without the
// reservation.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_FILE_RESERVE_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_FILE_RESERVE_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "aio/run_sync.h"
#include "aio/task.h"
#include "block/child.h"

namespace strata::qcow2 {

class FileTailReservation {
 public:
  // `file_length`: the file's length at open; the file is never trimmed below
  // it.
  FileTailReservation(BdrvChild *file, uint64_t file_length)
      : file_(file), floor_(file_length), known_length_(file_length) {}

  // Makes sure the file reaches at least `end`, extending it by a step past
  // `end` when it does not. Best effort: a file that cannot be extended this way
  // (no fallocate, a device, a protocol that does not grow on zeroes past its
  // end, any error) turns the reservation off for good, and writes grow the file.
  // Invariant (crash and data safety): while the reservation is on, every
  // allocated cluster lies below the known length, which the file really
  // reaches, so an extension only ever zeroes bytes no write can be using.
  void Cover(uint64_t end) { (void)aio::RunSync(CoCover(end)); }
  // Cover through the file's coroutine hooks (the zeroing fallocate goes down the ring or
  // the pool), for a loop. Always OK (best effort, as Cover). The owner's lock is held
  // across the await: nothing else may use this object meanwhile.
  aio::Task<absl::Status> CoCover(uint64_t end);

  // True if Cover(end) would do nothing (no I/O): the reservation is off, or the file is
  // known to reach `end`.
  bool Covers(uint64_t end) const { return disabled_ || end <= known_length_; }

  // If the file was extended here, truncates it to `used_end` (one past the
  // last byte any metadata references), never below the length at open. Call
  // only when nothing past `used_end` is in use or in flight.
  absl::Status Trim(uint64_t used_end);

  // The file's length changed behind this object (shrunk by make_empty or a
  // resize): forget what is known, and never trim below `file_length`.
  void Reset(uint64_t file_length) {
    floor_ = file_length;
    known_length_ = file_length;
    extended_ = false;
  }

  // True if Trim may have something to cut (the file was extended here).
  bool extended() const { return extended_; }
  // Where Trim would stop at most: the length at open (or at the last Reset).
  uint64_t floor() const { return floor_; }

 private:
  BdrvChild *const file_;
  uint64_t floor_;
  uint64_t known_length_;  // a lower bound of the file's length
  bool extended_ = false;
  bool disabled_ = false;
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_FILE_RESERVE_H_
