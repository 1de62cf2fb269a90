#include "block/copy_pipeline.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "block/status.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(CopyPipelineTest, InOrderWritesHappenInChunkOrderWhileReadsOverlap) {
  absl::Mutex mu;
  std::vector<uint64_t> writes;
  std::atomic<int> reading{0}, max_reading{0};
  absl::Status s = RunCopyPipeline(64, 8, true, [&](uint64_t i, const auto& wait_turn) {
    const int now = ++reading;
    int seen = max_reading.load();
    while (now > seen && !max_reading.compare_exchange_weak(seen, now)) {}
    absl::SleepFor(absl::Milliseconds((64 - i) % 5));  // reads finish out of order
    --reading;
    if (i % 7 == 3) return absl::OkStatus();  // nothing to write: still hands the turn on
    wait_turn();
    absl::MutexLock lock(&mu);
    writes.push_back(i);
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  std::vector<uint64_t> expected;
  for (uint64_t i = 0; i < 64; ++i) {
    if (i % 7 != 3) expected.push_back(i);
  }
  EXPECT_EQ(writes, expected);
  EXPECT_GT(max_reading.load(), 1);
}

TEST(CopyPipelineTest, FirstErrorStopsNewChunks) {
  std::atomic<uint64_t> started{0};
  absl::Status s = RunCopyPipeline(1000, 4, true, [&](uint64_t i, const auto& wait_turn) {
    ++started;
    wait_turn();
    return i == 10 ? ErrnoError(EIO, "chunk 10") : absl::OkStatus();
  });
  EXPECT_EQ(s.message(), "chunk 10");
  EXPECT_LT(started.load(), 20u);
}

TEST(CopyPipelineTest, TheLowestFailedChunksErrorIsReturnedWhateverFailedFirst) {
  // Chunk 5 fails at once, chunk 2 (running beside it) only later: chunk 2's error is the
  // one returned, so what a tool reports does not follow the timing.
  for (bool in_order : {true, false}) {
    absl::Status s = RunCopyPipeline(100, 8, in_order, [&](uint64_t i, const auto&) {
      if (i == 2) {
        absl::SleepFor(absl::Milliseconds(50));
        return ErrnoError(EIO, "chunk 2");
      }
      return i == 5 ? ErrnoError(EIO, "chunk 5") : absl::OkStatus();
    });
    EXPECT_EQ(s.message(), "chunk 2") << "in order: " << in_order;
  }
}

TEST(CopyPipelineTest, UnorderedAndEmpty) {
  std::atomic<uint64_t> done{0};
  EXPECT_TRUE(RunCopyPipeline(100, 3, false, [&](uint64_t, const auto& wait_turn) {
                wait_turn();
                ++done;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(done.load(), 100u);
  EXPECT_TRUE(RunCopyPipeline(0, 3, true, [](uint64_t, const auto&) {
                return ErrnoError(EIO);
              }).ok());
}

}  // namespace
}  // namespace strata
