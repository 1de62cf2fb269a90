// strata nbd: TLS credentials by id (see tls_registry.h).
#include "nbd/tls_registry.h"

#include <cerrno>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "block/status.h"

namespace strata::nbd {

namespace {

// One defined object: client credentials, or the mark of a server-side one.
struct Entry {
  std::shared_ptr<TlsClientCredentials> client;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
};

Registry& Global() {
  static Registry registry;
  return registry;
}

}  // namespace

void RegisterTlsClientCredentials(const std::string& id,
                                  std::shared_ptr<TlsClientCredentials> credentials) {
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  r.entries[id] = Entry{std::move(credentials)};
}

void RegisterTlsServerCredentialsId(const std::string& id) {
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  r.entries[id] = Entry{};
}

absl::StatusOr<std::shared_ptr<TlsClientCredentials>> FindTlsClientCredentials(
    const std::string& id) {
  Registry& r = Global();
  absl::MutexLock lock(&r.mu);
  auto it = r.entries.find(id);
  if (it == r.entries.end()) {
    return ErrnoError(EINVAL, absl::StrCat("No TLS credentials with id '", id, "'"));
  }
  if (it->second.client == nullptr) {
    return ErrnoError(EINVAL, "Expecting TLS credentials with a client endpoint");
  }
  return it->second.client;
}

}  // namespace strata::nbd
