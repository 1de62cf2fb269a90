// strata: the generic node over real files: alignment padding with O_DIRECT, bounds of the
// backend, read-only, probing and the open path's errors.
#include "block/node.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

std::string TempImage(uint64_t size) {
  std::string path = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
                     "/node_test_" + std::to_string(getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(ftruncate(fd, size), 0);
  close(fd);
  return path;
}

absl::StatusOr<OpenedImage> Open(const std::string& path, bool direct, bool read_only = false) {
  ImageOpenRequest r;
  r.filename = path;
  r.format = "raw";
  r.flags.cache.direct = direct;
  r.flags.read_only = read_only;
  return OpenImage(r);
}

TEST(NodeTest, UnalignedWritesUnderODirectAreReadModifyWrite) {
  std::string path = TempImage(1 << 20);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, /*direct=*/true));
  BlockDriverState& file = img.root->file()->node();
  EXPECT_GE(file.request_alignment(), 512u);
  std::vector<uint8_t> data(1000, 0x5a);
  ASSERT_OK(img.root->Pwrite(700, data.size(), data.data()));
  std::vector<uint8_t> back(3000, 0xff);
  ASSERT_OK(img.root->Pread(0, back.size(), back.data()));
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(back[i], (i >= 700 && i < 1700) ? 0x5a : 0) << i;
  }
}

TEST(NodeTest, ConcurrentUnalignedWritesToOneBlockDoNotLoseData) {
  std::string path = TempImage(1 << 20);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, /*direct=*/true));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      uint8_t b = 0x10 + t;
      for (int i = 0; i < 50; ++i) ASSERT_OK(img.root->Pwrite(t * 64 + i % 2, 1, &b));
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint8_t> back(512);
  ASSERT_OK(img.root->Pread(0, 512, back.data()));
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(back[t * 64], 0x10 + t);
    EXPECT_EQ(back[t * 64 + 1], 0x10 + t);
  }
}

TEST(NodeTest, NodesWithoutANodeNameGetQemusAutomaticNamesChildrenFirst) {
  std::string path = TempImage(4096);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, false));
  const std::string format = img.root->display_name();
  const std::string file = img.root->file()->node().display_name();
  // "#block", the counter, two random digits; the file child is named first.
  for (const std::string* name : {&format, &file}) {
    ASSERT_TRUE(absl::StartsWith(*name, "#block")) << *name;
    ASSERT_GE(name->size(), 9u) << *name;
  }
  uint64_t format_number = 0, file_number = 0;
  ASSERT_TRUE(absl::SimpleAtoi(format.substr(6, format.size() - 8), &format_number)) << format;
  ASSERT_TRUE(absl::SimpleAtoi(file.substr(6, file.size() - 8), &file_number)) << file;
  EXPECT_EQ(format_number, file_number + 1);
  ImageOpenRequest named;
  named.filename = "json:{\"driver\":\"raw\",\"node-name\":\"disk0\",\"file\":{\"driver\":"
                   "\"file\",\"filename\":\"" + path + "\"}}";
  ASSERT_OK_AND_ASSIGN(OpenedImage with_name, OpenImage(named));
  EXPECT_EQ(with_name.root->display_name(), "disk0");
}

TEST(NodeTest, BackendRejectsRequestsPastTheEnd) {
  std::string path = TempImage(4096);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, false));
  BlockBackend blk(std::move(img.root), false);
  uint8_t buf[512];
  EXPECT_EQ(ErrnoOf(blk.Pread(4096, 1, buf)), EIO);
  EXPECT_EQ(ErrnoOf(blk.Pwrite(4000, 512, buf)), EIO);
  EXPECT_OK(blk.Pread(3584, 512, buf));
}

TEST(NodeTest, ReadOnlyNodesRefuseWrites) {
  std::string path = TempImage(4096);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, false, /*read_only=*/true));
  uint8_t b = 1;
  EXPECT_EQ(ErrnoOf(img.root->Pwrite(0, 1, &b)), EPERM);
}

TEST(NodeTest, ProbingFallsBackToRaw) {
  std::string path = TempImage(4096);
  ImageOpenRequest r;
  r.filename = path;
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenImage(r));
  EXPECT_TRUE(img.probed_raw);
  EXPECT_EQ(img.root->driver().name(), "raw");
  EXPECT_EQ(img.root->filename(), path);
}

TEST(NodeTest, OpenErrorsNameTheFile) {
  ImageOpenRequest r;
  r.filename = "/nonexistent/strata.img";
  r.format = "raw";
  auto img = OpenImage(r);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().message(),
            "Could not open '/nonexistent/strata.img': No such file or directory");
  r.format = "nosuchformat";
  img = OpenImage(r);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().message(), "Unknown driver 'nosuchformat'");
}

TEST(NodeTest, RawOffsetAndSizeWindow) {
  std::string path = TempImage(8192);
  ImageOpenRequest r;
  r.image_opts = true;
  r.filename = "driver=raw,offset=1024,size=2048,file.driver=file,file.filename=" + path;
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenImage(r));
  EXPECT_EQ(*img.root->GetLength(), 2048u);
  uint8_t b = 0x77;
  ASSERT_OK(img.root->Pwrite(0, 1, &b));
  uint8_t direct = 0;
  ASSERT_OK(img.root->file()->node().Pread(1024, 1, &direct));
  EXPECT_EQ(direct, 0x77);
  BlockBackend blk(std::move(img.root), false);
  EXPECT_EQ(ErrnoOf(blk.Pwrite(2048, 1, &b)), EIO);
}

TEST(NodeTest, WriteZeroesAndBlockStatusSeeHoles) {
  std::string path = TempImage(1 << 20);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, false));
  std::vector<uint8_t> data(65536, 1);
  ASSERT_OK(img.root->Pwrite(0, data.size(), data.data()));
  ASSERT_OK_AND_ASSIGN(BlockStatus s, img.root->GetBlockStatus(0, 1 << 20));
  EXPECT_TRUE(s.data);
  EXPECT_TRUE(s.allocated);
  EXPECT_EQ(s.bytes, 65536u);
  ASSERT_OK_AND_ASSIGN(s, img.root->GetBlockStatus(65536, 1 << 20));
  EXPECT_TRUE(s.zero);
  EXPECT_FALSE(s.data);
  ASSERT_OK(img.root->PwriteZeroes(0, 4096, kReqMayUnmap));
  std::vector<uint8_t> back(4096, 9);
  ASSERT_OK(img.root->Pread(0, back.size(), back.data()));
  EXPECT_TRUE(BufferIsZero(back.data(), back.size()));
}

}  // namespace
}  // namespace strata
