// strata api: strata/options.h over the keyval and JSON parsers (block/keyval.h,
// block/options_json.h). ParseSize is defined in block/size_syntax.cc.
#include "strata/options.h"

#include "block/keyval.h"
#include "block/options_json.h"
#include "block/status.h"
#include "google/protobuf/util/json_util.h"

namespace strata {

absl::StatusOr<std::string> KeyvalsToJson(const std::vector<std::string>& keyvals) {
  STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct merged, MergedKeyvals(keyvals));
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(merged, &json);
  if (!st.ok()) return ErrnoError(EINVAL, std::string(st.message()));
  return json;
}

absl::StatusOr<std::vector<std::string>> KeyvalTopLevelKeys(absl::string_view keyval) {
  STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree, ParseKeyval(keyval));
  std::vector<std::string> keys;
  for (const auto& [key, _] : tree.fields()) keys.push_back(key);
  return keys;
}

}  // namespace strata
