// Tests of the commit job on qcow2 chains: what is copied (and what is not), progress
// reports, cancellation, and a copy that fails midway.
#include "block/commit_job.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kSize = 4 << 20;

class CommitJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    dir_ = std::string(t ? t : "/tmp") + "/commit_" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
    ASSERT_OK(qcow2->Create({dir_ + "/base.qcow2", kSize, {}}));
    {
      auto base = Open(dir_ + "/base.qcow2", false);
      ASSERT_NE(base, nullptr);
      std::vector<uint8_t> fill(kSize, 0x11);
      ASSERT_OK(base->Pwrite(0, kSize, fill.data()));
    }
    ASSERT_OK(qcow2->Create({dir_ + "/top.qcow2", kSize,
                             {{"backing_file", "base.qcow2"}, {"backing_fmt", "qcow2"}}}));
    auto top = Open(dir_ + "/top.qcow2", false);
    ASSERT_NE(top, nullptr);
    std::vector<uint8_t> data(3 << 20, 0x33);
    ASSERT_OK(top->Pwrite(1 << 20, 100000, data.data()));   // partial clusters
    ASSERT_OK(top->Pwrite(2 << 20, 3 << 19, data.data()));  // spans pieces
    ASSERT_OK(top->PwriteZeroes(3 << 20, 128 << 10));       // zero clusters
  }

  std::unique_ptr<BlockBackend> Open(const std::string& name, bool no_backing,
                                     bool writable = true) {
    ImageOpenRequest r;
    r.filename = name;
    r.flags.no_backing = no_backing;
    r.flags.read_only = !writable;
    absl::StatusOr<OpenedImage> img = OpenImage(r);
    EXPECT_TRUE(img.ok()) << img.status();
    if (!img.ok()) return nullptr;
    return std::make_unique<BlockBackend>(std::move(img->root), false);
  }

  std::vector<uint8_t> ReadAll(BlockBackend& blk) {
    std::vector<uint8_t> out(kSize);
    EXPECT_OK(blk.Pread(0, kSize, out.data()));
    return out;
  }

  std::string dir_;
};

TEST_F(CommitJobTest, CopiesWhatTheTopHoldsAndReportsProgress) {
  std::vector<uint8_t> expected;
  {
    auto view = Open(dir_ + "/top.qcow2", false, false);
    expected = ReadAll(*view);
  }
  auto top = Open(dir_ + "/top.qcow2", true);
  auto base = Open(dir_ + "/base.qcow2", false);
  CommitRequest request;
  request.above = {&top->root()};
  request.base = &base->root();
  std::vector<uint64_t> reports;
  request.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, kSize);
    if (!reports.empty()) EXPECT_GT(done, reports.back());
    reports.push_back(done);
  };
  ASSERT_OK(RunCommit(request));
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back(), kSize);
  EXPECT_EQ(ReadAll(*base), expected);
  absl::StatusOr<CheckResult> check = base->root().instance().Check(0);
  ASSERT_OK(check.status());
  EXPECT_EQ(check->corruptions + check->leaks, 0);
}

TEST_F(CommitJobTest, CancellationStopsBetweenPieces) {
  auto top = Open(dir_ + "/top.qcow2", true);
  auto base = Open(dir_ + "/base.qcow2", false);
  std::atomic<bool> cancel{false};
  CommitRequest request;
  request.above = {&top->root()};
  request.base = &base->root();
  request.cancel = &cancel;
  request.progress = [&](uint64_t, uint64_t) { cancel = true; };
  EXPECT_EQ(ErrnoOf(RunCommit(request)), ECANCELED);
  // The first piece (up to 1 MiB) holds nothing of the top's: the base is unchanged.
  std::vector<uint8_t> base_data = ReadAll(*base);
  EXPECT_EQ(base_data, std::vector<uint8_t>(kSize, 0x11));
}

TEST_F(CommitJobTest, AFailedCopyLeavesBothImagesConsistent) {
  auto top = Open(dir_ + "/top.qcow2", true);
  ImageOpenRequest r;
  r.filename = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"blkdebug\",\"inject-error\":"
               "[{\"event\":\"write_aio\",\"state\":0,\"once\":true}],"
               "\"image\":{\"driver\":\"file\",\"filename\":\"" + dir_ + "/base.qcow2\"}}}";
  absl::StatusOr<OpenedImage> img = OpenImage(r);
  ASSERT_OK(img.status());
  BlockBackend base(std::move(img->root), false);
  CommitRequest request;
  request.above = {&top->root()};
  request.base = &base.root();
  EXPECT_EQ(ErrnoOf(RunCommit(request)), EIO);
  ASSERT_OK(base.Close());
  auto reopened = Open(dir_ + "/base.qcow2", false);
  absl::StatusOr<CheckResult> check = reopened->root().instance().Check(0);
  ASSERT_OK(check.status());
  EXPECT_EQ(check->corruptions, 0);
  reopened.reset();
  // The top still reads as before (over the base, which holds old or committed data).
  ASSERT_OK(top->Close());
  top.reset();
  auto view = Open(dir_ + "/top.qcow2", false, false);
  std::vector<uint8_t> data(100000);
  ASSERT_OK(view->Pread(1 << 20, data.size(), data.data()));
  EXPECT_EQ(data, std::vector<uint8_t>(data.size(), 0x33));
}

}  // namespace
}  // namespace strata
