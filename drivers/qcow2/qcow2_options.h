// strata qcow2: parsers for option values that create and amend share, with QEMU's
// error messages.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_OPTIONS_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace strata::qcow2 {

// "on"/"off" (and true/false, yes/no) for the option `name`.
absl::StatusOr<bool> ParseOnOff(const std::string& value, const std::string& name);
// refcount_bits (a power of two up to 64) as its refcount_order (log2).
absl::StatusOr<uint32_t> ParseRefcountOrder(const std::string& value);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_OPTIONS_H_
