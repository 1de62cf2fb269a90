// strata: driver registry (see registry.h).
#include "block/registry.h"

namespace strata {

DriverRegistry& DriverRegistry::Global() {
  static DriverRegistry* registry = [] {
    static DriverRegistry r;
    return &r;
  }();
  return *registry;
}

void DriverRegistry::Register(std::unique_ptr<BlockDriver> driver) {
  absl::MutexLock lock(&mu_);
  drivers_.push_back(std::move(driver));
}

const BlockDriver* DriverRegistry::Find(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  for (const auto& d : drivers_) {
    if (d->name() == name) return d.get();
  }
  return nullptr;
}

const BlockDriver* DriverRegistry::FindByPrefix(absl::string_view filename) const {
  absl::MutexLock lock(&mu_);
  for (const auto& d : drivers_) {
    absl::string_view prefix = d->protocol_prefix();
    if (!prefix.empty() && filename.size() > prefix.size() &&
        filename.substr(0, prefix.size()) == prefix && filename[prefix.size()] == ':') {
      return d.get();
    }
  }
  return nullptr;
}

const BlockDriver* DriverRegistry::ProbeFormat(absl::Span<const uint8_t> header,
                                               absl::string_view filename) const {
  absl::MutexLock lock(&mu_);
  const BlockDriver* best = nullptr;
  int best_score = 0;
  for (const auto& d : drivers_) {
    if (d->kind() != DriverKind::kFormat) continue;
    int score = d->Probe(header, filename);
    if (score > best_score) {
      best = d.get();
      best_score = score;
    }
  }
  return best;
}

std::vector<const BlockDriver*> DriverRegistry::drivers() const {
  absl::MutexLock lock(&mu_);
  std::vector<const BlockDriver*> out;
  for (const auto& d : drivers_) out.push_back(d.get());
  return out;
}

}  // namespace strata
