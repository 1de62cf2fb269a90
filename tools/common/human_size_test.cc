// strata tools: QEMU number/size formats, checked against strings real qemu-io/qemu-img print.
#include "tools/common/human_size.h"

#include "gtest/gtest.h"

namespace strata::tools {
namespace {

TEST(QemuIoSizeStringTest, MatchesQemuIoOutput) {
  EXPECT_EQ(QemuIoSizeString(4096), "4 KiB");
  EXPECT_EQ(QemuIoSizeString(512), "512 bytes");
  EXPECT_EQ(QemuIoSizeString(1536), "1.500 KiB");
  EXPECT_EQ(QemuIoSizeString(64 << 20), "64 MiB");
  EXPECT_EQ(QemuIoSizeString(655.156871), "655.156871 bytes");
  EXPECT_EQ(QemuIoSizeString(0), "0 bytes");
}

TEST(QemuImgSizeStringTest, MatchesQemuImgOutput) {
  EXPECT_EQ(QemuImgSizeString(0), "0 B");
  EXPECT_EQ(QemuImgSizeString(1024), "1 KiB");
  EXPECT_EQ(QemuImgSizeString(196 * 1024), "196 KiB");
  EXPECT_EQ(QemuImgSizeString(1323008), "1.26 MiB");
  EXPECT_EQ(QemuImgSizeString(64 << 20), "64 MiB");
  EXPECT_EQ(QemuImgSizeString(999), "999 B");
  EXPECT_EQ(QemuImgSizeString(1000), "0.977 KiB");
}

TEST(ParseQemuNumberTest, AcceptsSuffixesAndHex) {
  EXPECT_EQ(ParseQemuNumber("4k"), 4096);
  EXPECT_EQ(ParseQemuNumber("1M"), 1 << 20);
  EXPECT_EQ(ParseQemuNumber("0x200"), 512);
  EXPECT_EQ(ParseQemuNumber("512b"), 512);
  EXPECT_EQ(ParseQemuNumber("1.5k"), 1536);
  EXPECT_FALSE(ParseQemuNumber("1x").has_value());
  EXPECT_FALSE(ParseQemuNumber("abc").has_value());
  EXPECT_FALSE(ParseQemuNumber("-1").has_value());
  bool too_large = false;
  EXPECT_FALSE(ParseQemuNumber("9E", &too_large).has_value());
  EXPECT_TRUE(too_large);
}

// The edges that a double-based parser gets wrong: QEMU's integer part is exact up to
// INT64_MAX, a fraction is rounded, '+' is taken, an exponent is not.
TEST(ParseQemuNumberTest, MatchesQemuAtTheEdges) {
  EXPECT_EQ(ParseQemuNumber("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseQemuNumber("0x7fffffffffffffff"), INT64_MAX);
  bool too_large = false;
  EXPECT_FALSE(ParseQemuNumber("9223372036854775808", &too_large).has_value());
  EXPECT_TRUE(too_large);
  EXPECT_FALSE(ParseQemuNumber("0x8000000000000000", &too_large).has_value());
  EXPECT_TRUE(too_large);
  EXPECT_EQ(ParseQemuNumber("1.0001k"), 1024);
  EXPECT_EQ(ParseQemuNumber("+1k"), 1024);
  EXPECT_FALSE(ParseQemuNumber("1e3", &too_large).has_value());
  EXPECT_FALSE(too_large);
}

}  // namespace
}  // namespace strata::tools
