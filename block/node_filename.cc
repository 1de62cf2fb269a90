// strata: QEMU's node names (see node_filename.h).
#include "block/node_filename.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "block/graph_builder.h"
#include "block/qdict_order.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// A number as QEMU prints it: an integer as one (JSON's -0 is the integer 0), anything
// else with 17 significant digits ("%.17g"). JSON numbers reach strata as doubles, so
// integers past 2^53 print rounded.
std::string QemuJsonNumber(double v) {
  if (v == 0) return "0";
  if (std::trunc(v) == v && std::fabs(v) < 9.2e18) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// A value that flattening leaves whole: a scalar, an empty object or list.
std::string QemuJsonLeaf(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue:
      return QemuJsonString(v.string_value());
    case Value::kNumberValue:
      return QemuJsonNumber(v.number_value());
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kStructValue:
      return "{}";
    case Value::kListValue:
      return "[]";
    default:
      return "null";
  }
}

// QEMU's qdict_flatten: nested objects and lists become dotted keys; empty ones stay.
void Flatten(const std::string& key, const Value& v,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (v.has_struct_value() && !v.struct_value().fields().empty()) {
    for (const auto& [k, child] : v.struct_value().fields()) {
      Flatten(absl::StrCat(key, ".", k), child, out);
    }
  } else if (v.has_list_value() && v.list_value().values_size() > 0) {
    for (int i = 0; i < v.list_value().values_size(); ++i) {
      Flatten(absl::StrCat(key, ".", i), v.list_value().values(i), out);
    }
  } else {
    out->emplace_back(key, QemuJsonLeaf(v));
  }
}

bool IsStrongOption(const BlockDriver& driver, absl::string_view key) {
  for (absl::string_view strong : driver.strong_options()) {
    if (key == strong || (absl::EndsWith(strong, ".") && absl::StartsWith(key, strong))) {
      return true;
    }
  }
  return false;
}

bool IsGlobalNamingOption(absl::string_view key) { return key == "driver" || key == "filename"; }

}  // namespace

std::vector<std::pair<std::string, std::string>> NamingOptionsOfTree(const Struct& tree,
                                                                     const BlockDriver& driver) {
  std::vector<std::pair<std::string, std::string>> flat;
  for (const auto& field : tree.fields()) {
    const std::string& key = field.first;
    const Value& value = field.second;
    if (!IsGlobalNamingOption(key) && !IsStrongOption(driver, key) &&
        !absl::c_any_of(driver.strong_options(), [&key](absl::string_view s) {
          return absl::EndsWith(s, ".") && absl::StartsWith(s, key + ".");
        })) {
      continue;  // neither named nor a parent of a named key: children, other options
    }
    Flatten(key, value, &flat);
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& member : flat) {
    if (IsGlobalNamingOption(member.first) || IsStrongOption(driver, member.first)) {
      out.push_back(std::move(member));
    }
  }
  // In the order QEMU walks the node's options dict (its print order) as the options
  // were given; the tree no longer knows that order, so sorted keys stand in for it
  // (it matters only between keys of one hash bucket, such as server.host and
  // server.port).
  std::sort(out.begin(), out.end());
  std::vector<std::string> keys;
  for (const auto& m : out) keys.push_back(m.first);
  std::vector<std::pair<std::string, std::string>> ordered;
  for (size_t i : QdictPrintOrder(keys)) ordered.push_back(std::move(out[i]));
  return ordered;
}

bool GivenStrongOptions(const proto::BlockdevOptions& options,
                        const std::vector<absl::string_view>& except) {
  for (const proto::NamingOption& o : options.naming_options()) {
    if (IsGlobalNamingOption(o.key()) || absl::c_linear_search(except, o.key())) continue;
    return true;
  }
  return false;
}

void NameOpenedNode(BlockDriverState& node, const proto::BlockdevOptions& options) {
  const BlockDriver& driver = node.driver();
  std::vector<std::pair<std::string, std::string>> members;
  const bool strong_given = GivenStrongOptions(options);
  bool has_driver = false;
  for (const proto::NamingOption& o : options.naming_options()) {
    members.emplace_back(o.key(), o.json());
    has_driver = has_driver || o.key() == "driver";
  }
  if (!has_driver) {
    members.insert(members.begin(), {"driver", QemuJsonString(driver.name())});
  }
  // QEMU lists a node's children newest first; the backing file is the image's own
  // business (qemu-img opens without I/O, where it never counts as overridden).
  const auto& children = node.children();
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    if ((*it)->name() == "backing") continue;
    members.emplace_back((*it)->name(), (*it)->node().full_options());
  }
  const std::string own = node.filename();
  node.set_full_options(absl::StartsWith(own, "json:{") ? own.substr(5) : QdictOneLine(members));
  if (!own.empty()) return;  // the driver named it (file, null-co, blkdebug, nbd, rbd)
  const BdrvChild* primary = node.primary_child();
  if (driver.kind() == DriverKind::kFormat && !strong_given && primary != nullptr &&
      primary->node().driver().opens_as_protocol() && !primary->node().filename().empty() &&
      !absl::StartsWith(primary->node().filename(), "json:")) {
    node.set_filename(primary->node().filename());
  } else {
    node.set_filename(absl::StrCat("json:", node.full_options()));
  }
}

absl::StatusOr<std::string> BaseDirectory(const BlockDriverState& node) {
  STRATA_RETURN_IF_ERROR(node.driver().CheckHasBaseDirectory());
  if (BdrvChild* primary = node.primary_child()) return BaseDirectory(primary->node());
  const std::string& name = node.filename();
  if (name.empty() || absl::StartsWith(name, "json:")) {
    return ErrnoError(ENOTSUP, absl::StrCat("Cannot generate a base directory for ",
                                            node.driver().name(), " nodes"));
  }
  const size_t slash = name.rfind('/');
  return slash == std::string::npos ? std::string() : name.substr(0, slash + 1);
}

absl::StatusOr<std::string> FullBackingFilename(const BlockDriverState& node,
                                                const std::string& backing) {
  if (BackingNameStandsAlone(backing)) return backing;
  STRATA_ASSIGN_OR_RETURN(std::string directory, BaseDirectory(node));
  return directory + backing;
}

}  // namespace strata
