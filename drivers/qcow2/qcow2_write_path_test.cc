// strata qcow2: the allocating write path's economies keep images exact and crash safe.
// The file tail reserved ahead of allocations is trimmed at close and harmless after a
// crash; the refcount pool (clusters counted ahead in writethrough use) changes neither
// the layout nor what check finds after a clean close, and leaves only leaks after a
// crash; table write-backs cover just the changed part of a table.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/crash_sim.h"
#include "block/testing/status_matchers.h"
#include "drivers/qcow2/qcow2_instance.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kCluster = 65536;

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
}

std::string MakeImage(const std::string& name,
                      std::map<std::string, std::string> options = {}) {
  const std::string path = TempPath(name);
  CreateRequest create{path, uint64_t{1} << 30, std::move(options)};
  EXPECT_OK(DriverRegistry::Global().Find("qcow2")->Create(create));
  return path;
}

absl::StatusOr<OpenedImage> Open(const std::string& path, bool read_only = false) {
  ImageOpenRequest r;
  r.filename = path;
  r.format = "qcow2";
  r.flags.read_only = read_only;
  return OpenImage(r);
}

uint64_t FileLength(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_size;
}

CheckResult CheckImage(const std::string& path, uint32_t fix = 0) {
  absl::StatusOr<OpenedImage> img = Open(path, fix == 0);
  EXPECT_OK(img.status());
  if (!img.ok()) return {};
  absl::StatusOr<CheckResult> r = img->root->instance().Check(fix);
  EXPECT_OK(r.status());
  EXPECT_OK(img->root->Close());
  return r.ok() ? *r : CheckResult{};
}

std::vector<uint8_t> Pattern(size_t n, int seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + seed);
  return v;
}

// Host offset of each of the first `clusters` guest clusters (0 if unallocated).
std::vector<uint64_t> HostMap(const std::string& path, uint64_t clusters) {
  absl::StatusOr<OpenedImage> img = Open(path, true);
  EXPECT_OK(img.status());
  std::vector<uint64_t> map;
  for (uint64_t c = 0; c < clusters && img.ok(); ++c) {
    absl::StatusOr<BlockStatus> s = img->root->GetBlockStatus(c * kCluster, kCluster);
    EXPECT_OK(s.status());
    map.push_back(s.ok() && s->offset_valid ? s->host_offset : 0);
  }
  if (img.ok()) EXPECT_OK(img->root->Close());
  return map;
}

void Copy(const std::string& from, const std::string& to) {
  ASSERT_EQ(std::system(("cp " + from + " " + to).c_str()), 0);
}

TEST(Qcow2WritePathTest, ReservedTailIsTrimmedAtClose) {
  const std::string path = MakeImage("tail");
  const uint64_t created = FileLength(path);
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path));
  BlockBackend blk(std::move(img.root), false);
  const std::vector<uint8_t> data = Pattern(16 * kCluster, 1);
  ASSERT_OK(blk.Pwrite(0, data.size(), data.data()));
  ASSERT_OK(blk.Flush());
  // Header, reftable, refblock, L1 (the file ends inside its cluster), then one L2 table
  // and 16 data clusters.
  const uint64_t used = (created + kCluster - 1) / kCluster * kCluster + 17 * kCluster;
  EXPECT_GT(FileLength(path), used) << "the file was not extended ahead";
  ASSERT_OK(blk.Close());
  EXPECT_EQ(FileLength(path), used);
  CheckResult r = CheckImage(path);
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.leaks, 0);
  EXPECT_EQ(r.image_end_offset, used);
}

