// Tests of the blkdebug driver on a qcow2 image: the filename forms, inline rules, errors
// reaching the caller, breakpoints suspending a request on another thread.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

class BlkdebugDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    dir_ = std::string(t ? t : "/tmp") + "/blkdebug_" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    image_ = dir_ + "/t.qcow2";
    CreateRequest create{image_, 1 << 20, {}};
    ASSERT_OK(DriverRegistry::Global().Find("qcow2")->Create(create));
  }

  absl::StatusOr<std::unique_ptr<BlockBackend>> Open(const std::string& filename) {
    ImageOpenRequest r;
    r.filename = filename;
    STRATA_ASSIGN_OR_RETURN(OpenedImage img, OpenImage(r));
    return std::make_unique<BlockBackend>(std::move(img.root), false);
  }

  std::string WriteConfig(const std::string& text) {
    std::string path = dir_ + "/blkdebug.conf";
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  }

  std::string dir_, image_;
};

TEST_F(BlkdebugDriverTest, ConfigFileRuleFailsTheWriteOnce) {
  std::string conf = WriteConfig(
      "[inject-error]\nevent = \"write_aio\"\nerrno = \"28\"\nonce = \"on\"\n");
  ASSERT_OK_AND_ASSIGN(auto blk, Open("blkdebug:" + conf + ":" + image_));
  std::vector<uint8_t> buf(65536, 0x5a);
  absl::Status s = blk->Pwrite(0, buf.size(), buf.data());
  EXPECT_EQ(ErrnoOf(s), ENOSPC);
  EXPECT_OK(blk->Pwrite(0, buf.size(), buf.data()));
  std::vector<uint8_t> back(buf.size());
  EXPECT_OK(blk->Pread(0, back.size(), back.data()));
  EXPECT_EQ(back, buf);
}

TEST_F(BlkdebugDriverTest, InlineRulesThroughJson) {
  ASSERT_OK_AND_ASSIGN(
      auto blk, Open("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"blkdebug\","
                     "\"inject-error\":[{\"event\":\"read_aio\",\"once\":true}],"
                     "\"image\":{\"driver\":\"file\",\"filename\":\"" + image_ + "\"}}}"));
  std::vector<uint8_t> buf(4096, 1);
  ASSERT_OK(blk->Pwrite(0, buf.size(), buf.data()));
  EXPECT_EQ(ErrnoOf(blk->Pread(0, buf.size(), buf.data())), EIO);
  EXPECT_OK(blk->Pread(0, buf.size(), buf.data()));
}

TEST_F(BlkdebugDriverTest, BadConfigurationsAreClearErrors) {
  EXPECT_EQ(Open("blkdebug:" + image_).status().message(),
            "blkdebug requires both config file and image path");
  std::string conf = WriteConfig("[inject-error]\nevent = \"nope\"\n");
  EXPECT_EQ(Open("blkdebug:" + conf + ":" + image_).status().message(),
            "invalid parameter value: nope");
  EXPECT_EQ(Open("blkdebug:" + dir_ + "/missing.conf:" + image_).status().message(),
            "Could not read blkdebug config file: No such file or directory");
}

TEST_F(BlkdebugDriverTest, RuleOnNoneFailsProbing) {
  std::string conf = WriteConfig("[inject-error]\nevent = \"none\"\n");
  EXPECT_EQ(Open("blkdebug:" + conf + ":" + image_).status().message(),
            "Could not read image for determining its format: Input/output error");
}

TEST_F(BlkdebugDriverTest, BreakpointSuspendsAndResumes) {
  ASSERT_OK_AND_ASSIGN(auto blk, Open("blkdebug::" + image_));
  DebugBreakpoints* bp = blk->root().FindDebugBreakpoints();
  ASSERT_NE(bp, nullptr);
  EXPECT_EQ(ErrnoOf(bp->AddBreakpoint("bogus", "A")), ENOENT);
  ASSERT_OK(bp->AddBreakpoint("write_aio", "A"));
  std::atomic<bool> done{false};
  std::vector<uint8_t> buf(4096, 7);
  std::thread writer([&] {
    EXPECT_OK(blk->Pwrite(0, buf.size(), buf.data()));
    done = true;
  });
  while (!bp->IsSuspended("A")) usleep(1000);
  EXPECT_EQ(bp->SuspendedCount(), 1);
  usleep(20000);
  EXPECT_FALSE(done);
  EXPECT_EQ(ErrnoOf(bp->Resume("B")), ENOENT);
  ASSERT_OK(bp->Resume("A"));
  writer.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(ErrnoOf(bp->Resume("A")), ENOENT);
  EXPECT_EQ(ErrnoOf(bp->RemoveBreakpoint("A")), ENOENT);
}

}  // namespace
}  // namespace strata
