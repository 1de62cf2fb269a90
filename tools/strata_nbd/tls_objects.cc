// strata-nbd: --object and TLS (see tls_objects.h). The objects themselves are the tools'
// shared ones (tools/common/objects.h); this file resolves --tls-creds / --tls-authz.
#include "tools/strata_nbd/tls_objects.h"

#include "absl/strings/str_cat.h"
#include "strata/nbd.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {

namespace {

bool Error(const std::string& message) {
  tools::ErrorReport(message);
  return false;
}

}  // namespace

bool SetUpTls(const NbdOptions& options, TlsSetup* setup) {
  for (const std::string& text : options.objects) {
    if (!tools::DefineObject(text)) return false;
  }
  if (options.tls_creds.empty()) return true;
  const tools::ObjectDef* obj = tools::FindObject(options.tls_creds);
  if (obj == nullptr) {
    return Error(absl::StrCat("Failed to get TLS creds: No TLS credentials with id '",
                              options.tls_creds, "'"));
  }
  if (obj->type != "tls-creds-x509" && obj->type != "tls-creds-psk") {
    return Error(absl::StrCat("Failed to get TLS creds: Object with id '", options.tls_creds,
                              "' is not TLS credentials"));
  }
  const bool server_endpoint = obj->props.at("endpoint") == "server";
  if (options.list) {
    if (server_endpoint) {
      return Error("Failed to get TLS creds: Expecting TLS credentials with a client endpoint");
    }
    absl::StatusOr<std::shared_ptr<nbd::TlsClientCredentials>> client =
        FindTlsClientCredentials(options.tls_creds);
    if (!client.ok()) return Error(std::string(client.status().message()));
    setup->client = *client;
    return true;
  }
  if (!server_endpoint) {
    return Error("Failed to get TLS creds: Expecting TLS credentials with a server endpoint");
  }
  TlsAuthorizer authorize;
  if (!options.tls_authz.empty()) {
    const tools::Authz* rules = tools::FindAuthz(options.tls_authz);
    if (rules == nullptr) {
      return Error(absl::StrCat("Failed to get authz: No authz object with id '",
                                options.tls_authz, "'"));
    }
    authorize = [rules = *rules](const std::string& who) { return rules.Allows(who); };
  }
  absl::StatusOr<std::shared_ptr<nbd::TlsServerCredentials>> c =
      LoadTlsServerCredentials(tools::TlsOptionsOf(*obj), std::move(authorize));
  if (!c.ok()) return Error(std::string(c.status().message()));
  setup->server = *c;
  return true;
}

}  // namespace strata::nbd_tool
