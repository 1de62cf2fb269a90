// strata tools: QEMU's user-creatable objects (`--object TYPE,id=ID,key=value,...`) as
// qemu-img, qemu-io and qemu-nbd take them: tls-creds-x509, tls-creds-psk, authz-simple,
// authz-list-file, secret, iothread. Definitions are checked and loaded at once, in
// QEMU's order and words (a missing credentials file is reported when the object is
// defined). Secrets join the library's registry (block/secrets.h), where node options such
// as rbd's key-secret find them. TLS credentials with endpoint=client also join the process's registry
// (nbd/tls_registry.h), so an nbd node's `tls-creds=ID` finds them.
//
// Not thread-safe: the tools define objects while parsing their command line.
#ifndef STRATA_TOOLS_COMMON_OBJECTS_H_
#define STRATA_TOOLS_COMMON_OBJECTS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "strata/nbd.h"

namespace strata::tools {

// One defined object: its type, id and properties as given.
struct ObjectDef {
  std::string type;
  std::string id;
  std::map<std::string, std::string> props;
};

// A compiled authorization object: whether an identity (an x509 distinguished name or a
// PSK username) may connect.
struct Authz {
  bool simple = false;
  std::string identity;     // authz-simple
  bool default_allow = false;  // authz-list-file
  struct Rule {
    std::string match;
    bool allow = false;
    bool glob = false;
  };
  std::vector<Rule> rules;

  bool Allows(const std::string& who) const;
};

// Defines one object from its --object text. On failure prints QEMU's error and returns
// false; `help` lists the types and exits 0.
bool DefineObject(const std::string& text);

// The object `id`, or nullptr.
const ObjectDef* FindObject(const std::string& id);
const Authz* FindAuthz(const std::string& id);

// The TLS options an x509/psk object describes.
TlsCredsOptions TlsOptionsOf(const ObjectDef& def);

}  // namespace strata::tools

#endif  // STRATA_TOOLS_COMMON_OBJECTS_H_
