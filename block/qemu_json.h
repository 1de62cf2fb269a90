// strata: the JSON dialect of QEMU's `json:` filenames, parsed with QEMU's errors.
//
// Why not a JSON library: QEMU's dialect is not JSON. It takes single-quoted strings and
// the \' escape, refuses what strict libraries refuse in different words, and what a
// lenient library (protobuf's, which takes unquoted keys) accepts it may refuse. A user
// sees its messages ("JSON parse error, missing : in object pair"), so they are part of
// the interface. The rules here were read off qemu-img 7.2 by trying inputs.
//
//   absl::StatusOr<google::protobuf::Value> v = ParseQemuJson(R"({'driver': "raw"})");
//
// Tokens: { } [ ] : , ; strings in "..." or '...' (bytes 0x20..0xFD, a backslash taking
// the next byte); numbers as in JSON; keywords [a-z]+ (true, false, null). Whitespace is
// space, tab, CR and LF. Nesting is limited to 1024 levels. Numbers become doubles. A NUL
// (\u0000, or the bytes C0 80) becomes the bytes C0 80, as in QEMU, whose strings cannot
// hold a NUL (block/proto_bytes.h carries them through protobuf). Noncharacters
// (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) are refused, raw or escaped.
#ifndef STRATA_BLOCK_QEMU_JSON_H_
#define STRATA_BLOCK_QEMU_JSON_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace strata {

// Parses exactly one JSON value from `text`. On failure, EINVAL with QEMU's message:
// "Expecting a JSON value" (nothing there), "Expecting at most one JSON value" (anything
// after the first value), "JSON nesting depth limit exceeded", or "JSON parse error, ..."
// (a stray token, premature EOI, a missing separator, a bad escape, invalid UTF-8, ...).
absl::StatusOr<google::protobuf::Value> ParseQemuJson(absl::string_view text);

}  // namespace strata

#endif  // STRATA_BLOCK_QEMU_JSON_H_
