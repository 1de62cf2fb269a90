// strata: key=value parsing (grammar in keyval.cc).
#include "block/keyval.h"

#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(KeyvalTest, DottedKeysNest) {
  ASSERT_OK_AND_ASSIGN(auto tree, ParseKeyval("driver=raw,file.filename=a.img"));
  EXPECT_EQ(tree.fields().at("driver").string_value(), "raw");
  EXPECT_EQ(tree.fields().at("file").struct_value().fields().at("filename").string_value(),
            "a.img");
}

TEST(KeyvalTest, DoubledCommaIsALiteralComma) {
  ASSERT_OK_AND_ASSIGN(auto tree, ParseKeyval("filename=a,,b.img,driver=file,"));
  EXPECT_EQ(tree.fields().at("filename").string_value(), "a,b.img");
  EXPECT_EQ(tree.fields().at("driver").string_value(), "file");
}

// QEMU's deprecated short forms: "key" is key=on, "nokey" key=off.
TEST(KeyvalTest, BareKeysAreShortFormBooleans) {
  ASSERT_OK_AND_ASSIGN(auto tree, ParseKeyval("read-only,driver=raw,nocache.direct,x"));
  EXPECT_EQ(tree.fields().at("read-only").string_value(), "on");
  EXPECT_EQ(tree.fields().at("driver").string_value(), "raw");
  EXPECT_EQ(tree.fields().at("cache").struct_value().fields().at("direct").string_value(), "off");
  EXPECT_EQ(tree.fields().at("x").string_value(), "on");
}

TEST(KeyvalTest, RejectsInconsistentUse) {
  EXPECT_FALSE(ParseKeyval("file=x,file.filename=y").ok());
  EXPECT_FALSE(ParseKeyval("a..b=1").ok());
}

}  // namespace
}  // namespace strata
