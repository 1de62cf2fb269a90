// strata: the cross-driver conformance cases (see driver_conformance.h).
#include "block/testing/driver_conformance.h"

#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "block/registry.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"

namespace strata::testing {

absl::StatusOr<std::unique_ptr<BlockBackend>> OpenBackend(const ImageOpenRequest& request) {
  absl::StatusOr<OpenedImage> img = OpenImage(request);
  if (!img.ok()) return img.status();
  return std::make_unique<BlockBackend>(std::move(img->root), false);
}

absl::Status CreateQcow2(const std::string& filename, uint64_t size_bytes,
                         std::map<std::string, std::string> options,
                         const std::string& backing_path) {
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  if (!backing_path.empty()) {
    CreateRequest base;
    base.filename = backing_path;
    base.size_bytes = size_bytes;
    absl::Status st = qcow2->Create(base);
    if (!st.ok()) return st;
    options["backing_file"] = backing_path;
    options["backing_fmt"] = "qcow2";
  }
  CreateRequest r;
  r.filename = filename;
  r.size_bytes = size_bytes;
  r.options = std::move(options);
  return qcow2->Create(r);
}

void DriverConformanceTest::SetUp() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base = tmp ? tmp : "/tmp";
  char templ[512];
  std::snprintf(templ, sizeof(templ), "%s/conformance.XXXXXX", base.c_str());
  ASSERT_NE(mkdtemp(templ), nullptr);
  dir_ = templ;
  ASSERT_OK_AND_ASSIGN(blk_, GetParam().open(dir_, kImageBytes));
}

