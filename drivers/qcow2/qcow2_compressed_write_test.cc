// strata qcow2: compressed writes: packing, fallback to normal clusters, refusals, and
// the refcount pool's clusters (writethrough) reused for compressed bytes without leaks.
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/status_matchers.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kCluster = 65536;

std::string MakeImage(const std::string& name, const std::string& format = "qcow2") {
  const char* t = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
  CreateRequest create{path, uint64_t{16} << 20, {}};
  EXPECT_OK(DriverRegistry::Global().Find(format)->Create(create));
  return path;
}

std::unique_ptr<BlockBackend> OpenBackend(const std::string& path, bool writethrough,
                                          const std::string& format = "qcow2") {
  ImageOpenRequest r;
  r.filename = path;
  r.format = format;
  absl::StatusOr<OpenedImage> img = OpenImage(r);
  EXPECT_OK(img.status());
  return std::make_unique<BlockBackend>(std::move(img->root), writethrough);
}

std::vector<uint8_t> Compressible(int seed) {
  std::vector<uint8_t> v(kCluster);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i / 512) * 7 + seed);
  return v;
}

std::vector<uint8_t> Noise(int seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(kCluster);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

CheckResult CheckClean(BlockBackend& blk) {
  absl::StatusOr<CheckResult> r = blk.root().instance().Check(0);
  EXPECT_OK(r.status());
  if (!r.ok()) return {};
  EXPECT_EQ(r->corruptions, 0);
  EXPECT_EQ(r->leaks, 0);
  return *r;
}

TEST(Qcow2CompressedWriteTest, ClustersArePackedAndReadBack) {
  const std::string path = MakeImage("packed");
  std::map<uint64_t, std::vector<uint8_t>> written;
  {
    auto blk = OpenBackend(path, false);
    for (int i = 0; i < 6; ++i) {
      written[uint64_t(i) * 3 * kCluster] = Compressible(i);
      ASSERT_OK(blk->Pwrite(uint64_t(i) * 3 * kCluster, kCluster,
                            written[uint64_t(i) * 3 * kCluster].data(), kReqWriteCompressed));
    }
    // Compressed bytes of six clusters share host clusters: far less than six of them.
    ASSERT_OK_AND_ASSIGN(BlockStatus s, blk->root().GetBlockStatus(0, kCluster));
    EXPECT_TRUE(s.data);
    EXPECT_FALSE(s.offset_valid) << "a compressed cluster has no plain host offset";
    CheckResult r = CheckClean(*blk);
    EXPECT_EQ(r.compressed_clusters, 6u);
    ASSERT_OK(blk->Close());
  }
  auto blk = OpenBackend(path, false);
  for (const auto& [offset, data] : written) {
    std::vector<uint8_t> back(kCluster);
    ASSERT_OK(blk->Pread(offset, kCluster, back.data()));
    EXPECT_EQ(back, data) << "offset " << offset;
  }
  CheckClean(*blk);
  ASSERT_OK(blk->Close());
}

TEST(Qcow2CompressedWriteTest, IncompressibleDataIsStoredAsANormalCluster) {
  const std::string path = MakeImage("noise");
  auto blk = OpenBackend(path, false);
  const std::vector<uint8_t> noise = Noise(1);
  ASSERT_OK(blk->Pwrite(kCluster, kCluster, noise.data(), kReqWriteCompressed));
  ASSERT_OK_AND_ASSIGN(BlockStatus s, blk->root().GetBlockStatus(kCluster, kCluster));
  EXPECT_TRUE(s.offset_valid);
  std::vector<uint8_t> back(kCluster);
  ASSERT_OK(blk->Pread(kCluster, kCluster, back.data()));
  EXPECT_EQ(back, noise);
  EXPECT_EQ(CheckClean(*blk).compressed_clusters, 0u);
  ASSERT_OK(blk->Close());
}

TEST(Qcow2CompressedWriteTest, RefusalsAsQemu) {
  const std::string path = MakeImage("refuse");
  auto blk = OpenBackend(path, false);
  const std::vector<uint8_t> data = Compressible(3);
  ASSERT_OK(blk->Pwrite(0, kCluster, data.data()));
  EXPECT_EQ(ErrnoOf(blk->Pwrite(0, kCluster, data.data(), kReqWriteCompressed)), EIO)
      << "an allocated cluster is never overwritten compressed";
  EXPECT_EQ(ErrnoOf(blk->Pwrite(512, kCluster, data.data(), kReqWriteCompressed)), EINVAL);
  EXPECT_EQ(ErrnoOf(blk->Pwrite(kCluster, 4096, data.data(), kReqWriteCompressed)), EINVAL);
  CheckClean(*blk);
  ASSERT_OK(blk->Close());

  const std::string raw = MakeImage("refuse_raw", "raw");
  auto raw_blk = OpenBackend(raw, false, "raw");
  EXPECT_EQ(ErrnoOf(raw_blk->Pwrite(0, kCluster, data.data(), kReqWriteCompressed)), ENOTSUP);
  ASSERT_OK(raw_blk->Close());
}

TEST(Qcow2CompressedWriteTest, PoolClustersTakenForCompressedBytesDoNotLeak) {
  const std::string path = MakeImage("pool");
  auto blk = OpenBackend(path, true);  // writethrough: the refcount pool fills
  std::vector<uint8_t> small(4096, 0x5a);
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(blk->Pwrite(uint64_t(i) * 2 * kCluster, small.size(), small.data()));
  }
  ASSERT_GT(static_cast<Qcow2Instance&>(blk->root().instance()).refcount_pool_size(), 0u);
  for (int i = 0; i < 4; ++i) {
    const std::vector<uint8_t> data = Compressible(10 + i);
    ASSERT_OK(blk->Pwrite((40 + uint64_t(i)) * kCluster, kCluster, data.data(),
                          kReqWriteCompressed));
  }
  for (int i = 0; i < 4; ++i) {
    std::vector<uint8_t> back(kCluster);
    ASSERT_OK(blk->Pread((40 + uint64_t(i)) * kCluster, kCluster, back.data()));
    EXPECT_EQ(back, Compressible(10 + i));
  }
  ASSERT_OK(blk->Close());
  auto again = OpenBackend(path, false);
  EXPECT_EQ(CheckClean(*again).compressed_clusters, 4u);
  ASSERT_OK(again->Close());
}

