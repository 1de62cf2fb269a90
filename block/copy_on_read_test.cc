// strata: copy-on-read copies what a read finds below the top node into it (data as
// data, zeroes as zero clusters), only where the top does not allocate, and never over a
// guest write that lands while a copy runs.
#include "block/copy_on_read.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kCluster = 65536;
constexpr uint64_t kSize = 16 * kCluster;

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
}

int Shell(const std::string& command) { return std::system(command.c_str()); }

// A raw base: cluster 0 holds 0xaa, cluster 1 zeroes, the rest 0xcc; a qcow2 overlay
// with cluster 2 written (0xdd).
std::unique_ptr<BlockBackend> OpenOverlay(const std::string& top) {
  const std::string base = top + ".base";
  std::vector<uint8_t> data(kSize, 0xcc);
  std::fill(data.begin(), data.begin() + kCluster, 0xaa);
  std::fill(data.begin() + kCluster, data.begin() + 2 * kCluster, 0);
  FILE* f = std::fopen(base.c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  EXPECT_EQ(Shell("qemu-img create -q -f qcow2 -b " + base + " -F raw " + top), 0);
  EXPECT_EQ(Shell("qemu-io -c 'write -P 0xdd 128k 64k' " + top + " >/dev/null"), 0);
  ImageOpenRequest req;
  req.filename = top;
  req.format = "qcow2";
  absl::StatusOr<OpenedImage> opened = OpenImage(req);
  EXPECT_OK(opened.status());
  auto blk = std::make_unique<BlockBackend>(std::move(opened->root), false);
  blk->EnableCopyOnRead();
  return blk;
}

bool AllocatedInTop(BlockBackend& blk, uint64_t offset) {
  bool allocated = false;
  EXPECT_OK(blk.root().IsAllocated(offset, 512, &allocated).status());
  return allocated;
}

TEST(CopyOnReadTest, CopiesWholeClustersDataAndZeroes) {
  const std::string top = TempPath("cor_copy.qcow2");
  std::unique_ptr<BlockBackend> blk = OpenOverlay(top);
  std::vector<uint8_t> buf(8192);
  // Cluster 1 alone: zeroes, copied as a zero cluster.
  ASSERT_OK(blk->Pread(kCluster + 100, 100, buf.data()));
  EXPECT_EQ(buf[0], 0);
  ASSERT_OK_AND_ASSIGN(BlockStatus zero, blk->root().GetBlockStatus(kCluster, kCluster));
  EXPECT_TRUE(zero.allocated);
  EXPECT_TRUE(zero.zero);
  EXPECT_FALSE(zero.data);
  // Straddles clusters 3 and 4 (both data below): copied in one step, as data.
  ASSERT_OK(blk->Pread(4 * kCluster - 4096, 8192, buf.data()));
  EXPECT_EQ(buf[0], 0xcc);
  EXPECT_TRUE(AllocatedInTop(*blk, 3 * kCluster));
  EXPECT_TRUE(AllocatedInTop(*blk, 5 * kCluster - 512));
  EXPECT_FALSE(AllocatedInTop(*blk, 0));
  EXPECT_FALSE(AllocatedInTop(*blk, 5 * kCluster));
  ASSERT_OK(blk->Pread(0, 4096, buf.data()));
  EXPECT_EQ(buf[0], 0xaa);
  EXPECT_TRUE(AllocatedInTop(*blk, 0));
  // The top's own cluster reads as before.
  ASSERT_OK(blk->Pread(2 * kCluster + 100, 100, buf.data()));
  EXPECT_EQ(buf[0], 0xdd);
  ASSERT_OK(blk->Close());
  EXPECT_EQ(Shell("qemu-img check -q " + top), 0);
  // QEMU reads back the same: the copied cluster now lives in the top alone.
  EXPECT_EQ(Shell("qemu-io -c 'read -P 0xaa 0 64k' -c 'read -P 0 64k 64k' " + top +
                  " | grep -q Pattern; test $? -ne 0"),
            0);
  ::unlink(top.c_str());
  ::unlink((top + ".base").c_str());
}

// A copy and a guest write to the same cluster, many times over from two threads: the
// write always survives.
TEST(CopyOnReadTest, NeverCopiesOverAConcurrentWrite) {
  const std::string top = TempPath("cor_race.qcow2");
  std::unique_ptr<BlockBackend> blk = OpenOverlay(top);
  for (uint64_t c = 5; c < 16; ++c) {
    const uint64_t at = c * kCluster;
    std::thread reader([&] {
      std::vector<uint8_t> buf(kCluster);
      for (int i = 0; i < 4; ++i) EXPECT_OK(blk->Pread(at, kCluster, buf.data()));
    });
    std::vector<uint8_t> mine(4096, static_cast<uint8_t>(c));
    ASSERT_OK(blk->Pwrite(at + 8192, mine.size(), mine.data()));
    reader.join();
    std::vector<uint8_t> back(4096);
    ASSERT_OK(blk->Pread(at + 8192, back.size(), back.data()));
    EXPECT_EQ(back, mine) << "cluster " << c;
  }
  ASSERT_OK(blk->Close());
  EXPECT_EQ(Shell("qemu-img check -q " + top), 0);
  ::unlink(top.c_str());
  ::unlink((top + ".base").c_str());
}

}  // namespace
}  // namespace strata
