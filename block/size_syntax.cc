// The size syntax of QEMU's tools (strata/options.h: ParseSize, ParseSizeDetailed).
//
// Written by hand rather than with strtod: QEMU's grammar is narrower than a C float (no
// exponent, no leading '.', no trailing blanks) and wider than an integer (0x hex, a
// decimal fraction that a unit scales). The rules below were read off qemu-img 7.2 itself.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "strata/errors.h"
#include "strata/options.h"

namespace strata {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};

// Reads digits of `base` from text[*pos]; ERANGE past 2^64 - 1. Returns how many were read.
absl::StatusOr<size_t> ReadDigits(absl::string_view text, size_t* pos, int base,
                                  uint64_t* value) {
  size_t count = 0;
  *value = 0;
  for (; *pos < text.size(); ++*pos, ++count) {
    const char c = text[*pos];
    int digit;
    if (absl::ascii_isdigit(c)) {
      digit = c - '0';
    } else if (base == 16 && absl::ascii_isxdigit(c)) {
      digit = absl::ascii_tolower(c) - 'a' + 10;
    } else {
      break;
    }
    if (*value > (kMax - digit) / base) return ErrnoError(ERANGE, "Size out of range");
    *value = *value * base + digit;
  }
  return count;
}

int UnitShift(char c) {
  switch (absl::ascii_tolower(c)) {
    case 'b': return 0;
    case 'k': return 10;
    case 'm': return 20;
    case 'g': return 30;
    case 't': return 40;
    case 'p': return 50;
    case 'e': return 60;
    default: return -1;
  }
}

}  // namespace

absl::StatusOr<ParsedSize> ParseSizeDetailed(absl::string_view text) {
  const absl::Status invalid = ErrnoError(EINVAL, "Invalid size");
  size_t pos = 0;
  while (pos < text.size() && absl::ascii_isspace(text[pos])) ++pos;
  if (pos < text.size() && text[pos] == '+') ++pos;  // one plus sign, as strtoull takes
  ParsedSize out;
  bool hex = false;
  if (text.size() - pos > 2 && text[pos] == '0' && absl::ascii_tolower(text[pos + 1]) == 'x' &&
      absl::ascii_isxdigit(text[pos + 2])) {
    hex = true;
    pos += 2;
  }
  uint64_t whole = 0;
  STRATA_ASSIGN_OR_RETURN(size_t digits, ReadDigits(text, &pos, hex ? 16 : 10, &whole));
  if (digits == 0) return invalid;
  // A fraction: '.' and decimal digits (none is fine: "1.k"). As in qemu-img, digits after
  // the 19th do not count ("1.00000000000000000001" is 1 byte), and a fraction that a
  // double rounds up to 1 ("0.99999999999999999") counts as none.
  double fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    if (hex) return invalid;
    const size_t start = ++pos;
    while (pos < text.size() && absl::ascii_isdigit(text[pos])) ++pos;
    constexpr size_t kFractionDigits = 19;
    const std::string digits_text(text.substr(start, std::min(pos - start, kFractionDigits)));
    fraction = std::strtod(("0." + digits_text).c_str(), nullptr);
    if (fraction >= 1.0) fraction = 0;
  }
  int shift = 0;
  bool shift_given = false;
  if (pos < text.size() && UnitShift(text[pos]) >= 0) {
    shift_given = true;
    shift = UnitShift(text[pos]);
    ++pos;
  }
  if (pos != text.size()) return invalid;
  out.hex_with_suffix = hex && shift_given;
  // A fraction of a byte is not a size.
  if (shift == 0 && fraction != 0) return invalid;
  if (shift > 0 && whole > (kMax >> shift)) return ErrnoError(ERANGE, "Size out of range");
  const uint64_t scaled = whole << shift;
  const uint64_t part = static_cast<uint64_t>(std::round(std::ldexp(fraction, shift)));
  if (part > kMax - scaled) return ErrnoError(ERANGE, "Size out of range");
  out.bytes = scaled + part;
  return out;
}

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  STRATA_ASSIGN_OR_RETURN(ParsedSize size, ParseSizeDetailed(text));
  return size.bytes;
}

}  // namespace strata
