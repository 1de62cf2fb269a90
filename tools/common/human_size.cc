// strata tools: QEMU number and size formats (see human_size.h).
#include "tools/common/human_size.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "strata/options.h"
#include "tools/common/program.h"

namespace strata::tools {

std::string QemuIoSizeString(double value) {
  static constexpr struct {
    double scale;
    const char* suffix;
  } kUnits[] = {{1152921504606846976.0, " EiB"}, {1125899906842624.0, " PiB"},
                {1099511627776.0, " TiB"},       {1073741824.0, " GiB"},
                {1048576.0, " MiB"},             {1024.0, " KiB"}};
  char buf[64];
  const char* suffix = " bytes";
  bool scaled = false;
  for (const auto& u : kUnits) {
    if (value >= u.scale) {
      value /= u.scale;
      suffix = u.suffix;
      scaled = true;
      break;
    }
  }
  std::snprintf(buf, sizeof(buf), scaled ? "%.3f" : "%f", value);
  std::string s(buf);
  size_t trim = s.find(".000");
  if (trim != std::string::npos) s.resize(trim);
  return s + suffix;
}

std::string QemuImgSizeString(uint64_t value) {
  static constexpr const char* kSuffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int i = 0;
  double v = static_cast<double>(value);
  // Switch units at 1000 * 1024^k so the integer part stays below 1000.
  while (i < 6 && v >= 1000.0) {
    v /= 1024.0;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%0.3g %s", v, kSuffixes[i]);
  return buf;
}

void WarnHexWithUnit(const std::string& text) {
  // Blanks, an optional '+', "0x", hex digits, then a unit letter: qemu-img warns as soon
  // as it meets the unit, whether or not the rest parses.
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '+') ++i;
  if (text.compare(i, 2, "0x") != 0 && text.compare(i, 2, "0X") != 0) return;
  i += 2;
  const size_t digits = i;
  while (i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == digits || i == text.size()) return;
  if (std::string("bBkKmMgGtTpPeE").find(text[i]) == std::string::npos) return;
  tools::WarnReport(
      absl::StrCat("Using a multiplier suffix on hex numbers is deprecated: ", text));
}

std::optional<int64_t> ParseQemuNumber(absl::string_view text, bool* too_large) {
  if (too_large) *too_large = false;
  WarnHexWithUnit(std::string(text));
  absl::StatusOr<ParsedSize> size = ParseSizeDetailed(text);
  if (!size.ok()) {
    if (too_large) *too_large = ErrnoOf(size.status()) == ERANGE;
    return std::nullopt;
  }
  if (size->bytes > static_cast<uint64_t>(INT64_MAX)) {
    if (too_large) *too_large = true;
    return std::nullopt;
  }
  return static_cast<int64_t>(size->bytes);
}

}  // namespace strata::tools
