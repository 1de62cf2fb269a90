// strata tools: QDict-ordered JSON (see qdict_json.h).
#include "tools/common/qdict_json.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace strata::tools {

std::string JsonQuote(absl::string_view s) { return QemuJsonString(s); }

JsonValue JsonValue::Object() { return JsonValue(); }
JsonValue JsonValue::Array() {
  JsonValue v;
  v.kind_ = Kind::kArray;
  return v;
}
JsonValue JsonValue::String(absl::string_view s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.scalar_ = JsonQuote(s);
  return v;
}
JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.kind_ = Kind::kInt;
  v.scalar_ = absl::StrCat(i);
  return v;
}
JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.scalar_ = b ? "true" : "false";
  return v;
}

JsonValue& JsonValue::Set(absl::string_view key, JsonValue value) {
  members_.emplace_back(std::string(key), std::move(value));
  return *this;
}

JsonValue& JsonValue::Append(JsonValue value) {
  elements_.push_back(std::move(value));
  return *this;
}

std::vector<size_t> JsonValue::PrintOrder() const {
  std::vector<std::string> keys;
  for (const auto& m : members_) keys.push_back(m.first);
  return QdictPrintOrder(keys);
}

std::string JsonValue::Pretty(int indent) const {
  std::string pad(indent + 4, ' '), close_pad(indent, ' ');
  switch (kind_) {
    case Kind::kObject: {
      if (members_.empty()) return "{}";
      std::string out = "{\n";
      std::vector<size_t> order = PrintOrder();
      for (size_t i = 0; i < order.size(); ++i) {
        const auto& [k, v] = members_[order[i]];
        absl::StrAppend(&out, pad, JsonQuote(k), ": ", v.Pretty(indent + 4),
                        i + 1 < order.size() ? ",\n" : "\n");
      }
      return out + close_pad + "}";
    }
    case Kind::kArray: {
      // QEMU's pretty printer puts even an empty list's bracket on a line of its own.
      if (elements_.empty()) return "[\n" + close_pad + "]";
      std::string out = "[\n";
      for (size_t i = 0; i < elements_.size(); ++i) {
        absl::StrAppend(&out, pad, elements_[i].Pretty(indent + 4),
                        i + 1 < elements_.size() ? ",\n" : "\n");
      }
      return out + close_pad + "]";
    }
    default:
      return scalar_;
  }
}

std::string JsonValue::Compact() const {
  switch (kind_) {
    case Kind::kObject: {
      std::string out = "{";
      std::vector<size_t> order = PrintOrder();
      for (size_t i = 0; i < order.size(); ++i) {
        absl::StrAppend(&out, i ? ", " : "", JsonQuote(members_[order[i]].first), ": ",
                        members_[order[i]].second.Compact());
      }
      return out + "}";
    }
    case Kind::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < elements_.size(); ++i) {
        absl::StrAppend(&out, i ? ", " : "", elements_[i].Compact());
      }
      return out + "]";
    }
    default:
      return scalar_;
  }
}

}  // namespace strata::tools
