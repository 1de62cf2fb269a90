// strata tools: QEMU number and size formats (see human_size.h).
#include "tools/common/human_size.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

std::optional<int64_t> ParseQemuNumber(absl::string_view text, bool* too_large) {
  if (too_large) *too_large = false;
  std::string s(text);
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  // Like QEMU's qemu_strtosz: hex only without a fractional part; decimals may have one.
  bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  double value;
  if (hex) {
    unsigned long long v = std::strtoull(s.c_str(), &end, 16);
    if (errno == ERANGE) {
      if (too_large) *too_large = true;
      return std::nullopt;
    }
    value = static_cast<double>(v);
  } else {
    if (!std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
    value = std::strtod(s.c_str(), &end);
  }
  if (end == s.c_str()) return std::nullopt;
  int shift = 0;
  if (*end != '\0') {
    switch (std::tolower(static_cast<unsigned char>(*end))) {
      case 'b': shift = 0; break;
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      case 'p': shift = 50; break;
      case 'e': shift = 60; break;
      default: return std::nullopt;
    }
    ++end;
    if (*end != '\0') return std::nullopt;
  }
  double bytes = std::ldexp(value, shift);
  if (bytes != std::floor(bytes)) return std::nullopt;
  if (bytes >= 9223372036854775808.0) {
    if (too_large) *too_large = true;
    return std::nullopt;
  }
  return static_cast<int64_t>(bytes);
}

}  // namespace strata::tools
