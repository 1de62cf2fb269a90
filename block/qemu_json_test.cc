// strata: QEMU's JSON dialect. The expected messages are what qemu-img 7.2 printed for
// the same inputs (`qemu-img info 'json:INPUT'`); the corpus checks them against QEMU.
#include "block/qemu_json.h"

#include <string>
#include <utility>
#include <vector>

#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<google::protobuf::Value> v = ParseQemuJson(text);
  return v.ok() ? "OK" : std::string(v.status().message());
}

TEST(QemuJsonTest, ParsesTheDialect) {
  ASSERT_OK_AND_ASSIGN(google::protobuf::Value v,
                       ParseQemuJson(" {'a': \"x'y\", \"b\": [1, -2.5e1, true, null, {}],\n"
                                     "\t\"c\": 'it\\'s \\u00e9\\ud83d\\ude00\\n'} "));
  const auto& f = v.struct_value().fields();
  EXPECT_EQ(f.at("a").string_value(), "x'y");
  const auto& list = f.at("b").list_value();
  ASSERT_EQ(list.values_size(), 5);
  EXPECT_EQ(list.values(1).number_value(), -25.0);
  EXPECT_TRUE(list.values(2).bool_value());
  EXPECT_TRUE(list.values(3).has_null_value());
  EXPECT_TRUE(list.values(4).has_struct_value());
  EXPECT_EQ(f.at("c").string_value(), "it's \xc3\xa9\xf0\x9f\x98\x80\n");
}

TEST(QemuJsonTest, NulArrivesEitherWayAsQemusTwoBytes) {
  ASSERT_OK_AND_ASSIGN(google::protobuf::Value a, ParseQemuJson(R"("a\u0000b")"));
  ASSERT_OK_AND_ASSIGN(google::protobuf::Value b, ParseQemuJson("\"a\xc0\x80" "b\""));
  EXPECT_EQ(a.string_value(), "a\xc0\x80" "b");
  EXPECT_EQ(b.string_value(), a.string_value());
}

TEST(QemuJsonTest, NoncharactersAreRefusedRawOrEscaped) {
  for (const char* raw : {"\"a\xef\xbf\xbf\"", "\"\xef\xb7\x90\"", "\"\xf0\x9f\xbf\xbe\""}) {
    absl::StatusOr<google::protobuf::Value> v = ParseQemuJson(raw);
    ASSERT_FALSE(v.ok()) << raw;
    EXPECT_EQ(v.status().message(), "JSON parse error, invalid UTF-8 sequence in string");
  }
  absl::StatusOr<google::protobuf::Value> v = ParseQemuJson(R"("x\uFFFF")");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "JSON parse error, \\uFFFF is not a valid Unicode character");
  EXPECT_FALSE(ParseQemuJson(R"("\uFDD0")").ok());
  EXPECT_TRUE(ParseQemuJson(R"("\uFDF0")").ok());
}

TEST(QemuJsonTest, ErrorsAreQemus) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "Expecting a JSON value"},
      {"  ", "Expecting a JSON value"},
      {"{", "JSON parse error, premature EOI"},
      {"{\"a\":1,", "JSON parse error, premature EOI"},
      {"{\"a\":1}}", "Expecting at most one JSON value"},
      {"{\"a\":1} \"x", "Expecting at most one JSON value"},
      {"{\"a\":1}@", "Expecting at most one JSON value"},
      {"{a:1}", "JSON parse error, invalid keyword 'a'"},
      {"{\"a\":tr ue}", "JSON parse error, invalid keyword 'tr'"},
      {"{\"a\":TRUE}", "JSON parse error, stray 'T'"},
      {"{\"a\":1.5e}", "JSON parse error, stray '1.5e}'"},
      {"{\"a\":1e", "JSON parse error, stray '1e'"},
      {"{\"a\":00}", "JSON parse error, stray '00'"},
      {"{\"a\":-01}", "JSON parse error, stray '-01'"},
      {"{\"a\":--1}", "JSON parse error, stray '--'"},
      {"{\"a\":1.5.5}", "JSON parse error, stray '.'"},
      {"{\"a\":0x10}", "JSON parse error, expected separator in dict"},
      {"{\"a\":\"x\n\"}", "JSON parse error, stray '\"x\n'"},
      {"{\"a\":\"b}", "JSON parse error, stray '\"b}'"},
      {"{\"a\":\"\xfe\"}", "JSON parse error, stray '\"\xfe'"},
      {"{\"a\":\"\xfd\"}", "JSON parse error, invalid UTF-8 sequence in string"},
      {"{\"a\":\"\xed\xa0\x80\"}", "JSON parse error, invalid UTF-8 sequence in string"},
      {"{\"a\":\"\\x27\"}", "JSON parse error, invalid escape sequence in string"},
      {"{\"a\":\"\\u\"}", "JSON parse error, \\u\" is not a valid Unicode character"},
      {"{\"a\":\"\\uZZZZ\"}", "JSON parse error, \\uZZZZ is not a valid Unicode character"},
      {"{\"a\":\"\\ud800x\"}", "JSON parse error, \\ud800 is not a valid Unicode character"},
      {"{\"a\":\"\\udc00\"}", "JSON parse error, \\udc00 is not a valid Unicode character"},
      {"{\"a\" 1}", "JSON parse error, missing : in object pair"},
      {"{\"a\" 1 @", "JSON parse error, stray '@'"},
      {"{\"a\" 1}@", "JSON parse error, missing : in object pair"},
      {"{1:2}", "JSON parse error, key is not a string in object"},
      {"{\"a\":1 \"b\":2}", "JSON parse error, expected separator in dict"},
      {"{\"a\":[1 2]}", "JSON parse error, expected separator in list"},
      {"{\"a\":[1}", "JSON parse error, expected separator in list"},
      {"{\"a\":[1,]}", "JSON parse error, expecting value"},
      {"{\"driver\":\"raw\",}", "JSON parse error, expecting value"},
      {"}{", "JSON parse error, expecting value"},
      {"{\"a\":1,\"a\":2}", "JSON parse error, duplicate key"},
      {"{\"a\":1,\"a\":", "JSON parse error, premature EOI"},
      {"{\"a\":%d}", "JSON parse error, stray '%'"},
  };
  for (const auto& [input, message] : cases) {
    EXPECT_EQ(ErrorOf(input), message) << input;
  }
}

TEST(QemuJsonTest, NestingStopsAt1024Levels) {
  auto nested = [](int levels) {
    return "{\"a\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  EXPECT_EQ(ErrorOf(nested(1024)), "OK");
  EXPECT_EQ(ErrorOf(nested(1025)), "JSON nesting depth limit exceeded");
}

}  // namespace
}  // namespace strata
