// strata: BlockDriver defaults (see driver.h).
#include "block/driver.h"

#include <cerrno>

#include "block/status.h"

namespace strata {

bool BlockDriver::CanChangeAtReopen(absl::string_view key) const {
  return key == "cache.direct" || key == "cache.no-flush" || key == "detect-zeroes" ||
         key == "discard" || key == "read-only" || key == "auto-read-only";
}

absl::Status BlockDriver::Create(const CreateRequest&) const {
  return ErrnoError(ENOTSUP, "Driver does not support image creation");
}

absl::StatusOr<MeasureResult> BlockDriver::Measure(const MeasureRequest&) const {
  return ErrnoError(ENOTSUP, "Format driver does not support measure");
}

}  // namespace strata
