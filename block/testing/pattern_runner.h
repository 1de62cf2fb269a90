// strata tests: PatternRunner, many requests in flight on one loop, each writing or
// checking its own byte pattern.
//
// Request i covers `bytes` at offset_of(i): a write fills it with PatternOf(i), a read
// expects PatternOf(i) there. `depth` requests are in flight at a time, all submitted from
// the loop's thread through BlockBackend::Submit (as an embedder's queue would); Run
// returns once all completed. Tests count aio::OffloadedWork around Run to show that a
// driver serves its requests on the loop.
#ifndef STRATA_BLOCK_TESTING_PATTERN_RUNNER_H_
#define STRATA_BLOCK_TESTING_PATTERN_RUNNER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/io_context.h"
#include "block/block_backend.h"
#include "block/io_vector.h"

namespace strata {

class PatternRunner {
 public:
  struct Options {
    bool reads = false;
    int requests = 512;
    int depth = 32;
    uint64_t bytes = 4096;
    std::function<uint64_t(int)> offset_of;
    uint32_t flags = 0;  // request flags (kReqFua)
  };
  static uint8_t PatternOf(int i) { return static_cast<uint8_t>(i + 1); }

  PatternRunner(BlockBackend* blk, aio::IoContext* loop, Options options);
  // Runs every request (fails the test after 60 s without completion).
  void Run();
  // Requests that failed or (reads) found other bytes; each is reported to gtest too.
  int failures() const { return failures_; }

 private:
  void Issue(int slot);  // on the loop

  BlockBackend* const blk_;
  aio::IoContext* const loop_;
  const Options options_;
  std::vector<AlignedBuffer> buffers_;  // one per slot
  int issued_ = 0, completed_ = 0, failures_ = 0;  // on the loop
  absl::Notification done_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_TESTING_PATTERN_RUNNER_H_
