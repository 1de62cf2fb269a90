#include "block/dirty_bitmap.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(DirtyBitmapTest, SetRangeMarksEveryTouchedGranule) {
  DirtyBitmap b(1 << 20, 65536);
  EXPECT_EQ(b.granules(), 16u);
  b.SetRange(65535, 2);  // touches granules 0 and 1
  EXPECT_TRUE(b.IsDirty(0));
  EXPECT_TRUE(b.IsDirty(1));
  EXPECT_FALSE(b.IsDirty(2));
  EXPECT_EQ(b.DirtyBytes(), 131072u);
  b.SetRange(1 << 20, 4096);  // past the end: ignored
  EXPECT_EQ(b.DirtyBytes(), 131072u);
}

TEST(DirtyBitmapTest, NextDirtyRunWalksRunsAndStopsAtSize) {
  DirtyBitmap b(1000 * 512 + 100, 512);  // last granule partial
  b.SetRange(512 * 70, 512 * 130);       // crosses word boundaries
  b.SetRange(1000 * 512, 1);
  auto r = b.NextDirtyRun(0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 512u * 70);
  EXPECT_EQ(r->second, 512u * 130);
  r = b.NextDirtyRun(r->first + r->second);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 512u * 1000);
  EXPECT_EQ(r->second, 100u);
  EXPECT_FALSE(b.NextDirtyRun(512 * 1000 + 100));
  // A start inside a dirty granule begins the run there.
  r = b.NextDirtyRun(512 * 70 + 10);
  EXPECT_EQ(r->first, 512u * 70 + 10);
}

TEST(DirtyBitmapTest, SerializeRoundTripsLittleEndianBits) {
  DirtyBitmap b(64 * 1024, 512);  // 128 granules
  b.SetRange(0, 512);
  b.SetRange(512 * 9, 512);
  b.SetRange(512 * 127, 512);
  std::vector<uint8_t> bytes;
  b.Serialize(0, 128, &bytes);
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(bytes[0], 0x01);
  EXPECT_EQ(bytes[1], 0x02);
  EXPECT_EQ(bytes[15], 0x80);
  DirtyBitmap c(64 * 1024, 512);
  c.Deserialize(0, 128, bytes.data());
  for (uint64_t g = 0; g < 128; ++g) EXPECT_EQ(b.IsDirty(g), c.IsDirty(g)) << g;
  // Past the end reads as clean.
  bytes.clear();
  b.Serialize(120, 16, &bytes);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], 0x80);
  EXPECT_EQ(bytes[1], 0x00);
}

TEST(DirtyBitmapTest, RunAtGivesAlternatingRunsWithinTheLimit) {
  DirtyBitmap b(10 * 65536 + 100, 65536);
  b.SetRange(2 * 65536, 3 * 65536);
  bool dirty = true;
  EXPECT_EQ(b.RunAt(0, 1 << 30, &dirty), 2u * 65536);
  EXPECT_FALSE(dirty);
  EXPECT_EQ(b.RunAt(2 * 65536 + 7, 1 << 30, &dirty), 3u * 65536 - 7);
  EXPECT_TRUE(dirty);
  EXPECT_EQ(b.RunAt(2 * 65536, 1000, &dirty), 1000u);
  EXPECT_EQ(b.RunAt(5 * 65536, 1 << 30, &dirty), 5u * 65536 + 100);  // ends at size()
  EXPECT_FALSE(dirty);
}

TEST(DirtyBitmapTest, MergeAcrossGranularities) {
  DirtyBitmap fine(1 << 20, 512), coarse(1 << 20, 65536);
  fine.SetRange(70000, 1);
  coarse.Merge(fine);
  EXPECT_TRUE(coarse.IsDirty(1));
  EXPECT_EQ(coarse.DirtyBytes(), 65536u);
  DirtyBitmap fine2(1 << 20, 512);
  fine2.Merge(coarse);
  EXPECT_EQ(fine2.DirtyBytes(), 65536u);
  EXPECT_TRUE(fine2.IsDirty(65536 / 512));
}

TEST(DirtyBitmapTest, ResizeDropsTailAndAddsCleanGranules) {
  DirtyBitmap b(1 << 20, 65536);
  b.SetAll();
  b.Resize(3 * 65536 + 1);
  EXPECT_EQ(b.granules(), 4u);
  EXPECT_EQ(b.DirtyBytes(), 4u * 65536);
  b.Resize(8 * 65536);
  EXPECT_EQ(b.DirtyBytes(), 4u * 65536);
  EXPECT_FALSE(b.IsDirty(5));
  EXPECT_TRUE(b.GranulesClean(4, 4));
  EXPECT_FALSE(b.GranulesClean(3, 4));
}

}  // namespace
}  // namespace strata
