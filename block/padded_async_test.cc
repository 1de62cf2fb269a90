// strata: requests that do not fit a node's request alignment (O_DIRECT on a file) run on
// their loop, not on the blocking pool: reads through a bounce buffer, writes as
// read-modify-write of the blocks around them. Writes that share a block take turns
// (parked coroutines, not blocked threads), so none loses another's bytes.
//
// 512 requests of 100 bytes each, side by side (five or six per 512-byte block, each
// request's range widened to whole blocks overlapping its neighbours'), 32 in flight on
// one loop. Before the coroutine padding path every one of them was offloaded. Unaligned
// zero writes likewise (split as QEMU splits them: zero data at the ends, a zero write
// between).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
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

// `path` as raw with O_DIRECT (EINVAL where the file system has none).
absl::StatusOr<OpenedImage> OpenDirect(const std::string& path) {
  ImageOpenRequest req;
  req.filename = path;
  req.format = "raw";
  req.flags.cache.direct = true;
  return OpenImage(req);
}

TEST(PaddedAsyncTest, UnalignedRequestsRunOnTheLoopAndLoseNoBytes) {
  const std::string path = TempImage();
  absl::StatusOr<OpenedImage> opened = OpenDirect(path);
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

TEST(PaddedAsyncTest, UnalignedZeroWritesRunOnTheLoop) {
  // Zero writes that start and end inside 512-byte blocks (some within one block, some
  // spanning whole blocks in between), all in flight at once, over data: the partial blocks are
  // written as zero data (read-modify-write), the middle zeroed by the file.
  const std::string path = TempImage();
  absl::StatusOr<OpenedImage> opened = OpenDirect(path);
  if (!opened.ok() && ErrnoOf(opened.status()) == EINVAL) {
    GTEST_SKIP() << "no O_DIRECT on this file system: " << opened.status();
  }
  ASSERT_OK(opened.status());
  BlockBackend blk(std::move(opened->root), /*writethrough=*/false);
  std::vector<uint8_t> model(kImageBytes, 0x6d);
  ASSERT_OK(blk.Pwrite(0, kImageBytes, model.data()));
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
      aio::LoopThread::Start({aio::Engine::kIoUring, 64});
  ASSERT_TRUE(loop.ok()) << loop.status();
  constexpr int kZeroWrites = 256;
  constexpr uint64_t kSlot = 4096;  // each request stays inside its own slot
  std::atomic<int> failures{0}, left{kZeroWrites};
  absl::Notification done;
  const uint64_t before = aio::OffloadedWork::Total();
  (*loop)->context().Post([&] {
    for (int i = 0; i < kZeroWrites; ++i) {
      const uint64_t offset = i * kSlot + 1 + (i * 37) % 700;
      const uint64_t bytes = 1 + (i * 911) % (kSlot - 1 - (offset - i * kSlot));
      std::memset(&model[offset], 0, bytes);
      BlockBackend::Request r;
      r.op = IoOp::kWriteZeroes;
      r.offset = offset;
      r.bytes = bytes;
      blk.Submit((*loop)->context(), std::move(r), [&](absl::Status st) {
        if (!st.ok()) ++failures;
        if (--left == 0) done.Notify();
      });
    }
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  const uint64_t offloads = aio::OffloadedWork::Total() - before;
  loop->reset();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(offloads, 0u) << "unaligned zero writes went to the pool";
  std::vector<uint8_t> back(kImageBytes);
  ASSERT_OK(blk.Pread(0, kImageBytes, back.data()));
  for (uint64_t at = 0; at < kImageBytes; ++at) ASSERT_EQ(back[at], model[at]) << "byte " << at;
  ASSERT_OK(blk.Close());
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace strata
