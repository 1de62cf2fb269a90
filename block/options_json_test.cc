// strata: QEMU-shaped options -> BlockdevOptions, each pipeline step observable.
#include "block/options_json.h"

#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(OptionsJsonTest, FlatUnionMovesDriverKeys) {
  ASSERT_OK_AND_ASSIGN(
      proto::BlockdevOptions o,
      BlockdevOptionsFromJson(
          R"({"driver":"raw","offset":512,"file":{"driver":"file","filename":"x.img"}})"));
  EXPECT_EQ(o.driver(), "raw");
  EXPECT_EQ(o.raw().offset(), 512u);
  ASSERT_TRUE(o.raw().file().has_options());
  EXPECT_EQ(o.raw().file().options().file().filename(), "x.img");
}

TEST(OptionsJsonTest, KeyvalValuesAreCoercedByFieldType) {
  ASSERT_OK_AND_ASSIGN(proto::BlockdevOptions o,
                       BlockdevOptionsFromKeyval(
                           "driver=raw,read-only=on,size=1M,file.driver=file,"
                           "file.filename=y.img,cache.direct=off"));
  EXPECT_TRUE(o.read_only());
  EXPECT_EQ(o.raw().size(), 1u << 20);
  EXPECT_FALSE(o.cache().direct());
  EXPECT_TRUE(o.cache().has_direct());
}

TEST(OptionsJsonTest, DottedJsonKeysAndStringReferences) {
  // A string child names a node, which options for one image cannot: QEMU's refusal.
  EXPECT_EQ(BlockdevOptionsFromJson(R"({"driver":"raw","file":"z.img"})").status().message(),
            "Cannot find device='z.img' nor node-name='z.img'");
  ASSERT_OK_AND_ASSIGN(
      proto::BlockdevOptions o, BlockdevOptionsFromJson(R"({"driver":"raw","file.driver":"file","file.filename":"w"})"));
  EXPECT_EQ(o.raw().file().options().file().filename(), "w");
}

TEST(OptionsJsonTest, UnknownOptionsGetQemusSentences) {
  auto bad = BlockdevOptionsFromJson(
      R"({"driver":"raw","file":{"driver":"file","filename":"r"},"bogus":1})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "Block format 'raw' does not support the option 'bogus'");
  bad = BlockdevOptionsFromKeyval("driver=raw,file.driver=file,file.filename=r,file.bogus=1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "Block protocol 'file' doesn't support the option 'bogus'");
  bad = BlockdevOptionsFromJson(R"({"driver":"foo"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "Unknown driver 'foo'");
  bad = BlockdevOptionsFromJson(R"({"driver":"raw")");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ErrnoOf(bad.status()), EINVAL);
  bad = BlockdevOptionsFromKeyval("driver=raw,read-only=maybe,file.driver=file,file.filename=r");
  EXPECT_FALSE(bad.ok());
}

TEST(ParseSizeTest, Suffixes) {
  EXPECT_EQ(*ParseSize("64M"), 64u << 20);
  EXPECT_EQ(*ParseSize("1.5k"), 1536u);
  EXPECT_EQ(*ParseSize("512"), 512u);
  EXPECT_FALSE(ParseSize("12x").ok());
  EXPECT_FALSE(ParseSize("").ok());
}

}  // namespace
}  // namespace strata
