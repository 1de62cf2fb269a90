#include "drivers/qcow2/qcow2_overlap.h"

#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

using Index = MetadataOverlapIndex;

TEST(MetadataOverlapIndexTest, FindsOverlapsAndReportsTheFirstKind) {
  Index index;
  index.Add(0, 1, Index::kMainHeader);
  index.Add(1, 1, Index::kRefcountTable);
  index.Add(2, 1, Index::kRefcountBlock);
  index.Add(3, 4, Index::kActiveL1);  // a 4-cluster L1 table
  index.Add(100, 1, Index::kActiveL2);
  index.Seal();
  EXPECT_EQ(index.Find(0, 1, 0), Index::kMainHeader);
  EXPECT_EQ(index.Find(6, 1, 0), Index::kActiveL1);  // the L1's last cluster
  EXPECT_EQ(index.Find(7, 93, 0), std::nullopt);     // right between
  EXPECT_EQ(index.Find(99, 2, 0), Index::kActiveL2);
  // A write over several: the first in checking order.
  EXPECT_EQ(index.Find(1, 3, 0), Index::kActiveL1);
  EXPECT_EQ(index.Find(1, 3, Index::kActiveL1), Index::kRefcountTable);
  EXPECT_EQ(index.Find(100, 1, Index::kActiveL2), std::nullopt);
  EXPECT_EQ(Index::Name(Index::kActiveL1), std::string("active L1 table"));
}

TEST(MetadataOverlapIndexTest, EmptyOrUnsealedFindsNothing) {
  Index index;
  EXPECT_EQ(index.Find(0, 10, 0), std::nullopt);
  index.Add(5, 1, Index::kSnapshotTable);
  EXPECT_EQ(index.Find(5, 1, 0), std::nullopt);  // not sealed yet
  index.Seal();
  EXPECT_EQ(index.Find(5, 1, 0), Index::kSnapshotTable);
  EXPECT_EQ(index.Find(5, 0, 0), std::nullopt);
}

}  // namespace
}  // namespace strata::qcow2
