// strata: option trees -> BlockdevOptions (see options_json.h for the pipeline).
#include "block/options_json.h"

#include "block/proto_bytes.h"
#include "block/qemu_json.h"

#include <cerrno>
#include <cmath>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "block/keyval.h"
#include "block/qdict_order.h"
#include "block/node_filename.h"
#include "block/registry.h"
#include "block/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace strata {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Struct;
using google::protobuf::Value;

// Step 2: QEMU mixes "inject-error" and "new_state"; protobuf wants underscores.
std::string NormaliseKey(absl::string_view key) { return absl::StrReplaceAll(key, {{"-", "_"}}); }

absl::StatusOr<bool> CoerceBool(const std::string& key, const Value& v) {
  if (v.kind_case() == Value::kBoolValue) return v.bool_value();
  if (v.kind_case() == Value::kStringValue) {
    std::string s = absl::AsciiStrToLower(v.string_value());
    if (s == "on" || s == "true" || s == "yes") return true;
    if (s == "off" || s == "false" || s == "no") return false;
  }
  return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' expects 'on' or 'off'"));
}

// QEMU options of size type (QEMU_OPT_SIZE): a byte count with an optional suffix, never
// negative, refused in size words. Other numbers take strtoull's wrap-around for a minus
// sign, as QEMU's number options do ("-1" is the largest value, then range-checked).
bool IsSizeOption(absl::string_view key) {
  const absl::string_view leaf = key.substr(key.rfind('.') + 1);
  return leaf == "l2-cache-size" || leaf == "refcount-cache-size" || leaf == "cache-size" ||
         leaf == "l2-cache-entry-size" || leaf == "size" || leaf == "offset";
}

absl::StatusOr<Value> CoerceScalar(const std::string& key, const FieldDescriptor* field,
                                   const Value& v) {
  Value out;
  const bool is_unsigned = field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                           field->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
  const absl::Status bad_size = ErrnoError(
      EINVAL, absl::StrCat("Parameter '", key,
                           "' expects a non-negative number below 2^64\n"
                           "Optional suffix k, M, G, T, P or E means kilo-, "
                           "mega-, giga-, tera-, peta-\n"
                           "and exabytes, respectively."));
  if (is_unsigned && IsSizeOption(key) && v.kind_case() == Value::kStringValue) {
    absl::StatusOr<uint64_t> size = ParseSize(v.string_value());
    if (!size.ok() || absl::StartsWith(v.string_value(), "-")) return bad_size;
    out.set_string_value(absl::StrCat(*size));
    return out;
  }
  // A JSON number for a size is a whole, non-negative number below 2^64; a boolean is
  // no size at all (QEMU's words for both).
  if (is_unsigned && IsSizeOption(key) && v.kind_case() == Value::kNumberValue) {
    const double d = v.number_value();
    if (!(d >= 0) || d != std::floor(d) || d >= 18446744073709551616.0) return bad_size;
    out.set_string_value(absl::StrCat(static_cast<uint64_t>(d)));
    return out;
  }
  if (is_unsigned && IsSizeOption(key) && v.kind_case() == Value::kBoolValue) return bad_size;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL: {
      STRATA_ASSIGN_OR_RETURN(bool b, CoerceBool(key, v));
      out.set_bool_value(b);
      return out;
    }
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      if (v.kind_case() == Value::kNumberValue) {
        out.set_string_value(absl::StrCat(static_cast<int64_t>(v.number_value())));
        return out;
      }
      if (v.kind_case() == Value::kStringValue) {
        int64_t n;
        if (absl::SimpleAtoi(v.string_value(), &n)) {
          if (is_unsigned && n < 0) {
            out.set_string_value(absl::StrCat(static_cast<uint64_t>(n)));
          } else {
            out.set_string_value(absl::StrCat(n));
          }
          return out;
        }
        absl::StatusOr<uint64_t> size = ParseSize(v.string_value());
        if (size.ok()) {
          out.set_string_value(absl::StrCat(*size));
          return out;
        }
      }
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' expects a number"));
    }
    case FieldDescriptor::CPPTYPE_STRING:
      if (v.kind_case() == Value::kNumberValue) {
        out.set_string_value(absl::StrCat(v.number_value()));
        return out;
      }
      if (v.kind_case() == Value::kBoolValue) {
        out.set_string_value(v.bool_value() ? "on" : "off");
        return out;
      }
      if (v.kind_case() != Value::kStringValue) {
        return ErrnoError(EINVAL, absl::StrCat("Invalid parameter type for '", key,
                                               "', expected: string"));
      }
      return v;
    default:
      return v;
  }
}

