#include "tools/common/format_specific.h"

#include <cstdio>
#include <string>
#include <type_traits>
#include <variant>

namespace strata::tools {
namespace {

void PrintEntries(const FormatSpecificDict& entries, int indent) {
  const std::string pad(indent, ' ');
  for (const FormatSpecificEntry& e : entries) {
    std::string key = e.key;
    for (char& c : key) {
      if (c == '-') c = ' ';
    }
    if (const auto* list = std::get_if<std::vector<std::string>>(&e.value)) {
      std::printf("%s%s:\n", pad.c_str(), key.c_str());
      for (size_t i = 0; i < list->size(); ++i) {
        std::printf("%s    [%zu]: %s\n", pad.c_str(), i, (*list)[i].c_str());
      }
    } else if (const auto* dicts = std::get_if<std::vector<FormatSpecificDict>>(&e.value)) {
      std::printf("%s%s:\n", pad.c_str(), key.c_str());
      for (size_t i = 0; i < dicts->size(); ++i) {
        std::printf("%s    [%zu]:\n", pad.c_str(), i);
        PrintEntries((*dicts)[i], indent + 8);
      }
    } else if (const auto* dict = std::get_if<FormatSpecificNested>(&e.value)) {
      std::printf("%s%s:\n", pad.c_str(), key.c_str());
      PrintEntries(dict->entries, indent + 4);
    } else {
      std::printf("%s%s: %s\n", pad.c_str(), key.c_str(), e.HumanValue().c_str());
    }
  }
}

JsonValue DictJson(const FormatSpecificDict& entries) {
  JsonValue data = JsonValue::Object();
  for (const FormatSpecificEntry& e : entries) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            data.Set(e.key, JsonValue::Bool(v));
          } else if constexpr (std::is_same_v<T, int64_t>) {
            data.Set(e.key, JsonValue::Int(v));
          } else if constexpr (std::is_same_v<T, std::string>) {
            data.Set(e.key, JsonValue::String(v));
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            JsonValue list = JsonValue::Array();
            for (const std::string& s : v) list.Append(JsonValue::String(s));
            data.Set(e.key, std::move(list));
          } else if constexpr (std::is_same_v<T, FormatSpecificNested>) {
            data.Set(e.key, DictJson(v.entries));
          } else {
            JsonValue list = JsonValue::Array();
            for (const FormatSpecificDict& d : v) list.Append(DictJson(d));
            data.Set(e.key, std::move(list));
          }
        },
        e.value);
  }
  return data;
}

}  // namespace

void PrintFormatSpecificHuman(const FormatSpecificInfo& info) { PrintEntries(info.entries, 4); }

JsonValue FormatSpecificJson(const FormatSpecificInfo& info) { return DictJson(info.entries); }

}  // namespace strata::tools
