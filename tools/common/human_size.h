// strata tools: numbers and sizes the way qemu-io and qemu-img read and print them.
#ifndef STRATA_TOOLS_COMMON_HUMAN_SIZE_H_
#define STRATA_TOOLS_COMMON_HUMAN_SIZE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace strata::tools {

// qemu-io's cvtstr: "4 KiB", "1.500 KiB", "512 bytes", "655.156871 bytes".
std::string QemuIoSizeString(double value);

// qemu-img's size_to_str: "0 B", "196 KiB", "1.26 MiB", "64 MiB" (%0.3g of the value in
// the largest unit that keeps it below 1000).
std::string QemuImgSizeString(uint64_t value);

// qemu-io's cvtnum: QEMU's size syntax (strata::ParseSize) bounded to int64. Returns
// nullopt on junk; sets *too_large when the value does not fit. Warns (through
// tools::WarnReport) on a hex number with a unit, as QEMU's parser does.
std::optional<int64_t> ParseQemuNumber(absl::string_view text, bool* too_large = nullptr);

// Warns, as qemu-img and qemu-io do while parsing a size, when `text` is a hex number
// followed by a unit ("0x10k"), whether or not the rest of it parses.
void WarnHexWithUnit(const std::string& text);

}  // namespace strata::tools

#endif  // STRATA_TOOLS_COMMON_HUMAN_SIZE_H_
