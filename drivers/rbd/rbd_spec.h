// strata rbd driver: which image, in which pool and cluster, from QEMU's forms:
//
//   rbd:POOL[/NAMESPACE]/IMAGE[@SNAPSHOT][:conf=PATH][:id=USER][:KEY=VALUE...]
//   json:{"driver":"rbd","pool":...,"image":...,"conf":...,"user":...,"key-secret":ID,
//         "server":[{"host":...,"port":...}],"auth-client-required":["cephx"|"none"]}
//   --image-opts with the same keys (server.0.host=..., auth-client-required.0=...)
//
// In the pseudo-filename '\' escapes the next character (a ':', '/' or '@' in a name);
// KEY=VALUE pairs other than conf and id are librados settings (rados_conf_set).
#ifndef STRATA_DRIVERS_RBD_RBD_SPEC_H_
#define STRATA_DRIVERS_RBD_RBD_SPEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/blockdev_options.pb.h"

namespace strata::rbd {

struct RbdSpec {
  std::string pool;
  std::string ns;  // namespace
  std::string image;
  std::string snapshot;
  std::string conf;
  std::string user;
  std::vector<std::pair<std::string, std::string>> settings;  // for librados
  std::string key_secret;  // a secret's id (block/secrets.h): the cephx key
  std::vector<std::pair<std::string, std::string>> servers;  // monitors: host, port
  std::vector<std::string> auth_client_required;  // "cephx" / "none"
  bool from_filename = false;
};

// Parses "rbd:...". Errors in QEMU's words ("Pool name is required").
absl::StatusOr<RbdSpec> ParseRbdFilename(absl::string_view filename);

// The spec the node's options give (the pseudo-filename when there is one).
absl::StatusOr<RbdSpec> RbdSpecFromOptions(const proto::RbdOptions& options);

// librados' mon_host for `servers`: "HOST:PORT;[V6HOST]:PORT", or "" when none.
std::string MonHost(const RbdSpec& spec);

// The node's name as QEMU shows it: json:{...} with QEMU's member order (server entries
// flattened as server.N.host/port; key-secret and auth-client-required are not part of it).
std::string RbdDisplayName(const RbdSpec& spec);

}  // namespace strata::rbd

#endif  // STRATA_DRIVERS_RBD_RBD_SPEC_H_
