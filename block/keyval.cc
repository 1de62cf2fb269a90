// strata: key=value option strings.
//
// Grammar (the same as QEMU's util/keyval.c, implied keys aside):
//
//   key-vals     = [ key-val { ',' key-val } [ ',' ] ]
//   key-val      = key '=' val
//   key          = key-fragment { '.' key-fragment }
//   key-fragment = / [^=,.]+ /
//   val          = { / [^,]+ / | ',,' }        (",," stands for one comma)
//
// Known flaws, shared with QEMU: every value is a string (consumers coerce by the field's
// type, see options_json.cc); keys cannot contain '.', ',' or '='; a key given twice keeps
// the last value.
#include "block/keyval.h"

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "block/status.h"

namespace strata {

absl::StatusOr<google::protobuf::Struct> ParseKeyval(absl::string_view text) {
  google::protobuf::Struct root;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eq = text.find_first_of("=,", pos);
    if (eq == absl::string_view::npos || text[eq] != '=') {
      absl::string_view frag = text.substr(pos, eq == absl::string_view::npos ? eq : eq - pos);
      return ErrnoError(EINVAL, absl::StrCat("Expected '=' after parameter '", frag, "'"));
    }
    absl::string_view key = text.substr(pos, eq - pos);
    std::string value;
    pos = eq + 1;
    while (pos < text.size()) {
      if (text[pos] == ',') {
        if (pos + 1 < text.size() && text[pos + 1] == ',') {
          value.push_back(',');
          pos += 2;
          continue;
        }
        break;
      }
      value.push_back(text[pos++]);
    }
    if (pos < text.size()) ++pos;  // Skip the separating comma.

    std::vector<absl::string_view> fragments = absl::StrSplit(key, '.');
    // Every part is a level of nesting, and later steps recurse over it: bounded.
    constexpr size_t kMaxKeyParts = 256;
    if (fragments.size() > kMaxKeyParts) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", key.substr(0, 64),
                                             "...' nests more than ", kMaxKeyParts,
                                             " levels"));
    }
    google::protobuf::Struct* node = &root;
    for (size_t i = 0; i < fragments.size(); ++i) {
      if (fragments[i].empty()) {
        return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'"));
      }
      std::string frag(fragments[i]);
      auto& fields = *node->mutable_fields();
      if (i + 1 == fragments.size()) {
        if (fields.contains(frag) && fields[frag].has_struct_value()) {
          return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' used inconsistently"));
        }
        fields[frag].set_string_value(value);
      } else {
        google::protobuf::Value& v = fields[frag];
        if (v.kind_case() == google::protobuf::Value::kStringValue) {
          return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' used inconsistently"));
        }
        node = v.mutable_struct_value();
      }
    }
  }
  return root;
}

}  // namespace strata
