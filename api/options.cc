// strata api: strata/options.h over the keyval and JSON parsers (block/keyval.h,
// block/options_json.h). ParseSize is defined in block/size_syntax.cc.
#include "strata/options.h"

#include <algorithm>

#include "block/keyval.h"
#include "block/options_json.h"
#include "block/status.h"
#include "google/protobuf/util/json_util.h"

namespace strata {

absl::StatusOr<std::string> KeyvalsToJson(const std::vector<std::string>& keyvals,
                                          bool warn_short_forms) {
  google::protobuf::Struct merged;
  for (const std::string& keyval : keyvals) {
    STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree, ParseKeyval(keyval, warn_short_forms));
    MergeTree(tree, &merged);
  }
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(merged, &json);
  if (!st.ok()) return ErrnoError(EINVAL, std::string(st.message()));
  return json;
}

namespace {

void CollectLeaves(const google::protobuf::Struct& tree, const std::string& prefix,
                   std::vector<std::pair<std::string, std::string>>* out) {
  for (const auto& [key, value] : tree.fields()) {
    if (value.has_struct_value()) {
      CollectLeaves(value.struct_value(), prefix + key + ".", out);
    } else {
      out->emplace_back(prefix + key, value.string_value());
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KeyvalLeaves(
    absl::string_view keyval, bool warn_short_forms) {
  STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree, ParseKeyval(keyval, warn_short_forms));
  std::vector<std::pair<std::string, std::string>> leaves;
  CollectLeaves(tree, "", &leaves);
  std::sort(leaves.begin(), leaves.end());
  return leaves;
}

}  // namespace strata
