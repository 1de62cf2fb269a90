// strata qcow2: cache sizing options reach the open image, and cache-clean-interval
// drops what went unused.
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "absl/time/clock.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/status_matchers.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

std::string MakeImage(const std::string& name, uint64_t size) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string path = std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  CreateRequest create{path, size, {}};
  EXPECT_OK(qcow2->Create(create));
  return path;
}

absl::StatusOr<OpenedImage> Open(const std::string& path, const std::string& extra) {
  ImageOpenRequest r;
  r.image_opts = true;
  r.filename = "driver=qcow2,file.driver=file,file.filename=" + path + extra;
  return OpenImage(r);
}

Qcow2Instance& InstanceOf(OpenedImage& img) {
  return static_cast<Qcow2Instance&>(img.root->instance());
}

TEST(Qcow2CacheTest, SizingOptionsReachTheCaches) {
  const std::string path = MakeImage("sizing", uint64_t{64} << 30);
  {
    ASSERT_OK_AND_ASSIGN(OpenedImage img,
                         Open(path, ",l2-cache-size=1M,refcount-cache-size=512k"));
    EXPECT_EQ(InstanceOf(img).cache_sizes().l2_tables, 16u);
    EXPECT_EQ(InstanceOf(img).cache_sizes().refcount_blocks, 8u);
    ASSERT_OK(img.root->Close());
  }
  absl::StatusOr<OpenedImage> bad =
      Open(path, ",l2-cache-size=1M,refcount-cache-size=512k,cache-size=2M");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("may not be set at the same time"), std::string::npos)
      << bad.status();
}

TEST(Qcow2CacheTest, LimitedL2CacheStillReadsEverything) {
  // 2 tables of cache for a 4 GiB image written in 8 places far apart.
  const std::string path = MakeImage("small_cache", uint64_t{4} << 30);
  {
    ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, ",l2-cache-size=128k"));
    BlockBackend blk(std::move(img.root), false);
    for (int i = 0; i < 8; ++i) {
      std::vector<uint8_t> data(4096, static_cast<uint8_t>(i + 1));
      ASSERT_OK(blk.Pwrite(static_cast<uint64_t>(i) << 29, data.size(), data.data()));
    }
    ASSERT_OK(blk.Close());
  }
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, ",l2-cache-size=128k"));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 8; ++i) {
      std::vector<uint8_t> data(4096);
      ASSERT_OK(img.root->Pread(static_cast<uint64_t>(i) << 29, data.size(), data.data()));
      EXPECT_EQ(data[0], i + 1);
      EXPECT_LE(InstanceOf(img).cached_l2_tables(), 2u);
    }
  }
  ASSERT_OK(img.root->Close());
}

TEST(Qcow2CacheTest, CleanIntervalDropsUnusedTables) {
  const std::string path = MakeImage("clean", uint64_t{1} << 30);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, ",cache-clean-interval=1"));
  std::vector<uint8_t> data(4096, 7);
  ASSERT_OK(img.root->Pwrite(0, data.size(), data.data()));
  ASSERT_OK(img.root->Flush());
  EXPECT_GE(InstanceOf(img).cached_l2_tables(), 1u);
  // Unused for two full intervals: gone (polling, the cleaner runs on its own clock).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (InstanceOf(img).cached_l2_tables() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(InstanceOf(img).cached_l2_tables(), 0u);
  EXPECT_EQ(InstanceOf(img).cached_refcount_blocks(), 0u);
  // And the data is still there, read back through a reloaded table.
  std::vector<uint8_t> back(4096);
  ASSERT_OK(img.root->Pread(0, back.size(), back.data()));
  EXPECT_EQ(back, data);
  ASSERT_OK(img.root->Close());
}

}  // namespace
}  // namespace strata::qcow2