absl::StatusOr<Struct> NormaliseBlockdevOptions(const Struct& tree);

// A value QEMU's flattening keeps whole although it is no scalar: null, {} or [].
bool IsEmptyValue(const Value& v) {
  return v.kind_case() == Value::kNullValue ||
         (v.has_struct_value() && v.struct_value().fields().empty()) ||
         (v.has_list_value() && v.list_value().values().empty());
}

}  // namespace

std::vector<std::string> FlattenedOptionKeys(const Value& v) {
  std::vector<std::string> out;
  auto add = [&](const std::string& key, const Value& child) {
    if (IsEmptyValue(child) || (!child.has_struct_value() && !child.has_list_value())) {
      out.push_back(key);
      return;
    }
    for (const std::string& sub : FlattenedOptionKeys(child)) out.push_back(key + "." + sub);
  };
  if (v.has_struct_value()) {
    for (const auto& [k, child] : v.struct_value().fields()) add(k, child);
  } else {
    for (int i = 0; i < v.list_value().values_size(); ++i) {
      add(absl::StrCat(i), v.list_value().values(i));
    }
  }
  return out;
}

namespace {

// Steps 3-4 for one message: each key must be a field of `d` (else `unknown(key)`), values
// are coerced by field type, BlockdevRef children recurse.
absl::StatusOr<Struct> NormaliseMessage(
    const Struct& in, const Descriptor* d,
    const std::function<absl::Status(const std::string&)>& unknown,
    const std::string& prefix = "");

// `unknown`: what an unknown key of a nested object is (the node's refusal, given the
// dotted key); unset for list items, whose unknown keys are invalid parameters.
absl::StatusOr<Value> NormaliseField(
    const std::string& key, const FieldDescriptor* field, const Value& v,
    const std::function<absl::Status(const std::string&)>* unknown = nullptr) {
  if (field->is_repeated()) {
    Value out;
    auto* list = out.mutable_list_value();
    std::vector<Value> items;
    if (v.has_list_value()) {
      items.assign(v.list_value().values().begin(), v.list_value().values().end());
    } else if (v.has_struct_value()) {
      // keyval: "rule.0.event=..., rule.1.event=..." or a single unindexed object.
      const auto& f = v.struct_value().fields();
      bool indexed = !f.empty();
      for (const auto& [k, _] : f) {
        int idx;
        if (!absl::SimpleAtoi(k, &idx)) indexed = false;
      }
      if (indexed) {
        for (size_t i = 0; i < f.size(); ++i) {
          auto it = f.find(absl::StrCat(i));
          if (it == f.end()) {
            return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, ".", i, "' is missing"));
          }
          items.push_back(it->second);
        }
      } else {
        items.push_back(v);
      }
    } else {
      items.push_back(v);
    }
    for (const Value& item : items) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (!item.has_struct_value()) {
          return ErrnoError(EINVAL, absl::StrCat("Invalid parameter type for '", key,
                                                 "', expected: object"));
        }
        STRATA_ASSIGN_OR_RETURN(
            Struct s, NormaliseMessage(item.struct_value(), field->message_type(),
                                       [&](const std::string& k) {
                                         return ErrnoError(
                                             EINVAL, absl::StrCat("Invalid parameter '",
                                                                  key, ".", k, "'"));
                                       }));
        *list->add_values()->mutable_struct_value() = std::move(s);
      } else {
        STRATA_ASSIGN_OR_RETURN(*list->add_values(), CoerceScalar(key, field, item));
      }
    }
    return out;
  }
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return CoerceScalar(key, field, v);
  }
  Value out;
  if (field->message_type()->full_name() == "strata.proto.BlockdevRef") {
    Struct* ref = out.mutable_struct_value();
    if (v.kind_case() == Value::kNullValue) {
      (*ref->mutable_fields())["none"].set_bool_value(true);
    } else if (v.kind_case() == Value::kStringValue) {
      // A string names an existing node in QEMU. Options given to open one image cannot
      // name another node, so QEMU's tools always refuse it; so does strata. (References
      // the library builds itself, such as a backing file named by the image header, are
      // opened as filenames: graph_builder.h.)
      return ErrnoError(EINVAL, absl::StrCat("Cannot find device='", v.string_value(),
                                             "' nor node-name='", v.string_value(), "'"));
    } else if (v.has_struct_value()) {
      STRATA_ASSIGN_OR_RETURN(*(*ref->mutable_fields())["options"].mutable_struct_value(),
                              NormaliseBlockdevOptions(v.struct_value()));
    } else {
      return ErrnoError(EINVAL, absl::StrCat("Invalid parameter type for '", key,
                                             "', expected: object or string"));
    }
    return out;
  }
  if (!v.has_struct_value()) {
    return ErrnoError(EINVAL,
                      absl::StrCat("Invalid parameter type for '", key, "', expected: object"));
  }
  STRATA_ASSIGN_OR_RETURN(
      *out.mutable_struct_value(),
      NormaliseMessage(
          v.struct_value(), field->message_type(),
          unknown != nullptr ? *unknown
                             : [](const std::string& k) {
                                 return ErrnoError(EINVAL,
                                                   absl::StrCat("Invalid parameter '", k, "'"));
                               },
          key + "."));
  return out;
}

