// strata: requests that do not fit a node's request alignment (O_DIRECT on a file) run on
// their loop, not on the blocking pool: reads through a bounce buffer, writes as
// read-modify-write of the blocks around them. Writes that share a block take turns
// (parked coroutines, not blocked threads), so none loses another's bytes.
//
// 512 requests of 100 bytes each, side by side (five or six per 512-byte block, each
// request's range widened to whole blocks overlapping its neighbours'), 32 in flight on
// one loop. Before the coroutine padding path every one of them was offloaded.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "aio/loop_thread.h"
#include "aio/offload.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/pattern_runner.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr int kRequests = 512;
constexpr uint64_t kBytes = 100;
constexpr uint64_t kFirst = 7;  // so that no request starts on a block boundary by design
constexpr uint64_t kImageBytes = 1 << 20;

uint64_t OffsetOf(int i) { return kFirst + static_cast<uint64_t>(i) * kBytes; }

std::string TempImage() {
  const std::string path = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
                           "/padded_async_" + std::to_string(getpid()) + ".raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, kImageBytes), 0);
  ::close(fd);
  return path;
}

TEST(PaddedAsyncTest, UnalignedRequestsRunOnTheLoopAndLoseNoBytes) {
  const std::string path = TempImage();
  ImageOpenRequest req;
  req.filename = path;
  req.format = "raw";
  req.flags.cache.direct = true;
  absl::StatusOr<OpenedImage> opened = OpenImage(req);
  if (!opened.ok() && ErrnoOf(opened.status()) == EINVAL) {
    GTEST_SKIP() << "no O_DIRECT on this file system: " << opened.status();
  }
  ASSERT_OK(opened.status());
  ASSERT_GE(opened->root->file()->node().request_alignment(), 512u);
  BlockBackend blk(std::move(opened->root), /*writethrough=*/false);
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
      aio::LoopThread::Start({aio::Engine::kIoUring, 64});
  ASSERT_TRUE(loop.ok()) << loop.status();

  PatternRunner::Options run{.requests = kRequests, .depth = 32, .bytes = kBytes,
                             .offset_of = OffsetOf};
  PatternRunner writer(&blk, &(*loop)->context(), run);
  uint64_t before = aio::OffloadedWork::Total();
  writer.Run();
  const uint64_t write_offloads = aio::OffloadedWork::Total() - before;
  EXPECT_EQ(writer.failures(), 0);

  run.reads = true;
  PatternRunner reader(&blk, &(*loop)->context(), run);
  before = aio::OffloadedWork::Total();
  reader.Run();
  const uint64_t read_offloads = aio::OffloadedWork::Total() - before;
  EXPECT_EQ(reader.failures(), 0);
  loop->reset();

  EXPECT_EQ(write_offloads, 0u) << "padded writes went to the pool";
  EXPECT_EQ(read_offloads, 0u) << "padded reads went to the pool";
  // Every byte: the untouched head and tail stay zero, each request's bytes are its own.
  std::vector<uint8_t> back(kImageBytes);
  ASSERT_OK(blk.Pread(0, kImageBytes, back.data()));
  for (uint64_t at = 0; at < kImageBytes; ++at) {
    uint8_t want = 0;
    if (at >= kFirst && at < OffsetOf(kRequests)) {
      want = PatternRunner::PatternOf(static_cast<int>((at - kFirst) / kBytes));
    }
    ASSERT_EQ(back[at], want) << "byte " << at;
  }
  ASSERT_OK(blk.Close());
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace strata
