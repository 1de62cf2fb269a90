// strata rbd driver: image specs (see rbd_spec.h).
#include "drivers/rbd/rbd_spec.h"

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "block/qdict_order.h"
#include "block/status.h"

namespace strata::rbd {

namespace {

// The raw text up to the first unescaped `stop` (escapes kept); `*in` moves past it.
// `found` tells whether `stop` was there.
absl::string_view RawToken(absl::string_view* in, char stop, bool* found) {
  *found = false;
  size_t i = 0;
  for (; i < in->size(); ++i) {
    if ((*in)[i] == '\\' && i + 1 < in->size()) {
      ++i;
      continue;
    }
    if ((*in)[i] == stop) {
      *found = true;
      break;
    }
  }
  absl::string_view token = in->substr(0, i);
  *in = *found ? in->substr(i + 1) : absl::string_view();
  return token;
}

std::string Unescape(absl::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out += raw[i];
  }
  return out;
}

std::string JsonString(absl::string_view s) { return QemuJsonString(s); }

}  // namespace

absl::StatusOr<RbdSpec> ParseRbdFilename(absl::string_view filename) {
  absl::string_view rest = filename;
  if (!absl::ConsumePrefix(&rest, "rbd:")) return ErrnoError(EINVAL, "Invalid rbd filename");
  RbdSpec spec;
  spec.from_filename = true;
  bool found = false;
  // POOL[/NAMESPACE]/IMAGE[@SNAPSHOT] up to the first unescaped ':', then options.
  absl::string_view name = RawToken(&rest, ':', &found);
  absl::string_view options = rest;
  std::vector<absl::string_view> parts;
  do {
    parts.push_back(RawToken(&name, '/', &found));
  } while (found);
  if (parts[0].empty()) return ErrnoError(EINVAL, "Pool name is required");
  if (parts.size() < 2 || parts.size() > 3) return ErrnoError(EINVAL, "Image name is required");
  spec.pool = Unescape(parts[0]);
  if (parts.size() == 3) spec.ns = Unescape(parts[1]);
  absl::string_view image = parts.back();
  spec.image = Unescape(RawToken(&image, '@', &found));
  if (found) spec.snapshot = Unescape(image);
  if (spec.image.empty()) return ErrnoError(EINVAL, "Image name is required");
  while (!options.empty()) {
    absl::string_view pair = RawToken(&options, ':', &found);
    bool has_value = false;
    const std::string key = Unescape(RawToken(&pair, '=', &has_value));
    if (!has_value) return ErrnoError(EINVAL, absl::StrCat("conf option ", key, " has no value"));
    const std::string value = Unescape(pair);
    if (key == "conf") {
      spec.conf = value;
    } else if (key == "id") {
      spec.user = value;
    } else {
      spec.settings.emplace_back(key, value);
    }
  }
  return spec;
}

absl::StatusOr<RbdSpec> RbdSpecFromOptions(const proto::RbdOptions& options) {
  if (!options.x_filename().empty()) return ParseRbdFilename(options.x_filename());
  RbdSpec spec;
  spec.pool = options.pool();
  spec.ns = options.namespace_();
  spec.image = options.image();
  spec.snapshot = options.snapshot();
  spec.conf = options.conf();
  spec.user = options.user();
  if (spec.pool.empty()) return ErrnoError(EINVAL, "Parameter 'pool' is missing");
  if (spec.image.empty()) return ErrnoError(EINVAL, "Parameter 'image' is missing");
  for (int i = 0; i < options.server_size(); ++i) {
    const proto::RbdServer& server = options.server(i);
    if (server.host().empty()) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter 'server.", i, ".host' is missing"));
    }
    if (server.port().empty()) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter 'server.", i, ".port' is missing"));
    }
    spec.servers.emplace_back(server.host(), server.port());
  }
  for (const std::string& mode : options.auth_client_required()) {
    // QEMU's enum visitor names no parameter here ("Parameter 'null'").
    if (mode != "cephx" && mode != "none") {
      return ErrnoError(EINVAL, absl::StrCat("Parameter 'null' does not accept value '", mode, "'"));
    }
    spec.auth_client_required.push_back(mode);
  }
  spec.key_secret = options.key_secret();
  return spec;
}

std::string MonHost(const RbdSpec& spec) {
  std::string out;
  for (const auto& [host, port] : spec.servers) {
    if (!out.empty()) out += ';';
    if (host.find(':') != std::string::npos) {
      absl::StrAppend(&out, "[", host, "]:", port);
    } else {
      absl::StrAppend(&out, host, ":", port);
    }
  }
  return out;
}

std::string RbdDisplayName(const RbdSpec& spec) {
  // Members in QEMU's insertion order; QdictOneLine prints them in its bucket order. A
  // pseudo-filename always yields a namespace member (empty when none was named).
  std::vector<std::pair<std::string, std::string>> members = {
      {"driver", "\"rbd\""}, {"pool", JsonString(spec.pool)}};
  if (spec.from_filename || !spec.ns.empty()) members.emplace_back("namespace", JsonString(spec.ns));
  members.emplace_back("image", JsonString(spec.image));
  if (!spec.conf.empty()) members.emplace_back("conf", JsonString(spec.conf));
  if (!spec.snapshot.empty()) members.emplace_back("snapshot", JsonString(spec.snapshot));
  if (!spec.user.empty()) members.emplace_back("user", JsonString(spec.user));
  for (size_t i = 0; i < spec.servers.size(); ++i) {
    members.emplace_back(absl::StrCat("server.", i, ".host"), JsonString(spec.servers[i].first));
    members.emplace_back(absl::StrCat("server.", i, ".port"), JsonString(spec.servers[i].second));
  }
  return "json:" + QdictOneLine(members);
}

}  // namespace strata::rbd
