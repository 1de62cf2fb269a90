// strata tools: QDict key order, checked against key orders qemu-img 7.2 prints.
#include "tools/common/qdict_json.h"

#include "gtest/gtest.h"

namespace strata::tools {
namespace {

TEST(QdictJsonTest, InfoKeysComeOutInQemusOrder) {
  JsonValue info = JsonValue::Object();
  // QAPI ImageInfo field order (insertion order).
  for (const char* k : {"filename", "format", "dirty-flag", "actual-size", "virtual-size",
                        "cluster-size", "backing-filename", "full-backing-filename",
                        "backing-filename-format", "snapshots", "format-specific"}) {
    info.Set(k, JsonValue::Int(0));
  }
  std::string out = info.Compact();
  std::vector<std::string> expected = {"backing-filename-format", "snapshots", "virtual-size",
                                       "filename", "cluster-size", "format", "actual-size",
                                       "format-specific", "full-backing-filename",
                                       "backing-filename", "dirty-flag"};
  size_t pos = 0;
  for (const std::string& k : expected) {
    size_t at = out.find("\"" + k + "\"", pos);
    ASSERT_NE(at, std::string::npos) << k << " out of order in " << out;
    pos = at;
  }
}

TEST(QdictJsonTest, PrettyMatchesQemuLayout) {
  JsonValue v = JsonValue::Object();
  v.Set("virtual-size", JsonValue::Int(2097152));
  v.Set("filename", JsonValue::String("r.raw"));
  v.Set("format", JsonValue::String("raw"));
  v.Set("actual-size", JsonValue::Int(8192));
  v.Set("dirty-flag", JsonValue::Bool(false));
  EXPECT_EQ(v.Pretty(), "{\n    \"virtual-size\": 2097152,\n    \"filename\": \"r.raw\",\n"
                        "    \"format\": \"raw\",\n    \"actual-size\": 8192,\n"
                        "    \"dirty-flag\": false\n}");
}

}  // namespace
}  // namespace strata::tools
