// strata: key=value option strings.
//
// Grammar (the same as QEMU's util/keyval.c, implied keys aside):
//
//   key-vals     = [ key-val { ',' key-val } [ ',' ] ]
//   key-val      = key '=' val | key       (a bare key: short-form boolean, see keyval.h)
//   key          = key-fragment { '.' key-fragment }
//   key-fragment = / [^=,.]+ /
//   val          = { / [^,]+ / | ',,' }        (",," stands for one comma)
//
// Known flaws, shared with QEMU: every value is a string (consumers coerce by the field's
// type, see options_json.cc); keys cannot contain '.', ',' or '='; a key given twice keeps
// the last value.
#include "block/keyval.h"

#include "block/options_json.h"

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "block/diagnostics.h"
#include "absl/strings/str_split.h"
#include "block/status.h"

namespace strata {

absl::StatusOr<google::protobuf::Struct> ParseKeyval(absl::string_view text,
                                                     bool warn_short_forms) {
  google::protobuf::Struct root;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eq = text.find_first_of("=,", pos);
    absl::string_view key;
    std::string value;
    const bool bare = eq == absl::string_view::npos || text[eq] != '=';
    if (bare) {
      // A short-form boolean.
      const size_t end = eq == absl::string_view::npos ? text.size() : eq;
      absl::string_view frag = text.substr(pos, end - pos);
      pos = end == text.size() ? end : end + 1;
      if (frag.empty()) continue;
      key = frag;
      value = "on";
      if (absl::StartsWith(key, "no")) {
        key.remove_prefix(2);
        value = "off";
      }
      if (warn_short_forms) {
        Diagnose(DiagnosticKind::kWarning,
                 absl::StrCat("short-form boolean option '", frag, "' deprecated"));
        Diagnose(DiagnosticKind::kContinuation,
                 absl::StrCat("Please use ", key, "=", value, " instead\n"));
      }
    } else {
      key = text.substr(pos, eq - pos);
      pos = eq + 1;
    }
    while (!bare && pos < text.size()) {
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
    if (!bare && pos < text.size()) ++pos;  // Skip the separating comma.

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
      // A child named by reference and given options too: QEMU's open refuses it in
      // its own words (its option parser takes both).
      if (i + 1 == fragments.size()) {
        if (fields.contains(frag) && fields[frag].has_struct_value()) {
          if (IsChildOptionKey(frag)) return ErrnoError(EINVAL, kReferenceWithOptions);
          return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' used inconsistently"));
        }
        fields[frag].set_string_value(value);
      } else {
        google::protobuf::Value& v = fields[frag];
        if (v.kind_case() == google::protobuf::Value::kStringValue) {
          if (IsChildOptionKey(frag)) return ErrnoError(EINVAL, kReferenceWithOptions);
          return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' used inconsistently"));
        }
        node = v.mutable_struct_value();
      }
    }
  }
  return root;
}

}  // namespace strata
