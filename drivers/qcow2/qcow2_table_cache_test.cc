// strata qcow2: a table loaded without the owner's lock (BeginLoad/FinishLoad) enters
// the cache only if nothing changed that table while it was being read.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "block/child.h"
#include "block/graph_builder.h"
#include "block/testing/status_matchers.h"
#include "drivers/qcow2/qcow2_cache.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kTable = 65536;

// A file of three tables filled with 1, 2 and 3, opened as the cache's child.
class TableCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    path_ = std::string(t ? t : "/tmp") + "/tables" + std::to_string(getpid());
    std::ofstream out(path_, std::ios::binary);
    for (char fill = 1; fill <= 3; ++fill) out << std::string(kTable, fill);
    out.close();
    ImageOpenRequest r;
    r.image_opts = true;
    r.filename = "driver=file,filename=" + path_;
    ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenImage(r));
    child_ = std::make_unique<BdrvChild>("file", ChildRole::kFile, std::move(img.root));
  }
  void TearDown() override {
    if (child_) {
      ASSERT_OK(child_->node().Close());
    }
    unlink(path_.c_str());
  }
  // A cache of `entries` tables over the file.
  std::unique_ptr<Qcow2TableCache> Cache(size_t entries) {
    return std::make_unique<Qcow2TableCache>(child_.get(), kTable, entries,
                                             DebugEvent::kL2Load, DebugEvent::kL2Update);
  }
  // What a read of the table at `offset` outside the lock gave.
  std::vector<uint8_t> ReadTable(uint64_t offset) {
    std::vector<uint8_t> data(kTable);
    EXPECT_OK(child_->node().Pread(offset, kTable, data.data()));
    return data;
  }

  std::string path_;
  std::unique_ptr<BdrvChild> child_;
};

TEST_F(TableCacheTest, UnracedLoadIsKept) {
  auto cache = Cache(4);
  cache->BeginLoad(kTable);
  std::vector<uint8_t> read = ReadTable(kTable);
  EXPECT_TRUE(cache->FinishLoad(kTable, &read));
  ASSERT_NE(cache->Peek(kTable), nullptr);
  EXPECT_EQ(cache->Peek(kTable)[0], 2);
  // A change to another table does not race this one's load.
  cache->BeginLoad(2 * kTable);
  std::vector<uint8_t> other = ReadTable(2 * kTable);
  cache->MarkDirty(kTable, 0, 8);
  ASSERT_OK(cache->Flush());
  EXPECT_TRUE(cache->FinishLoad(2 * kTable, &other));
  EXPECT_EQ(cache->Peek(2 * kTable)[0], 3);
}

TEST_F(TableCacheTest, LoadRacedByWriteBackAndEvictionIsDropped) {
  // One entry: the racing thread loads, changes and writes the table back, and the next
  // lookup evicts it, so no newer entry is left to win over the stale read.
  auto cache = Cache(1);
  cache->BeginLoad(0);
  std::vector<uint8_t> stale = ReadTable(0);
  ASSERT_OK_AND_ASSIGN(uint8_t * table, cache->Get(0));
  table[0] = 9;
  cache->MarkDirty(0, 0, 1);
  ASSERT_OK(cache->Flush());
  ASSERT_OK(cache->Get(kTable).status());  // evicts table 0 (clean now)
  ASSERT_EQ(cache->Peek(0), nullptr);
  EXPECT_FALSE(cache->FinishLoad(0, &stale));
  EXPECT_EQ(cache->Peek(0), nullptr) << "a stale table entered the cache";
  ASSERT_OK_AND_ASSIGN(table, cache->Get(0));
  EXPECT_EQ(table[0], 9);
}

TEST_F(TableCacheTest, ExistingEntryWinsOverTheLoad) {
  auto cache = Cache(4);
  cache->BeginLoad(0);
  std::vector<uint8_t> read = ReadTable(0);
  ASSERT_OK_AND_ASSIGN(uint8_t * table, cache->Get(0));
  table[0] = 7;  // changed in the cache, not yet written back
  cache->MarkDirty(0, 0, 1);
  EXPECT_TRUE(cache->FinishLoad(0, &read));
  EXPECT_EQ(cache->Peek(0)[0], 7);
  EXPECT_TRUE(cache->HasDirty());
}

TEST_F(TableCacheTest, DiscardCreateClearAndFailedReadsDropTheLoad) {
  auto cache = Cache(4);
  std::vector<uint8_t> read = ReadTable(0);
  cache->BeginLoad(0);
  cache->Discard(0);  // the table's cluster was freed while it was read
  EXPECT_FALSE(cache->FinishLoad(0, &read));
  EXPECT_EQ(cache->Peek(0), nullptr);

  cache->BeginLoad(0);
  cache->BeginLoad(kTable);
  cache->Clear();  // structures moved
  EXPECT_FALSE(cache->FinishLoad(0, &read));
  std::vector<uint8_t> read2 = ReadTable(kTable);
  EXPECT_FALSE(cache->FinishLoad(kTable, &read2));
  EXPECT_EQ(cache->size(), 0u);

  cache->BeginLoad(0);
  EXPECT_FALSE(cache->FinishLoad(0, nullptr));  // the read failed
  EXPECT_EQ(cache->Peek(0), nullptr);
  // A finished load is forgotten: a later load of the same table is not raced by it.
  cache->BeginLoad(0);
  EXPECT_TRUE(cache->FinishLoad(0, &read));
  EXPECT_EQ(cache->Peek(0)[0], 1);
}

}  // namespace
}  // namespace strata::qcow2