// `unknown` gets the key with `prefix` (the dotted path of `in` within its node).
absl::StatusOr<Struct> NormaliseMessage(
    const Struct& in, const Descriptor* d,
    const std::function<absl::Status(const std::string&)>& unknown,
    const std::string& prefix) {
  Struct out;
  for (const auto& [raw_key, value] : in.fields()) {
    std::string key = NormaliseKey(raw_key);
    const FieldDescriptor* field = d->FindFieldByName(key);
    // Fields whose QEMU name is not a usable C++ name carry it as their JSON name.
    for (int i = 0; field == nullptr && i < d->field_count(); ++i) {
      if (d->field(i)->has_json_name() && d->field(i)->json_name() == raw_key) field = d->field(i);
    }
    if (field == nullptr) {
      // The handler either refuses at once or notes the key and lets the rest be checked.
      STRATA_RETURN_IF_ERROR(unknown(prefix + raw_key));
      continue;
    }
    // QEMU's alternates: a string option given as an object (overlap-check.template=...)
    // fills the sibling message field NAME_flags; its unknown keys are the node's.
    const FieldDescriptor* flags = d->FindFieldByName(key + "_flags");
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && value.has_struct_value() &&
        flags != nullptr && flags->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      STRATA_ASSIGN_OR_RETURN(
          *(*out.mutable_fields())[flags->name()].mutable_struct_value(),
          NormaliseMessage(value.struct_value(), flags->message_type(), unknown,
                           prefix + raw_key + "."));
      continue;
    }
    // QEMU sees a node's options flattened (qdict_flatten): an object or list under an
    // option becomes dotted keys no option has, and an empty one (or null) stays a value
    // no option takes. A plain option skips such a value; anything else refuses it.
    const bool empty = IsEmptyValue(value);
    const bool scalar = !field->is_repeated() && field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
    if (scalar && empty) continue;
    if (scalar && (value.has_struct_value() || value.has_list_value())) {
      for (const std::string& flat : FlattenedOptionKeys(value)) {
        STRATA_RETURN_IF_ERROR(unknown(absl::StrCat(prefix, raw_key, ".", flat)));
      }
      continue;
    }
    const bool none_child = field->message_type() != nullptr &&
                            field->message_type()->full_name() == "strata.proto.BlockdevRef" &&
                            value.kind_case() == Value::kNullValue;
    if (empty && !none_child) {
      STRATA_RETURN_IF_ERROR(unknown(prefix + raw_key));
      continue;
    }
    STRATA_ASSIGN_OR_RETURN((*out.mutable_fields())[field->name()],
                            NormaliseField(prefix + raw_key, field, value, &unknown));
  }
  return out;
}

