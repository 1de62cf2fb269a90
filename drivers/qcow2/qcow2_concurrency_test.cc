// strata qcow2: many threads writing adjacent and overlapping ranges of an empty overlay
// over a patterned backing file. Adjacent (disjoint) writes must all survive exactly
// (the serial model); where writes overlap, each byte must hold one of the patterns that
// covered it. Then the image must pass qemu-img check (when installed) with no errors or
// leaks, and read back the same after reopening.
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kImageBytes = 8 << 20;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::unique_ptr<BlockBackend> OpenQcow2(const std::string& path) {
  ImageOpenRequest r;
  r.filename = path;
  r.format = "qcow2";
  absl::StatusOr<OpenedImage> img = OpenImage(r);
  EXPECT_TRUE(img.ok()) << img.status();
  if (!img.ok()) return nullptr;
  return std::make_unique<BlockBackend>(std::move(img->root), false);
}

TEST(Qcow2ConcurrencyTest, ConcurrentAllocatingWritesMatchTheModel) {
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  std::string dir = TempDir() + "/concurrency_" + std::to_string(getpid());
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  CreateRequest base{dir + "/base.qcow2", kImageBytes, {}};
  ASSERT_OK(qcow2->Create(base));
  {
    auto blk = OpenQcow2(base.filename);
    ASSERT_NE(blk, nullptr);
    std::vector<uint8_t> fill(kImageBytes, 0xbb);
    ASSERT_OK(blk->Pwrite(0, fill.size(), fill.data()));
  }
  CreateRequest top{dir + "/top.qcow2", kImageBytes,
                    {{"backing_file", "base.qcow2"}, {"backing_fmt", "qcow2"},
                     {"cluster_size", "4096"}}};
  ASSERT_OK(qcow2->Create(top));

  // Each byte's possible values: the backing pattern, or any writer that covered it.
  std::vector<std::vector<uint8_t>> allowed(kImageBytes / 512);
  struct Write {
    uint64_t offset, len;
    uint8_t pattern;
  };
  std::vector<std::vector<Write>> plans(8);
  std::mt19937 rng(12345);
  uint8_t next_pattern = 1;
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 40; ++i) {
      // Sector-aligned pieces so the model can be kept per 512-byte sector.
      uint64_t off = (rng() % (kImageBytes / 512 - 64)) * 512;
      uint64_t len = (1 + rng() % 40) * 512;
      plans[t].push_back({off, len, next_pattern++});
      if (next_pattern == 0xbb || next_pattern == 0) next_pattern = 1;
    }
  }
  for (auto& plan : plans) {
    for (const Write& w : plan) {
      for (uint64_t s = w.offset / 512; s < (w.offset + w.len) / 512; ++s) {
        allowed[s].push_back(w.pattern);
      }
    }
  }
  {
    auto blk = OpenQcow2(top.filename);
    ASSERT_NE(blk, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (const Write& w : plans[t]) {
          std::vector<uint8_t> data(w.len, w.pattern);
          ASSERT_OK(blk->Pwrite(w.offset, w.len, data.data()));
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_OK(blk->Flush());
  }
  auto blk = OpenQcow2(top.filename);
  ASSERT_NE(blk, nullptr);
  std::vector<uint8_t> back(kImageBytes);
  ASSERT_OK(blk->Pread(0, back.size(), back.data()));
  for (uint64_t s = 0; s < kImageBytes / 512; ++s) {
    const uint8_t first = back[s * 512];
    for (uint64_t i = 1; i < 512; ++i) {
      ASSERT_EQ(back[s * 512 + i], first) << "sector " << s << " is torn";
    }
    if (allowed[s].empty()) {
      ASSERT_EQ(first, 0xbb) << "sector " << s << " lost its backing data";
    } else if (allowed[s].size() == 1) {
      ASSERT_EQ(first, allowed[s][0]) << "sector " << s << " lost its only write";
    } else {
      bool ok = false;
      for (uint8_t p : allowed[s]) ok |= p == first;
      ASSERT_TRUE(ok) << "sector " << s << " holds a value no writer wrote";
    }
  }
  ASSERT_OK(blk->Close());
  if (system("command -v qemu-img >/dev/null 2>&1") == 0) {
    EXPECT_EQ(system(("qemu-img check -q " + top.filename).c_str()), 0);
  }
}

}  // namespace
}  // namespace strata
