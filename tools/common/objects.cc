// strata tools: --object definitions (see objects.h).
#include "tools/common/objects.h"

#include <fnmatch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "strata/secrets.h"
#include "strata/nbd.h"
#include "tools/common/program.h"

namespace strata::tools {

namespace {

struct Registry {
  std::map<std::string, ObjectDef> objects;
  std::map<std::string, Authz> authz;
};

Registry& Objects() {
  static Registry registry;
  return registry;
}

// "type,key=value,..." with ",," standing for a comma inside a value.
std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        cur += ',';
        ++i;
        continue;
      }
      parts.push_back(cur);
      cur.clear();
      continue;
    }
    cur += text[i];
  }
  parts.push_back(cur);
  return parts;
}

bool Error(const std::string& message) {
  ErrorReport(message);
  return false;
}

std::optional<bool> ParseBool(const std::string& v) {
  if (v == "on" || v == "yes" || v == "true") return true;
  if (v == "off" || v == "no" || v == "false") return false;
  return std::nullopt;
}

// The properties each type takes (beyond id).
const std::map<std::string, std::vector<std::string>>& KnownTypes() {
  static const std::map<std::string, std::vector<std::string>> types = {
      {"authz-list-file", {"filename", "refresh"}},
      {"authz-simple", {"identity"}},
      {"iothread", {"poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch"}},
      {"secret", {"data", "file", "format", "keyid", "iv"}},
      {"tls-creds-psk", {"dir", "endpoint", "username", "priority", "verify-peer"}},
      {"tls-creds-x509",
       {"dir", "endpoint", "verify-peer", "priority", "sanity-check", "passwordid"}},
  };
  return types;
}

// authz-list-file: {"policy": "deny", "rules": [{"match": "...", "policy": "allow",
// "format": "exact"|"glob"}, ...]}
absl::StatusOr<Authz> LoadAuthzList(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("Unable to read '", path, "': ", "No such file or directory"));
  }
  std::stringstream text;
  text << in.rdbuf();
  // The file is JSON; protobuf's parser reads it into a generic tree.
  std::optional<google::protobuf::Struct> tree(std::in_place);
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &*tree).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("Invalid JSON in '", path, "'"));
  }
  Authz a;
  const auto& f = tree->fields();
  auto policy = f.find("policy");
  a.default_allow = policy != f.end() && policy->second.string_value() == "allow";
  auto rules = f.find("rules");
  if (rules != f.end()) {
    for (const auto& v : rules->second.list_value().values()) {
      const auto& rf = v.struct_value().fields();
      Authz::Rule r;
      if (rf.count("match")) r.match = rf.at("match").string_value();
      r.allow = rf.count("policy") && rf.at("policy").string_value() == "allow";
      r.glob = rf.count("format") && rf.at("format").string_value() == "glob";
      a.rules.push_back(r);
    }
  }
  return a;
}

}  // namespace

bool Authz::Allows(const std::string& who) const {
  if (simple) return who == identity;
  for (const Rule& r : rules) {
    const bool hit = r.glob ? fnmatch(r.match.c_str(), who.c_str(), 0) == 0 : r.match == who;
    if (hit) return r.allow;
  }
  return default_allow;
}

TlsCredsOptions TlsOptionsOf(const ObjectDef& def) {
  TlsCredsOptions creds;
  creds.kind = def.type == "tls-creds-psk" ? TlsCredsOptions::Kind::kPsk
                                           : TlsCredsOptions::Kind::kX509;
  auto prop = [&](const char* key) -> std::string {
    auto it = def.props.find(key);
    return it == def.props.end() ? "" : it->second;
  };
  creds.server = prop("endpoint") == "server";
  creds.dir = prop("dir");
  if (std::optional<bool> b = ParseBool(prop("verify-peer"))) creds.verify_peer = *b;
  if (!prop("username").empty()) creds.username = prop("username");
  creds.priority = prop("priority");
  return creds;
}