// What QEMU's open of a node refuses before it looks at options left over (its children
// are opened first, then the driver's own open runs): a protocol node with no file name
// (a name that is not a string counts as none), a node without the child its driver
// needs.
absl::Status CheckOpenRequirements(const BlockDriver& driver, const Struct& tree) {
  const auto& f = tree.fields();
  if (driver.requires_filename() && !f.contains("x-filename")) {
    auto name = f.find("filename");
    if (name == f.end() || name->second.kind_case() != Value::kStringValue ||
        name->second.string_value().empty()) {
      return ErrnoError(EINVAL, absl::StrCat("The '", driver.name(),
                                             "' block driver requires a file name"));
    }
  }
  // A pseudo-filename ("blkdebug:CONF:IMAGE") names the children itself, and so does
  // blkdebug's x-image (a file name for "image"); a "filename" option never does.
  const std::string child(driver.required_child());
  auto given = f.find(child);
  const bool child_given = given != f.end() && !(given->second.has_struct_value() &&
                                                 given->second.struct_value().fields().empty());
  if (!child.empty() && !child_given && !f.contains("x-filename") && !f.contains("x-image")) {
    return ErrnoError(EINVAL,
                      absl::StrCat("A block device must be specified for \"", child, "\""));
  }
  // QEMU's words for a child given both ways (its check of a file name beside "file").
  if (!child.empty() && f.contains(child) && f.contains("x-image")) {
    return ErrnoError(EINVAL, "Can't specify 'file' and 'filename' options at the same time");
  }
  return absl::OkStatus();
}

// Step 3: BlockdevOptions is QEMU's flat union; driver keys move under the driver member.
absl::StatusOr<Struct> NormaliseBlockdevOptions(const Struct& tree) {
  const Descriptor* d = proto::BlockdevOptions::descriptor();
  auto driver_it = tree.fields().find("driver");
  if (driver_it == tree.fields().end()) {
    return ErrnoError(EINVAL, "Parameter 'driver' is missing");
  }
  if (driver_it->second.kind_case() != Value::kStringValue) {
    return ErrnoError(EINVAL, "Invalid parameter type for 'driver', expected: string");
  }
  const std::string driver = driver_it->second.string_value();
  const FieldDescriptor* member = d->FindFieldByName(NormaliseKey(driver));
  const BlockDriver* registered = DriverRegistry::Global().Find(driver);
  if (member == nullptr || member->real_containing_oneof() == nullptr || registered == nullptr) {
    return ErrnoError(EINVAL, absl::StrCat("Unknown driver '", driver, "'"));
  }
  STRATA_RETURN_IF_ERROR(CheckOpenRequirements(*registered, tree));
  Struct generic, specific;
  for (const auto& [raw_key, value] : tree.fields()) {
    std::string key = NormaliseKey(raw_key);
    const FieldDescriptor* f = d->FindFieldByName(key);
    if (f != nullptr && f->real_containing_oneof() == nullptr) {
      (*generic.mutable_fields())[raw_key] = value;
    } else {
      (*specific.mutable_fields())[raw_key] = value;
    }
  }
  // An unknown key anywhere in the node (cache.foo as well as foo) is the driver's to
  // refuse, as QEMU's leftover-options check does.
  // QEMU checks every known option's value first, then refuses what is left over, the
  // first in its QDict's order.
  std::vector<std::string> left_over;
  const std::function<absl::Status(const std::string&)> unsupported =
      [&](const std::string& k) {
        left_over.push_back(k);
        return absl::OkStatus();
      };
  STRATA_ASSIGN_OR_RETURN(Struct out, NormaliseMessage(generic, d, unsupported));
  STRATA_ASSIGN_OR_RETURN(Struct driver_part,
                          NormaliseMessage(specific, member->message_type(), unsupported));
  if (!left_over.empty()) return UnsupportedOptionError(*registered, std::move(left_over));
  *(*out.mutable_fields())[member->name()].mutable_struct_value() = std::move(driver_part);
  auto* naming = (*out.mutable_fields())["naming_options"].mutable_list_value();
  for (auto& [key, json] : NamingOptionsOfTree(tree, *registered)) {
    auto& o = *naming->add_values()->mutable_struct_value()->mutable_fields();
    o["key"].set_string_value(key);
    o["json"].set_string_value(json);
  }
  return out;
}

}  // namespace

void MergeTree(const Struct& overlay, Struct* base) {
  for (const auto& [key, value] : overlay.fields()) {
    Value& slot = (*base->mutable_fields())[key];
    if (slot.has_struct_value() && value.has_struct_value()) {
      MergeTree(value.struct_value(), slot.mutable_struct_value());
    } else {
      slot = value;
    }
  }
}

