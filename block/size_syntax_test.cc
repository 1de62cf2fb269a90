// ParseSize against the answers qemu-img 7.2 gives for the same strings (`qemu-img create
// -f qcow2 x SIZE` prints the size it read, or refuses).
#include <cerrno>

#include "gtest/gtest.h"
#include "strata/errors.h"
#include "strata/options.h"

namespace strata {
namespace {

TEST(ParseSizeTest, AcceptsWhatQemuAccepts) {
  const struct {
    const char* text;
    uint64_t bytes;
  } kCases[] = {
      {"512", 512},          {"64M", 64u << 20},       {"1.5k", 1536},
      {"1.5K", 1536},        {"2.5m", 2621440},         {"0x10", 16},
      {"0X10", 16},          {"010", 10},               {"1b", 1},
      {"1B", 1},             {"1.0", 1},                {"1.", 1},
      {"1.k", 1024},         {"1.b", 1},                {"  5", 5},
      {"0.001k", 1},         {"4.9k", 5018},            {"1.5555555555555555555555555k", 1593},
      {"4.99999999k", 5120}, {"4.99999999999999999k", 4096},
      {"0.99999999999999999999999b", 0},               {"1.000000000000000000001", 1},
      {"7.9999999999999999999E", 8070450532247928832u}, {"1.5e", 1729382256910270464u},
      {"0", 0},              {"+1", 1},                 {" +0x10", 16},              {"1.00000000000000000005k", 1024},
      {"1.99999999999999999999k", 1024},               {"0.9999999999999999k", 1024},              {"18446744073709551615", 18446744073709551615u},
  };
  for (const auto& c : kCases) {
    absl::StatusOr<uint64_t> got = ParseSize(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.bytes) << c.text;
  }
}

TEST(ParseSizeTest, RefusesWhatQemuRefuses) {
  for (const char* text : {"", "xx", "1Z", "1.5", "1.5b", "0.1b", ".5k", "1e3", "1.1e-3k",
                           "1.5e3k", "1.0x", "1.0kb", "1kB", "1Mi", "1 k", "1k ", "1M ", "0x",
                           "0xk", "0x1.5k", "0x1p3", "-1", "+-1", "++1", "-0", "1.0000000000000000009",
                           "1.00000000000000000010", "0.9999999999999999"}) {
    absl::StatusOr<uint64_t> got = ParseSize(text);
    ASSERT_FALSE(got.ok()) << "'" << text << "' gave " << *got;
    EXPECT_EQ(ErrnoOf(got.status()), EINVAL) << text;
  }
}

TEST(ParseSizeTest, RangeErrorsAtTwoToTheSixtyFour) {
  for (const char* text : {"18446744073709551616", "99999999999999999999", "16E", "16.0E",
                           "17E", "0x10000000000000000"}) {
    absl::StatusOr<uint64_t> got = ParseSize(text);
    ASSERT_FALSE(got.ok()) << text << " gave " << *got;
    EXPECT_EQ(ErrnoOf(got.status()), ERANGE) << text;
  }
}

TEST(ParseSizeTest, FlagsHexWithUnit) {
  absl::StatusOr<ParsedSize> got = ParseSizeDetailed("0x10k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, 16384u);
  EXPECT_TRUE(got->hex_with_suffix);
  EXPECT_FALSE(ParseSizeDetailed("16k")->hex_with_suffix);
  EXPECT_FALSE(ParseSizeDetailed("0x10")->hex_with_suffix);
}

}  // namespace
}  // namespace strata