// The host cluster compressed bytes were packed into is freed (the only compressed
// cluster in it was overwritten) and reused whole by a normal allocation: the next
// compressed cluster must not be packed after the old bytes, into that data cluster
// (QEMU 7.2 does, and the image then has a cluster referenced twice).
TEST(Qcow2CompressedWriteTest, FreedPackingClusterIsNotPackedIntoAgain) {
  const std::string path = MakeImage("repack");
  auto blk = OpenBackend(path, false);
  const std::vector<uint8_t> first = Compressible(20), second = Compressible(21);
  ASSERT_OK(blk->Pwrite(0, kCluster, first.data(), kReqWriteCompressed));
  std::vector<uint8_t> small(4096, 0x3e);
  ASSERT_OK(blk->Pwrite(0, small.size(), small.data()));  // copies it out, frees the bytes
  ASSERT_OK(blk->Flush());
  std::vector<uint8_t> data(2048, 0x66);
  ASSERT_OK(blk->Pwrite(2 * kCluster, data.size(), data.data()));  // takes the freed cluster
  ASSERT_OK(blk->Pwrite(4 * kCluster, kCluster, second.data(), kReqWriteCompressed));
  std::vector<uint8_t> back(data.size());
  ASSERT_OK(blk->Pread(2 * kCluster, back.size(), back.data()));
  EXPECT_EQ(back, data);
  back.resize(kCluster);
  ASSERT_OK(blk->Pread(4 * kCluster, kCluster, back.data()));
  EXPECT_EQ(back, second);
  ASSERT_OK(blk->Close());
  auto again = OpenBackend(path, false);
  EXPECT_EQ(CheckClean(*again).compressed_clusters, 1u);
  ASSERT_OK(again->Close());
}

}  // namespace
}  // namespace strata::qcow2
