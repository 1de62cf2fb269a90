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
  absl::string_view protocol = ProtocolOf(filename);
  if (protocol.empty()) return nullptr;
  absl::MutexLock lock(&mu_);
  for (const auto& d : drivers_) {
    if (d->HandlesProtocol(protocol)) return d.get();
  }
  return nullptr;
}

absl::string_view ProtocolOf(absl::string_view filename) {
  const size_t stop = filename.find_first_of(":/");
  if (stop == absl::string_view::npos || stop == 0 || filename[stop] != ':') return {};
  return filename.substr(0, stop);
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
