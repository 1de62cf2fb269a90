// strata: one UTF-8 decoder for the places that judge strings (QEMU's JSON parser and
// printer, protobuf's strict rule).
#ifndef STRATA_BLOCK_UTF8_H_
#define STRATA_BLOCK_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace strata {

enum class Utf8Rules {
  // Shortest form, no surrogates, at most U+10FFFF: what protobuf accepts.
  kStrict,
  // QEMU's: kStrict, plus the two-byte form of U+0000 (C0 80, its NUL), minus the
  // noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF).
  kQemu,
};

// Length of the well-formed sequence at s[i] under `rules`, or 0 if there is none there
// (i < s.size()). *cp receives its code point.
size_t DecodeUtf8(absl::string_view s, size_t i, Utf8Rules rules, uint32_t* cp);

// Appends the shortest encoding of `cp` (at most U+10FFFF) to `out`.
void AppendUtf8(uint32_t cp, std::string* out);

// U+FDD0..U+FDEF and the last two code points of every plane, which QEMU refuses.
inline bool IsNoncharacter(uint32_t cp) {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

}  // namespace strata

#endif  // STRATA_BLOCK_UTF8_H_
