// strata: the driver registry. Drivers join it from their own file with
// STRATA_REGISTER_DRIVER (their cc_library must be alwayslink = True); block/ never names
// a concrete driver.
#ifndef STRATA_BLOCK_REGISTRY_H_
#define STRATA_BLOCK_REGISTRY_H_

#include <memory>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "block/driver.h"

namespace strata {

// The protocol a filename names, QEMU's rule: the text before the first ':' when no '/'
// comes before it ("nbd+unix" in "nbd+unix:///x", "" in "./a:b" or "a.img").
absl::string_view ProtocolOf(absl::string_view filename);

// Name -> driver. Registration happens during static initialisation; lookups afterwards
// are safe from any thread.
class DriverRegistry {
 public:
  static DriverRegistry& Global();

  void Register(std::unique_ptr<BlockDriver> driver);
  // The driver called `name`, or nullptr.
  const BlockDriver* Find(absl::string_view name) const;
  // The protocol driver for `filename`'s protocol (ProtocolOf), or nullptr.
  const BlockDriver* FindByPrefix(absl::string_view filename) const;
  // The format driver with the highest probe score for `header`, or nullptr if none
  // scores above 0.
  const BlockDriver* ProbeFormat(absl::Span<const uint8_t> header,
                                 absl::string_view filename) const;
  std::vector<const BlockDriver*> drivers() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<BlockDriver>> drivers_ ABSL_GUARDED_BY(mu_);
};

// Registers a driver at static-initialisation time.
struct DriverRegistrar {
  explicit DriverRegistrar(std::unique_ptr<BlockDriver> driver) {
    DriverRegistry::Global().Register(std::move(driver));
  }
};

}  // namespace strata

#define STRATA_REGISTER_DRIVER(Class) \
  static ::strata::DriverRegistrar strata_registrar_##Class(std::make_unique<Class>())

#endif  // STRATA_BLOCK_REGISTRY_H_