bool DefineObject(const std::string& text) {
  Registry& registry = Objects();
  std::vector<std::string> parts = SplitCommas(text);
  ObjectDef def;
  def.type = parts[0];
  if (def.type == "help") {
    std::printf("List of user creatable objects:\n");
    for (const auto& [type, props] : KnownTypes()) std::printf("  %s\n", type.c_str());
    std::exit(0);
  }
  if (def.type.find('=') != std::string::npos) return Error("Parameter 'qom-type' is missing");
  auto known = KnownTypes().find(def.type);
  if (known == KnownTypes().end()) {
    return Error(absl::StrCat("Parameter 'qom-type' does not accept value '", def.type, "'"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    const std::string key = parts[i].substr(0, eq);
    const std::string value = eq == std::string::npos ? "on" : parts[i].substr(eq + 1);
    if (key == "id") {
      def.id = value;
      continue;
    }
    bool allowed = false;
    for (const std::string& p : known->second) allowed = allowed || p == key;
    if (!allowed) return Error(absl::StrCat("Parameter '", key, "' is unexpected"));
    def.props[key] = value;
  }
  if (def.id.empty()) return Error("Parameter 'id' is missing");
  if (registry.objects.count(def.id)) {
    return Error(absl::StrCat("attempt to add duplicate property '", def.id,
                              "' to object (type 'container')"));
  }
  if (def.type == "tls-creds-x509" || def.type == "tls-creds-psk") {
    const std::string endpoint = def.props.count("endpoint") ? def.props["endpoint"] : "client";
    if (endpoint != "server" && endpoint != "client") {
      return Error(absl::StrCat("Parameter 'endpoint' does not accept value '", endpoint, "'"));
    }
    def.props["endpoint"] = endpoint;
    if (def.props.count("verify-peer") && !ParseBool(def.props["verify-peer"])) {
      return Error("Parameter 'verify-peer' expects 'on' or 'off'");
    }
    const TlsCredsOptions creds = TlsOptionsOf(def);
    if (creds.server) {
      // Loaded here so that missing files are reported now; strata-nbd loads them again
      // with its authorizer (nbd_tool::SetUpTls).
      absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> c =
          LoadTlsServerCredentials(creds, nullptr);
      if (!c.ok()) return Error(std::string(c.status().message()));
      RegisterTlsServerCredentialsId(def.id);
    } else {
      absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> c =
          LoadTlsClientCredentials(creds);
      if (!c.ok()) return Error(std::string(c.status().message()));
      RegisterTlsClientCredentials(def.id, *c);
    }
  } else if (def.type == "authz-simple") {
    if (!def.props.count("identity")) return Error("Parameter 'identity' is missing");
    Authz a;
    a.simple = true;
    a.identity = def.props["identity"];
    registry.authz[def.id] = a;
  } else if (def.type == "authz-list-file") {
    if (!def.props.count("filename")) return Error("Parameter 'filename' is missing");
    absl::StatusOr<Authz> a = LoadAuthzList(def.props["filename"]);
    if (!a.ok()) return Error(std::string(a.status().message()));
    registry.authz[def.id] = *a;
  } else if (def.type == "secret") {
    SecretDefinition secret;
    secret.id = def.id;
    auto prop = [&](const char* key) -> std::optional<std::string> {
      auto it = def.props.find(key);
      return it == def.props.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    secret.data = prop("data");
    secret.file = prop("file");
    secret.keyid = prop("keyid");
    secret.iv = prop("iv");
    secret.format = prop("format").value_or("raw");
    if (secret.format != "raw" && secret.format != "base64") {
      return Error(absl::StrCat("Parameter 'format' does not accept value '", secret.format, "'"));
    }
    absl::StatusOr<std::string> bytes = LoadSecret(secret);
    if (!bytes.ok()) return Error(std::string(bytes.status().message()));
    RegisterSecret(def.id, *std::move(bytes));
  }
  registry.objects[def.id] = def;
  return true;
}

const ObjectDef* FindObject(const std::string& id) {
  auto it = Objects().objects.find(id);
  return it == Objects().objects.end() ? nullptr : &it->second;
}

const Authz* FindAuthz(const std::string& id) {
  auto it = Objects().authz.find(id);
  return it == Objects().authz.end() ? nullptr : &it->second;
}

}  // namespace strata::tools
