// strata C API: open, synchronous I/O, errors, and queues with a pollable fd.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "strata/strata.h"

namespace {

std::string TempRaw(size_t size) {
  const char* dir = getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/capi_" + std::to_string(getpid()) +
                     "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(ftruncate(fd, size), 0);
  close(fd);
  return path;
}

std::string RawOptions(const std::string& path) {
  return "{\"driver\": \"raw\", \"file\": {\"driver\": \"file\", \"filename\": \"" + path +
         "\"}}";
}

TEST(CApiTest, SynchronousIoAndErrors) {
  std::string path = TempRaw(1 << 20);
  strata_image* img = nullptr;
  ASSERT_EQ(strata_open(RawOptions(path).c_str(), STRATA_OPEN_RDWR, &img), 0);
  EXPECT_EQ(strata_get_size(img), 1 << 20);
  std::vector<char> out(8192, 'x'), in(8192);
  EXPECT_EQ(strata_pwrite(img, out.data(), out.size(), 4096, STRATA_REQ_FUA), 0);
  EXPECT_EQ(strata_pread(img, in.data(), in.size(), 4096), 0);
  EXPECT_EQ(in, out);
  EXPECT_EQ(strata_flush(img), 0);
  EXPECT_EQ(strata_pread(img, in.data(), in.size(), (1 << 20) - 10), -EIO);
  EXPECT_STRNE(strata_last_error(img), "");
  EXPECT_EQ(strata_close(img), 0);

  // Read-only unless asked: writes fail with EPERM.
  ASSERT_EQ(strata_open(RawOptions(path).c_str(), 0, &img), 0);
  EXPECT_EQ(strata_pwrite(img, out.data(), 512, 0, 0), -EPERM);
  EXPECT_EQ(strata_close(img), 0);

  EXPECT_EQ(strata_open("{\"driver\": \"raw\", \"file\": {\"driver\": \"file\", "
                        "\"filename\": \"/nonexistent/x\"}}", 0, &img),
            -ENOENT);
  EXPECT_NE(std::string(strata_last_error(nullptr)).find("/nonexistent/x"), std::string::npos);
  EXPECT_LT(strata_open("{not json", 0, &img), 0);
  unlink(path.c_str());
}

struct Runs {
  std::vector<std::tuple<uint64_t, uint64_t, int>> seen;
};

void OnRun(void* opaque, uint64_t offset, uint64_t len, int dirty) {
  static_cast<Runs*>(opaque)->seen.push_back({offset, len, dirty});
}

TEST(CApiTest, BitmapRunsShowWhatWasWritten) {
  if (system("command -v qemu-img >/dev/null 2>&1") != 0) GTEST_SKIP() << "no qemu-img";
  const char* dir = getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/capi_bitmap.qcow2";
  ASSERT_EQ(system(("qemu-img create -q -f qcow2 " + path + " 1M && qemu-img bitmap --add -g 64k " +
                    path + " b0").c_str()),
            0);
  const std::string opts = "{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
                           "\"filename\": \"" + path + "\"}}";
  strata_image* img = nullptr;
  ASSERT_EQ(strata_open(opts.c_str(), STRATA_OPEN_RDWR, &img), 0);
  std::vector<char> data(4096, 'x');
  ASSERT_EQ(strata_pwrite(img, data.data(), data.size(), 200000, 0), 0);
  Runs runs;
  ASSERT_EQ(strata_bitmap_runs(img, "b0", 0, UINT64_MAX, OnRun, &runs), 0);
  using Run = std::tuple<uint64_t, uint64_t, int>;
  EXPECT_EQ(runs.seen, (std::vector<Run>{{0, 196608, 0}, {196608, 65536, 1}, {262144, 786432, 0}}));
  EXPECT_EQ(strata_bitmap_runs(img, "nope", 0, 1, OnRun, &runs), -ENOENT);
  EXPECT_EQ(strata_close(img), 0);
  // Stored at close: QEMU sees the write in the bitmap too (it stays consistent).
  EXPECT_EQ(system(("qemu-img info " + path + " | grep -q in-use").c_str()) == 0, false);
  unlink(path.c_str());
}

struct Lines {
  std::vector<std::pair<int, std::string>> seen;
};

void OnDiagnostic(void* opaque, int kind, const char* line) {
  static_cast<Lines*>(opaque)->seen.push_back({kind, line});
}

TEST(CApiTest, CorruptionGoesToTheCallbackNeverToStderr) {
  const char* dir = getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/capi_corrupt.qcow2";
  ASSERT_EQ(system(("qemu-img create -q -f qcow2 " + path + " 1M && qemu-io -c 'write 0 64k' " +
                    path + " > /dev/null").c_str()),
            0);
  // Point L1[0] at an unaligned L2 table offset.
  int fd = open(path.c_str(), O_RDWR);
  unsigned char be[8];
  ASSERT_EQ(pread(fd, be, 8, 40), 8);  // l1_table_offset
  uint64_t l1 = 0;
  for (int i = 0; i < 8; ++i) l1 = l1 << 8 | be[i];
  const unsigned char bad[8] = {0x80, 0, 0, 0, 0, 0x01, 0x02, 0x00};
  ASSERT_EQ(pwrite(fd, bad, 8, l1), 8);
  close(fd);
  std::string options = "{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
                        "\"filename\": \"" + path + "\"}}";
  char buf[512];
  for (bool with_callback : {false, true}) {
    Lines lines;
    strata_set_diagnostic_callback(with_callback ? OnDiagnostic : nullptr, &lines);
    strata_image* img = nullptr;
    ASSERT_EQ(strata_open(options.c_str(), 0, &img), 0);
    ::testing::internal::CaptureStderr();
    ::testing::internal::CaptureStdout();
    EXPECT_EQ(strata_pread(img, buf, sizeof buf, 0), -EIO);
    EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(strata_close(img), 0);
    if (with_callback) {
      ASSERT_EQ(lines.seen.size(), 1u);
      EXPECT_EQ(lines.seen[0].first, STRATA_DIAG_CORRUPTION);
      EXPECT_NE(lines.seen[0].second.find("qcow2: Image is corrupt: L2 table offset 0x10200 "
                                          "unaligned"),
                std::string::npos)
          << lines.seen[0].second;
    }
  }
  strata_set_diagnostic_callback(nullptr, nullptr);
  unlink(path.c_str());
}

struct Counter {
  int done = 0;
  int failed = 0;
};

void OnDone(void* opaque, int result) {
  auto* c = static_cast<Counter*>(opaque);
  ++c->done;
  if (result != 0) ++c->failed;
}

TEST(CApiTest, QueuesCompleteThroughThePollableFd) {
  std::string path = TempRaw(4 << 20);
  strata_image* img = nullptr;
  ASSERT_EQ(strata_open(RawOptions(path).c_str(), STRATA_OPEN_RDWR, &img), 0);
  strata_queue* q = nullptr;
  ASSERT_EQ(strata_queue_create(img, &q), 0);
  constexpr int kRequests = 512;
  std::vector<std::vector<char>> bufs(kRequests, std::vector<char>(4096));
  Counter writes, reads, flushes;
  for (int i = 0; i < kRequests; ++i) {
    std::memset(bufs[i].data(), i & 0xff, 4096);
    ASSERT_EQ(strata_aio_pwrite(q, bufs[i].data(), 4096, uint64_t(i) * 4096, 0, OnDone, &writes),
              0);
  }
  EXPECT_EQ(strata_close(img), -EBUSY);  // a queue is still open
  while (writes.done < kRequests) {
    pollfd p{strata_queue_fd(q), POLLIN, 0};
    ASSERT_GE(poll(&p, 1, 10000), 1);
    strata_queue_complete(q);
  }
  EXPECT_EQ(writes.failed, 0);
  ASSERT_EQ(strata_aio_flush(q, OnDone, &flushes), 0);
  std::vector<std::vector<char>> back(kRequests, std::vector<char>(4096));
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(strata_aio_pread(q, back[i].data(), 4096, uint64_t(i) * 4096, OnDone, &reads), 0);
  }
  ASSERT_EQ(strata_aio_pread(q, back[0].data(), 4096, 4 << 20, OnDone, &reads), 0);  // -EIO
  EXPECT_EQ(strata_queue_destroy(q), 0);  // waits, then runs what was not collected
  EXPECT_EQ(reads.done, kRequests + 1);
  EXPECT_EQ(reads.failed, 1);
  EXPECT_EQ(flushes.done, 1);
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(back[i], bufs[i]) << i;
  EXPECT_EQ(strata_close(img), 0);
  unlink(path.c_str());
}

}  // namespace
