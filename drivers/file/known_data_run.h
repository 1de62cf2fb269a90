// strata file driver: KnownDataRun, the last run of a file that lseek(SEEK_DATA/SEEK_HOLE)
// found to hold data, so block status inside it needs no system call.
//
// Why it pays: on tmpfs (and other file systems that walk their page cache or extent
// tree) SEEK_HOLE from an offset scans to the next hole, which for a fully written file is
// its end: milliseconds per call on a large image, paid by every sparse-aware read of
// the NBD server and every block-status walk of convert, map and compare.
//
// Why it is safe: a write only turns holes into data, so a run known to hold data keeps
// holding data until something punches it. This process's own punches (discard,
// write-zeroes, truncate) call Forget first. A hole punched by another process is seen
// as data until then: reads still return the right bytes, only sparseness is lost.
//
// Thread-safe.
#ifndef STRATA_DRIVERS_FILE_KNOWN_DATA_RUN_H_
#define STRATA_DRIVERS_FILE_KNOWN_DATA_RUN_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"

namespace strata {

class KnownDataRun {
 public:
  // The end of the known data run that contains `offset`, or 0 when none does.
  uint64_t EndIfData(uint64_t offset) const {
    absl::MutexLock lock(&mu_);
    return offset >= start_ && offset < end_ ? end_ : 0;
  }
  // [start, end) holds data.
  void Remember(uint64_t start, uint64_t end) {
    absl::MutexLock lock(&mu_);
    start_ = start;
    end_ = end;
  }
  // Before anything that may make part of the file a hole.
  void Forget() {
    absl::MutexLock lock(&mu_);
    start_ = end_ = 0;
  }

 private:
  mutable absl::Mutex mu_;
  uint64_t start_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t end_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata

#endif  // STRATA_DRIVERS_FILE_KNOWN_DATA_RUN_H_
