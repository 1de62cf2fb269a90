// strata qcow2: shared option parsers (see qcow2_options.h).
#include "drivers/qcow2/qcow2_options.h"

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "block/status.h"

namespace strata::qcow2 {

absl::StatusOr<bool> ParseOnOff(const std::string& value, const std::string& name) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  return ErrnoError(EINVAL, absl::StrCat("Parameter '", name, "' expects 'on' or 'off'"));
}

absl::StatusOr<uint32_t> ParseRefcountOrder(const std::string& value) {
  uint64_t bits;
  if (!absl::SimpleAtoi(value, &bits) || bits == 0 || bits > 64 || (bits & (bits - 1)) != 0) {
    return ErrnoError(EINVAL, "Refcount width must be a power of two and may not exceed 64 bits");
  }
  return static_cast<uint32_t>(__builtin_ctzll(bits));
}

}  // namespace strata::qcow2