TEST(Qcow2WritePathTest, ReservedTailAfterACrashIsJustSpace) {
  const std::string path = MakeImage("tail_crash");
  const std::string crashed = TempPath("tail_crashed");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path));
  BlockBackend blk(std::move(img.root), false);
  const std::vector<uint8_t> data = Pattern(8 * kCluster, 2);
  ASSERT_OK(blk.Pwrite(3 * kCluster, data.size(), data.data()));
  ASSERT_OK(blk.Flush());
  Copy(path, crashed);  // the file as a crash now would leave it, tail and all
  ASSERT_OK(blk.Close());
  EXPECT_GT(FileLength(crashed), FileLength(path));
  CheckResult r = CheckImage(crashed);
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.leaks, 0);
  EXPECT_EQ(r.check_errors, 0);
  // The tail is reused: more writes, a clean close, still consistent and readable.
  {
    ASSERT_OK_AND_ASSIGN(OpenedImage again, Open(crashed));
    BlockBackend b(std::move(again.root), false);
    ASSERT_OK(b.Pwrite(100 * kCluster, data.size(), data.data()));
    std::vector<uint8_t> back(data.size());
    ASSERT_OK(b.Pread(3 * kCluster, back.size(), back.data()));
    EXPECT_EQ(back, data);
    ASSERT_OK(b.Close());
  }
  r = CheckImage(crashed);
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.leaks, 0);
}

// 40 strided 4 KiB writes, each allocating a cluster, through `writethrough` or not.
void StridedWrites(const std::string& path, bool writethrough, size_t* pool_seen) {
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path));
  Qcow2Instance& inst = static_cast<Qcow2Instance&>(img.root->instance());
  BlockBackend blk(std::move(img.root), writethrough);
  for (int i = 0; i < 40; ++i) {
    const std::vector<uint8_t> data = Pattern(4096, i);
    ASSERT_OK(blk.Pwrite(uint64_t(i) * (kCluster + 4096), data.size(), data.data()));
    if (pool_seen) *pool_seen = std::max(*pool_seen, inst.refcount_pool_size());
  }
  ASSERT_OK(blk.Close());
}

TEST(Qcow2WritePathTest, RefcountPoolKeepsTheLayoutAndLeavesNoLeaks) {
  const std::string through = MakeImage("pool_wt");
  const std::string back = MakeImage("pool_wb");
  size_t pool_seen = 0;
  StridedWrites(through, true, &pool_seen);
  StridedWrites(back, false, nullptr);
  EXPECT_GT(pool_seen, 0u) << "writethrough allocations never used the pool";
  EXPECT_EQ(HostMap(through, 48), HostMap(back, 48));
  EXPECT_EQ(FileLength(through), FileLength(back));
  CheckResult r = CheckImage(through);
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.leaks, 0);
}

TEST(Qcow2WritePathTest, RefcountPoolLeavesOnlyLeaksAfterACrash) {
  const std::string path = MakeImage("pool_crash");
  const std::string crashed = TempPath("pool_crashed");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path));
  Qcow2Instance& inst = static_cast<Qcow2Instance&>(img.root->instance());
  BlockBackend blk(std::move(img.root), true);
  std::vector<std::vector<uint8_t>> written;
  for (int i = 0; i < 6; ++i) {
    written.push_back(Pattern(4096, 50 + i));
    ASSERT_OK(blk.Pwrite(uint64_t(i) * 2 * kCluster, 4096, written.back().data()));
  }
  ASSERT_GT(inst.refcount_pool_size(), 0u);
  // Check inside the session does not mistake the pool for leaks.
  ASSERT_OK_AND_ASSIGN(CheckResult live, inst.Check(0));
  EXPECT_EQ(live.leaks, 0);
  EXPECT_EQ(live.corruptions, 0);
  for (int i = 6; i < 12; ++i) {
    written.push_back(Pattern(4096, 50 + i));
    ASSERT_OK(blk.Pwrite(uint64_t(i) * 2 * kCluster, 4096, written.back().data()));
  }
  ASSERT_GT(inst.refcount_pool_size(), 0u);
  Copy(path, crashed);  // writethrough: every write above is on disk
  ASSERT_OK(blk.Close());

  CheckResult r = CheckImage(crashed);
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.check_errors, 0);
  EXPECT_GT(r.leaks, 0) << "the pool's clusters should show as leaks";
  r = CheckImage(crashed, kCheckFixLeaks);
  EXPECT_GT(r.leaks_fixed, 0);
  r = CheckImage(crashed);
  EXPECT_EQ(r.leaks, 0);
  ASSERT_OK_AND_ASSIGN(OpenedImage reopened, Open(crashed, true));
  for (int i = 0; i < 12; ++i) {
    std::vector<uint8_t> data(4096);
    ASSERT_OK(reopened.root->Pread(uint64_t(i) * 2 * kCluster, data.size(), data.data()));
    EXPECT_EQ(data, written[i]) << "write " << i;
  }
  ASSERT_OK(reopened.root->Close());
}

