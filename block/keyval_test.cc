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

TEST(KeyvalTest, RejectsMissingEqualsAndInconsistentUse) {
  EXPECT_FALSE(ParseKeyval("driver").ok());
  EXPECT_FALSE(ParseKeyval("file=x,file.filename=y").ok());
  EXPECT_FALSE(ParseKeyval("a..b=1").ok());
}

}  // namespace
}  // namespace strata
