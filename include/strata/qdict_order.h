// strata/qdict_order.h (public API): the order in which QEMU 7.2 prints the members of a QDict (its json:{...} node
// names and `--output=json`), so that strata's names and JSON match byte for byte.
//
//   std::string line = strata::QdictOneLine({{"driver", "\"file\""}, {"filename", "\"a\""}});
//
// QEMU stores object members in a 512-bucket hash table and prints buckets in ascending
// order, the most recently inserted member of a bucket first. The hash of a key of length
// n is 1103515243 * (0x238F13AF * n + sum_i byte_i << ((i * 5) % 24)) + 12345 (32-bit).
#ifndef STRATA_STRATA_QDICT_ORDER_H_
#define STRATA_STRATA_QDICT_ORDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace strata {

// The bucket QEMU's QDict puts `key` in.
uint32_t QdictBucket(absl::string_view key);

// Positions of `keys` (given in insertion order) in the order QEMU prints them.
std::vector<size_t> QdictPrintOrder(const std::vector<std::string>& keys);

// `s` as a JSON string literal the way QEMU prints one: \" \\ \b \f \n \r \t named;
// every other code point below U+0020 or from U+007F up as \uXXXX (upper-case hex, a
// surrogate pair above U+FFFF); the bytes C0 80 (QEMU's NUL) as \u0000; each invalid
// UTF-8 sequence (a lead byte and the continuation bytes that follow it, up to its
// length) and each noncharacter as \uFFFD.
std::string QemuJsonString(absl::string_view s);

// `{"k": v, ...}` on one line, as QEMU's json: names: members given in insertion order as
// (key, already encoded JSON value).
std::string QdictOneLine(const std::vector<std::pair<std::string, std::string>>& members);

}  // namespace strata

#endif  // STRATA_STRATA_QDICT_ORDER_H_
