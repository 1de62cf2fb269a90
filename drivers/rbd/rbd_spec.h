// strata rbd driver: which image, in which pool and cluster, from QEMU's forms:
//
//   rbd:POOL[/NAMESPACE]/IMAGE[@SNAPSHOT][:conf=PATH][:id=USER][:KEY=VALUE...]
//   json:{"driver":"rbd","pool":...,"image":...,"conf":...,"user":...} / --image-opts
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
  bool from_filename = false;
};

// Parses "rbd:...". Errors in QEMU's words ("Pool name is required").
absl::StatusOr<RbdSpec> ParseRbdFilename(absl::string_view filename);

// The spec the node's options give (the pseudo-filename when there is one).
absl::StatusOr<RbdSpec> RbdSpecFromOptions(const proto::RbdOptions& options);

// The node's name as QEMU shows it: json:{...} with QEMU's member order.
std::string RbdDisplayName(const RbdSpec& spec);

}  // namespace strata::rbd

#endif  // STRATA_DRIVERS_RBD_RBD_SPEC_H_