TEST(Qcow2WritePathTest, TableWriteBackCoversOnlyTheChangedBlock) {
  const std::string path = MakeImage("partial", {{"lazy_refcounts", "on"}});
  std::ifstream in(path, std::ios::binary);
  auto disk = std::make_shared<testing::SimDisk>(
      std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
  testing::SimDisk::Register("partial", disk);
  ImageOpenRequest r;
  r.filename = R"(json:{"driver":"qcow2","file":{"driver":"crash-sim","name":"partial"}})";
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenImage(r));
  BlockBackend blk(std::move(img.root), false);
  const std::vector<uint8_t> data = Pattern(4096, 3);
  ASSERT_OK(blk.Pwrite(0, data.size(), data.data()));  // the L2 table is created
  ASSERT_OK(blk.Flush());
  // An allocation far into the table: one 8-byte L2 entry changes.
  ASSERT_OK(blk.Pwrite(5000 * kCluster, data.size(), data.data()));
  ASSERT_OK(blk.root().instance().FlushToOs());
  // The guest data (the new cluster was never written: no zeroing needed) was made
  // stable before the L2 table that points at it was written (a crash must not leave the
  // entry without its data, lazy refcounts or not); then only the table's changed 4 KiB
  // (not 64 KiB) was written.
  EXPECT_EQ(disk->PendingWriteSizes(), (std::vector<uint64_t>{4096}));
  ASSERT_OK(blk.Close());
  testing::SimDisk::Unregister("partial");
}

TEST(Qcow2WritePathTest, ReusedClusterIsZeroedAroundAPartialWrite) {
  // A cluster freed by a discard still holds its old bytes; a partial write that gets it
  // again must not show them (fresh clusters past the old end skip the zeroing).
  const std::string path = MakeImage("reuse");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path));
  BlockBackend blk(std::move(img.root), false);
  const std::vector<uint8_t> old_data(kCluster, 0xaa);
  ASSERT_OK(blk.Pwrite(0, old_data.size(), old_data.data()));
  ASSERT_OK(blk.Flush());
  ASSERT_OK(blk.Pdiscard(0, kCluster));
  ASSERT_OK(blk.Flush());  // the host cluster is free now
  const std::vector<uint8_t> data = Pattern(4096, 9);
  ASSERT_OK(blk.Pwrite(7 * kCluster + 8192, data.size(), data.data()));
  std::vector<uint8_t> back(kCluster);
  ASSERT_OK(blk.Pread(7 * kCluster, back.size(), back.data()));
  std::vector<uint8_t> want(kCluster, 0);
  std::copy(data.begin(), data.end(), want.begin() + 8192);
  EXPECT_EQ(back, want);
  ASSERT_OK(blk.Close());
  ASSERT_OK_AND_ASSIGN(OpenedImage again, Open(path, true));
  ASSERT_OK(again.root->Pread(7 * kCluster, back.size(), back.data()));
  EXPECT_EQ(back, want);
  ASSERT_OK(again.root->Close());
}

}  // namespace
}  // namespace strata::qcow2
