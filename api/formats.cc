// strata api: the driver registry as strata/formats.h describes it.
#include "strata/formats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "api/access.h"
#include "block/driver.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

absl::StatusOr<const BlockDriver*> Find(absl::string_view name) {
  const BlockDriver* driver = DriverRegistry::Global().Find(name);
  if (driver == nullptr) return ErrnoError(EINVAL, absl::StrCat("Unknown driver '", name, "'"));
  return driver;
}

}  // namespace

std::optional<DriverDescription> FindDriver(absl::string_view name) {
  const BlockDriver* driver = DriverRegistry::Global().Find(name);
  if (driver == nullptr) return std::nullopt;
  DriverDescription d;
  d.name = std::string(driver->name());
  d.kind = driver->kind();
  d.supports_compressed_writes = driver->supports_compressed_writes();
  d.create_options = driver->create_options();
  d.amend_options = driver->amend_options();
  return d;
}

std::vector<std::string> DriverNames() {
  std::vector<std::string> names;
  for (const BlockDriver* d : DriverRegistry::Global().drivers()) {
    names.emplace_back(d->name());
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status CreateImage(absl::string_view driver, const CreateRequest& request) {
  STRATA_ASSIGN_OR_RETURN(const BlockDriver* d, Find(driver));
  return d->Create(request);
}

absl::StatusOr<MeasureResult> MeasureImage(absl::string_view driver, const MeasureSpec& spec) {
  STRATA_ASSIGN_OR_RETURN(const BlockDriver* d, Find(driver));
  MeasureRequest request;
  request.size_bytes = spec.size_bytes;
  request.options = spec.options;
  request.input = ApiAccess::NodeOf(spec.input);
  return d->Measure(request);
}

}  // namespace strata
