// strata tools: JSON objects printed in the key order of QEMU 7.2's QDict, so that
// `--output=json` is byte-identical to qemu-img's.
//
// The order rule is block/qdict_order.h's.
#ifndef STRATA_TOOLS_COMMON_QDICT_JSON_H_
#define STRATA_TOOLS_COMMON_QDICT_JSON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "strata/qdict_order.h"

namespace strata::tools {

// A JSON value tree with QEMU's object ordering and pretty printer (4-space indents).
class JsonValue {
 public:
  static JsonValue Object();
  static JsonValue Array();
  static JsonValue String(absl::string_view s);
  static JsonValue Int(int64_t v);
  static JsonValue Bool(bool b);

  // Object members, in insertion order (printing reorders them like QEMU).
  JsonValue& Set(absl::string_view key, JsonValue value);
  // Array elements.
  JsonValue& Append(JsonValue value);

  // Pretty form as qemu-img prints it (no trailing newline).
  std::string Pretty(int indent = 0) const;
  // One-line form with the same member order, for tests and logs (QEMU prints none).
  std::string Compact() const;

 private:
  enum class Kind { kObject, kArray, kString, kInt, kBool };
  Kind kind_ = Kind::kObject;
  std::string scalar_;
  std::vector<std::pair<std::string, JsonValue>> members_;
  std::vector<JsonValue> elements_;
  std::vector<size_t> PrintOrder() const;
};

using ::strata::QdictBucket;

// `s` as a JSON string literal, with QEMU's escapes.
std::string JsonQuote(absl::string_view s);

}  // namespace strata::tools

#endif  // STRATA_TOOLS_COMMON_QDICT_JSON_H_
