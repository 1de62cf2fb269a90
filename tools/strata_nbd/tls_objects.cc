// strata-nbd: --object and TLS (see tls_objects.h).
#include "tools/strata_nbd/tls_objects.h"

#include <fnmatch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "block/options_json.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {

namespace {

// One --object: its type, id and properties in the order given.
struct ObjectDef {
  std::string type;
  std::string id;
  std::map<std::string, std::string> props;
};

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
  tools::ErrorReport(message);
  return false;
}

std::optional<bool> ParseBool(const std::string& v) {
  if (v == "on" || v == "yes" || v == "true") return true;
  if (v == "off" || v == "no" || v == "false") return false;
  return std::nullopt;
}

// The properties each type takes (beyond id).
const std::map<std::string, std::vector<std::string>>& KnownTypes() {
  static const auto* types = new std::map<std::string, std::vector<std::string>>{
      {"authz-list-file", {"filename", "refresh"}},
      {"authz-simple", {"identity"}},
      {"iothread", {"poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch"}},
      {"secret", {"data", "file", "format", "keyid", "iv"}},
      {"tls-creds-psk", {"dir", "endpoint", "username", "priority", "verify-peer"}},
      {"tls-creds-x509",
       {"dir", "endpoint", "verify-peer", "priority", "sanity-check", "passwordid"}},
  };
  return *types;
}

// A compiled authorization object.
struct Authz {
  // authz-simple
  std::string identity;
  bool simple = false;
  // authz-list-file
  bool default_allow = false;
  struct Rule {
    std::string match;
    bool allow = false;
    bool glob = false;
  };
  std::vector<Rule> rules;

  bool Allows(const std::string& who) const {
    if (simple) return who == identity;
    for (const Rule& r : rules) {
      const bool hit = r.glob ? fnmatch(r.match.c_str(), who.c_str(), 0) == 0 : r.match == who;
      if (hit) return r.allow;
    }
    return default_allow;
  }
};

// authz-list-file: {"policy": "deny", "rules": [{"match": "...", "policy": "allow",
// "format": "exact"|"glob"}, ...]}
absl::StatusOr<Authz> LoadAuthzList(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("Unable to read '", path, "': ",
                                            "No such file or directory"));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<google::protobuf::Struct> tree = ParseJsonObject(text.str());
  if (!tree.ok()) return tree.status();
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

bool SetUpTls(const NbdOptions& options, TlsSetup* setup) {
  std::map<std::string, ObjectDef> objects;
  std::map<std::string, std::shared_ptr<nbd::TlsServerCredentials>> server_creds;
  std::map<std::string, std::shared_ptr<nbd::TlsClientCredentials>> client_creds;
  std::map<std::string, Authz> authz;
  for (const std::string& text : options.objects) {
    std::vector<std::string> parts = SplitCommas(text);
    ObjectDef def;
    def.type = parts[0];
    if (def.type == "help") {
      std::printf("List of user creatable objects:\n");
      for (const auto& [type, props] : KnownTypes()) std::printf("  %s\n", type.c_str());
      std::exit(0);
    }
    if (def.type.find('=') != std::string::npos) {
      return Error("Parameter 'qom-type' is missing");
    }
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
    if (objects.count(def.id)) {
      return Error(absl::StrCat("attempt to add duplicate property '", def.id,
                                "' to object (type 'container')"));
    }
    if (def.type == "tls-creds-x509" || def.type == "tls-creds-psk") {
      nbd::TlsCredsOptions creds;
      creds.kind = def.type == "tls-creds-psk" ? nbd::TlsCredsOptions::Kind::kPsk
                                               : nbd::TlsCredsOptions::Kind::kX509;
      const std::string endpoint = def.props.count("endpoint") ? def.props["endpoint"] : "client";
      if (endpoint != "server" && endpoint != "client") {
        return Error(absl::StrCat("Parameter 'endpoint' does not accept value '", endpoint, "'"));
      }
      creds.server = endpoint == "server";
      creds.dir = def.props.count("dir") ? def.props["dir"] : "";
      if (def.props.count("verify-peer")) {
        std::optional<bool> b = ParseBool(def.props["verify-peer"]);
        if (!b) {
          return Error("Parameter 'verify-peer' expects 'on' or 'off'");
        }
        creds.verify_peer = *b;
      }
      if (def.props.count("username")) creds.username = def.props["username"];
      if (def.props.count("priority")) creds.priority = def.props["priority"];
      if (creds.server) {
        absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> c =
            nbd::NewTlsServerCredentials(creds, nullptr);
        if (!c.ok()) return Error(std::string(c.status().message()));
        // Re-made below with the authorizer once --tls-authz is known.
        server_creds[def.id] = *c;
      } else {
        absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> c =
            nbd::NewTlsClientCredentials(creds);
        if (!c.ok()) return Error(std::string(c.status().message()));
        client_creds[def.id] = *c;
      }
      def.props["endpoint"] = endpoint;
    } else if (def.type == "authz-simple") {
      if (!def.props.count("identity")) return Error("Parameter 'identity' is missing");
      Authz a;
      a.simple = true;
      a.identity = def.props["identity"];
      authz[def.id] = a;
    } else if (def.type == "authz-list-file") {
      if (!def.props.count("filename")) return Error("Parameter 'filename' is missing");
      absl::StatusOr<Authz> a = LoadAuthzList(def.props["filename"]);
      if (!a.ok()) return Error(std::string(a.status().message()));
      authz[def.id] = *a;
    }
    objects[def.id] = def;
  }
  if (options.tls_creds.empty()) return true;
  auto obj = objects.find(options.tls_creds);
  if (obj == objects.end()) {
    return Error(absl::StrCat("Failed to get TLS creds: No TLS credentials with id '",
                              options.tls_creds, "'"));
  }
  if (obj->second.type != "tls-creds-x509" && obj->second.type != "tls-creds-psk") {
    return Error(absl::StrCat("Failed to get TLS creds: Object with id '", options.tls_creds,
                              "' is not TLS credentials"));
  }
  const bool server_endpoint = obj->second.props["endpoint"] == "server";
  if (options.list) {
    if (server_endpoint) {
      return Error("Failed to get TLS creds: Expecting TLS credentials with a client endpoint");
    }
    setup->client = client_creds[options.tls_creds];
    return true;
  }
  if (!server_endpoint) {
    return Error("Failed to get TLS creds: Expecting TLS credentials with a server endpoint");
  }
  if (options.tls_authz.empty()) {
    setup->server = server_creds[options.tls_creds];
    return true;
  }
  auto a = authz.find(options.tls_authz);
  if (a == authz.end()) {
    return Error(absl::StrCat("Failed to get authz: No authz object with id '",
                              options.tls_authz, "'"));
  }
  // Load again with the authorizer (the first load reported file errors in order).
  const ObjectDef& def = obj->second;
  nbd::TlsCredsOptions creds;
  creds.kind = def.type == "tls-creds-psk" ? nbd::TlsCredsOptions::Kind::kPsk
                                           : nbd::TlsCredsOptions::Kind::kX509;
  creds.server = true;
  creds.dir = def.props.count("dir") ? def.props.at("dir") : "";
  if (def.props.count("verify-peer")) creds.verify_peer = *ParseBool(def.props.at("verify-peer"));
  if (def.props.count("priority")) creds.priority = def.props.at("priority");
  Authz rules = a->second;
  absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> c = nbd::NewTlsServerCredentials(
      creds, [rules](const std::string& who) { return rules.Allows(who); });
  if (!c.ok()) return Error(std::string(c.status().message()));
  setup->server = *c;
  return true;
}

}  // namespace strata::nbd_tool