absl::Status UnsupportedOptionError(const BlockDriver& driver, std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());  // a stable stand-in for insertion order
  const std::string& first = keys[QdictPrintOrder(keys).front()];
  const bool protocol = driver.opens_as_protocol();
  return ErrnoError(EINVAL, absl::StrCat("Block ", protocol ? "protocol" : "format", " '",
                                         driver.name(), "' ", protocol ? "doesn't" : "does not",
                                         " support the option '", first, "'"));
}

const char kReferenceWithOptions[] =
    "Cannot reference an existing block device with additional options or a new filename";

bool IsChildOptionKey(absl::string_view key) {
  return key == "file" || key == "backing" || key == "image" || key == "data-file";
}

absl::Status CheckChildReferences(const Struct& tree) {
  for (const auto& [key, value] : tree.fields()) {
    if (value.has_struct_value()) STRATA_RETURN_IF_ERROR(CheckChildReferences(value.struct_value()));
    if (!IsChildOptionKey(key) || value.kind_case() != Value::kStringValue) continue;
    for (const auto& [other, unused] : tree.fields()) {
      if (absl::StartsWith(other, key + ".")) return ErrnoError(EINVAL, kReferenceWithOptions);
    }
  }
  return absl::OkStatus();
}

Struct SplitDottedKeys(const Struct& in) {
  Struct out;
  // Dotted keys first, then plain ones: an object given for a prefix wins over a dotted
  // key naming the same option, as in QEMU, whose flattening of the object replaces it.
  for (const bool dotted : {true, false}) {
    for (const auto& [key, value] : in.fields()) {
      if ((key.find('.') != std::string::npos) != dotted) continue;
      Value v = value;
      if (v.has_struct_value()) *v.mutable_struct_value() = SplitDottedKeys(v.struct_value());
      std::vector<std::string> parts = absl::StrSplit(key, '.');
      Struct* node = &out;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        node = (*node->mutable_fields())[parts[i]].mutable_struct_value();
      }
      Value& slot = (*node->mutable_fields())[parts.back()];
      if (slot.has_struct_value() && v.has_struct_value()) {
        MergeTree(v.struct_value(), slot.mutable_struct_value());
      } else {
        slot = v;
      }
    }
  }
  return out;
}

absl::StatusOr<Struct> ParseJsonObject(absl::string_view json) {
  absl::StatusOr<google::protobuf::Value> value = ParseQemuJson(json);
  if (!value.ok()) return Prefixed("Could not parse the JSON options", value.status());
  if (!value->has_struct_value()) return ErrnoError(EINVAL, "Invalid JSON object given");
  return std::move(*value->mutable_struct_value());
}

absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromTree(const Struct& tree) {
  STRATA_ASSIGN_OR_RETURN(Struct normalised, NormaliseBlockdevOptions(SplitDottedKeys(tree)));
  // Protobuf's conversion carries only UTF-8; file names are bytes (proto_bytes.h).
  EscapeStructStrings(&normalised);
  std::string json;
  auto to_json = google::protobuf::util::MessageToJsonString(normalised, &json);
  if (!to_json.ok()) return ErrnoError(EINVAL, std::string(to_json.message()));
  proto::BlockdevOptions options;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &options, opts);
  if (!parsed.ok()) return ErrnoError(EINVAL, std::string(parsed.message()));
  UnescapeMessageStrings(&options);
  return options;
}

absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromJson(absl::string_view json) {
  STRATA_ASSIGN_OR_RETURN(Struct tree, ParseJsonObject(json));
  return BlockdevOptionsFromTree(tree);
}

absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromKeyval(absl::string_view keyval) {
  STRATA_ASSIGN_OR_RETURN(Struct tree, ParseKeyval(keyval));
  return BlockdevOptionsFromTree(tree);
}

absl::StatusOr<Struct> MergedKeyvals(const std::vector<std::string>& keyvals) {
  Struct merged;
  for (const std::string& keyval : keyvals) {
    STRATA_ASSIGN_OR_RETURN(Struct tree, ParseKeyval(keyval));
    MergeTree(tree, &merged);
  }
  return merged;
}

}  // namespace strata