namespace {

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

TEST_P(DriverConformanceTest, LengthIsTheCreatedSize) {
  ASSERT_OK_AND_ASSIGN(uint64_t len, blk_->GetLength());
  EXPECT_EQ(len, kImageBytes);
}

TEST_P(DriverConformanceTest, FreshImageReadsAsZeroes) {
  if (!GetParam().stores_data) GTEST_SKIP() << "stack drops data";
  std::vector<uint8_t> buf(kImageBytes, 0xff);
  ASSERT_OK(blk_->Pread(0, buf.size(), buf.data()));
  EXPECT_TRUE(BufferIsZero(buf.data(), buf.size()));
}

TEST_P(DriverConformanceTest, WriteReadRoundTrip) {
  if (!GetParam().stores_data) GTEST_SKIP() << "stack drops data";
  std::vector<uint8_t> data = Pattern(192 * 1024, 3);
  ASSERT_OK(blk_->Pwrite(64 * 1024, data.size(), data.data()));
  std::vector<uint8_t> back(data.size());
  ASSERT_OK(blk_->Pread(64 * 1024, back.size(), back.data()));
  EXPECT_EQ(back, data);
}

TEST_P(DriverConformanceTest, UnalignedHeadsAndTails) {
  if (!GetParam().stores_data) GTEST_SKIP() << "stack drops data";
  std::vector<uint8_t> model(64 * 1024, 0);
  std::mt19937 rng(42);
  for (int i = 0; i < 40; ++i) {
    uint64_t off = rng() % (model.size() - 3000);
    uint64_t len = 1 + rng() % 2999;
    std::vector<uint8_t> data = Pattern(len, static_cast<uint8_t>(i));
    ASSERT_OK(blk_->Pwrite(off, len, data.data()));
    std::copy(data.begin(), data.end(), model.begin() + off);
  }
  std::vector<uint8_t> back(model.size());
  ASSERT_OK(blk_->Pread(0, back.size(), back.data()));
  EXPECT_EQ(back, model);
  uint8_t byte = 0;
  ASSERT_OK(blk_->Pread(12345, 1, &byte));
  EXPECT_EQ(byte, model[12345]);
}

TEST_P(DriverConformanceTest, WriteZeroesWithAndWithoutUnmap) {
  if (!GetParam().stores_data) GTEST_SKIP() << "stack drops data";
  std::vector<uint8_t> data = Pattern(256 * 1024, 9);
  ASSERT_OK(blk_->Pwrite(0, data.size(), data.data()));
  ASSERT_OK(blk_->PwriteZeroes(4096, 8192));
  ASSERT_OK(blk_->PwriteZeroes(65536, 65536, kReqMayUnmap));
  ASSERT_OK(blk_->PwriteZeroes(200000, 1000));  // unaligned: falls back where needed
  std::vector<uint8_t> back(data.size());
  ASSERT_OK(blk_->Pread(0, back.size(), back.data()));
  for (size_t i = 0; i < back.size(); ++i) {
    bool zeroed = (i >= 4096 && i < 12288) || (i >= 65536 && i < 131072) ||
                  (i >= 200000 && i < 201000);
    ASSERT_EQ(back[i], zeroed ? 0 : data[i]) << "offset " << i;
  }
}

TEST_P(DriverConformanceTest, RequestsAtAndPastTheEnd) {
  std::vector<uint8_t> buf(4096);
  EXPECT_OK(blk_->Pread(kImageBytes - 4096, 4096, buf.data()));
  EXPECT_OK(blk_->Pwrite(kImageBytes - 1, 1, buf.data()));
  EXPECT_EQ(ErrnoOf(blk_->Pread(kImageBytes, 1, buf.data())), EIO);
  EXPECT_EQ(ErrnoOf(blk_->Pwrite(kImageBytes - 1, 2, buf.data())), EIO);
  EXPECT_EQ(ErrnoOf(blk_->PwriteZeroes(kImageBytes, 512)), EIO);
  EXPECT_OK(blk_->Pread(kImageBytes, 0, buf.data()));
}

TEST_P(DriverConformanceTest, ConcurrentNonOverlappingWrites) {
  constexpr int kThreads = 8;
  constexpr uint64_t kSlice = 128 * 1024;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      std::vector<uint8_t> data = Pattern(kSlice, static_cast<uint8_t>(t * 31));
      for (uint64_t off = 0; off < kSlice; off += 4096 + 512 * t) {
        uint64_t n = std::min<uint64_t>(4096 + 512 * t, kSlice - off);
        ASSERT_OK(blk_->Pwrite(t * kSlice + off, n, data.data() + off));
      }
    });
  }
  for (auto& th : threads) th.join();
  if (!GetParam().stores_data) return;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<uint8_t> back(kSlice);
    ASSERT_OK(blk_->Pread(t * kSlice, kSlice, back.data()));
    EXPECT_EQ(back, Pattern(kSlice, static_cast<uint8_t>(t * 31))) << "thread " << t;
  }
}

TEST_P(DriverConformanceTest, FlushAndDiscardSucceed) {
  std::vector<uint8_t> data = Pattern(65536, 1);
  ASSERT_OK(blk_->Pwrite(0, data.size(), data.data()));
  EXPECT_OK(blk_->Flush());
  EXPECT_OK(blk_->Flush());  // nothing new to flush
  EXPECT_OK(blk_->Pdiscard(0, 65536));
  EXPECT_OK(blk_->Flush());
}

TEST_P(DriverConformanceTest, BlockStatusCoversTheImage) {
  if (GetParam().stores_data) {
    std::vector<uint8_t> data = Pattern(65536, 5);
    ASSERT_OK(blk_->Pwrite(1 << 20, data.size(), data.data()));
  }
  uint64_t off = 0;
  int runs = 0;
  while (off < kImageBytes) {
    ASSERT_OK_AND_ASSIGN(BlockStatus s, blk_->root().GetBlockStatus(off, kImageBytes - off));
    ASSERT_GT(s.bytes, 0u) << "at " << off;
    ASSERT_LE(off + s.bytes, kImageBytes);
    if (GetParam().stores_data && off <= (1u << 20) && (1u << 20) < off + s.bytes) {
      EXPECT_TRUE(s.data) << "written range reported without data at " << off;
    }
    off += s.bytes;
    ASSERT_LT(++runs, 100000);
  }
}

}  // namespace
}  // namespace strata::testing
