// strata: file names that are not UTF-8 survive the trip through protobuf's options.
#include "block/proto_bytes.h"

#include <string>

#include "block/options_json.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(ProtoBytesTest, EscapingIsExactlyReversible) {
  const std::string cases[] = {
      "plain.qcow2",
      "caf\xc3\xa9.img",                  // valid UTF-8: unchanged
      std::string("a\xff" "b"),           // a stray byte
      std::string("x\xc0\x80y"),          // QEMU's two-byte NUL (overlong)
      std::string("\xed\xa0\x80"),        // an encoded surrogate
      std::string("cut\xe2\x82"),         // a sequence cut short at the end
      std::string("lit\xf4\x8f\xb8\x80"),  // a literal U+10FE00: escaped too
      std::string("\x80\x81\xfe\xff"),
      std::string("nul\0inside", 10),
  };
  for (const std::string& s : cases) {
    const std::string escaped = EscapeBytesForProto(s);
    EXPECT_EQ(UnescapeBytesFromProto(escaped), s);
    // What protobuf carries is strict UTF-8.
    google::protobuf::Value v;
    v.set_string_value(escaped);
    std::string wire;
    EXPECT_TRUE(v.SerializeToString(&wire));
  }
  EXPECT_EQ(EscapeBytesForProto("caf\xc3\xa9.img"), "caf\xc3\xa9.img");
  EXPECT_NE(EscapeBytesForProto("a\xff" "b"), "a\xff" "b");
}

TEST(ProtoBytesTest, FileNamesThatAreNotUtf8ReachTheOptions) {
  // A stray byte in a file name, and QEMU's two-byte NUL in a nested option.
  google::protobuf::Struct tree;
  auto& f = *tree.mutable_fields();
  f["driver"].set_string_value("raw");
  auto& file = *f["file"].mutable_struct_value()->mutable_fields();
  file["driver"].set_string_value("file");
  file["filename"].set_string_value("image-\xff\xfe.raw");
  ASSERT_OK_AND_ASSIGN(proto::BlockdevOptions o, BlockdevOptionsFromTree(tree));
  EXPECT_EQ(o.raw().file().options().file().filename(), "image-\xff\xfe.raw");
  file["filename"].set_string_value("lit\xf4\x8f\xb8\x80\xc0\x80");
  ASSERT_OK_AND_ASSIGN(o, BlockdevOptionsFromTree(tree));
  EXPECT_EQ(o.raw().file().options().file().filename(), "lit\xf4\x8f\xb8\x80\xc0\x80");
}

}  // namespace
}  // namespace strata
