#include "drivers/qcow2/qcow2_cache_sizing.h"

#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kCluster = 64 << 10;
constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(CacheSizingTest, DefaultsCoverTheImageUpTo32MiB) {
  // 8 GiB of guest space needs 1 MiB of L2 tables = 16 tables of 64 KiB.
  ASSERT_OK_AND_ASSIGN(CacheSizes small, ComputeCacheSizes({}, 8 * kGiB, kCluster));
  EXPECT_EQ(small.l2_tables, 16u);
  EXPECT_EQ(small.refcount_blocks, 4u);
  // 1 TiB would need 128 MiB: capped at 32 MiB = 512 tables.
  ASSERT_OK_AND_ASSIGN(CacheSizes big, ComputeCacheSizes({}, 1024 * kGiB, kCluster));
  EXPECT_EQ(big.l2_tables, 512u);
  // A tiny image still gets the minimum.
  ASSERT_OK_AND_ASSIGN(CacheSizes tiny, ComputeCacheSizes({}, 1 << 20, kCluster));
  EXPECT_EQ(tiny.l2_tables, 2u);
}

TEST(CacheSizingTest, ExtendedL2EntriesNeedTwiceTheTables) {
  // 16-byte entries: 8 GiB of guest space takes 2 MiB of L2 tables = 32 tables.
  ASSERT_OK_AND_ASSIGN(CacheSizes s, ComputeCacheSizes({}, 8 * kGiB, kCluster, 16));
  EXPECT_EQ(s.l2_tables, 32u);
}

TEST(CacheSizingTest, ExplicitSizesAreHonouredButNotBeyondTheImage) {
  CacheSizeOptions o;
  o.l2_cache_size = 4 * kCluster;
  o.refcount_cache_size = 10 * kCluster;
  ASSERT_OK_AND_ASSIGN(CacheSizes s, ComputeCacheSizes(o, 1024 * kGiB, kCluster));
  EXPECT_EQ(s.l2_tables, 4u);
  EXPECT_EQ(s.refcount_blocks, 10u);
  o.l2_cache_size = 1024 * kCluster;  // more than an 8 GiB image can use
  ASSERT_OK_AND_ASSIGN(s, ComputeCacheSizes(o, 8 * kGiB, kCluster));
  EXPECT_EQ(s.l2_tables, 16u);
}

TEST(CacheSizingTest, TotalSizeGoesToL2First) {
  CacheSizeOptions o;
  o.cache_size = 100 * kCluster;
  ASSERT_OK_AND_ASSIGN(CacheSizes s, ComputeCacheSizes(o, 8 * kGiB, kCluster));
  EXPECT_EQ(s.l2_tables, 16u);
  EXPECT_EQ(s.refcount_blocks, 84u);
  ASSERT_OK_AND_ASSIGN(s, ComputeCacheSizes(o, 1024 * kGiB, kCluster));
  EXPECT_EQ(s.l2_tables, 96u);
  EXPECT_EQ(s.refcount_blocks, 4u);
  o.l2_cache_size = 30 * kCluster;
  ASSERT_OK_AND_ASSIGN(s, ComputeCacheSizes(o, 1024 * kGiB, kCluster));
  EXPECT_EQ(s.l2_tables, 30u);
  EXPECT_EQ(s.refcount_blocks, 70u);
}

TEST(CacheSizingTest, ContradictionsAreRefusedWithQemusWords) {
  CacheSizeOptions all;
  all.l2_cache_size = all.refcount_cache_size = all.cache_size = kCluster;
  EXPECT_EQ(ComputeCacheSizes(all, kGiB, kCluster).status().message(),
            "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time");
  CacheSizeOptions l2_over;
  l2_over.cache_size = kCluster;
  l2_over.l2_cache_size = 2 * kCluster;
  EXPECT_EQ(ComputeCacheSizes(l2_over, kGiB, kCluster).status().message(),
            "l2-cache-size may not exceed cache-size");
  CacheSizeOptions rc_over;
  rc_over.cache_size = kCluster;
  rc_over.refcount_cache_size = 2 * kCluster;
  EXPECT_EQ(ComputeCacheSizes(rc_over, kGiB, kCluster).status().message(),
            "refcount-cache-size may not exceed cache-size");
}

}  // namespace
}  // namespace strata::qcow2
