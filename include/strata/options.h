// strata/options.h (public API): the option syntaxes QEMU's tools accept.
//
//   absl::StatusOr<uint64_t> size = strata::ParseSize("64M");            // 67108864
//   absl::StatusOr<std::string> json =
//       strata::KeyvalsToJson({"driver=qcow2,file.filename=a.qcow2"});  // {"driver":...}
//
// Pure functions: thread-safe.
#ifndef STRATA_STRATA_OPTIONS_H_
#define STRATA_STRATA_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace strata {

// A size as qemu-img reads one: blanks and a '+' allowed in front, decimal or 0x hex, an
// optional decimal fraction, an
// unit (b, k, M, G, T, P, E; binary, any case): "64M", "1.5k", "0x10", " +512".
// A fraction needs a unit above bytes and is rounded to whole bytes. EINVAL for anything
// else, ERANGE at 2^64 and above. Callers bound the value (qemu-img: 2^63 - 1).
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// ParseSize, telling also whether a hex number carried a unit ("0x10k"), a form qemu-img
// accepts with a deprecation warning.
struct ParsedSize {
  uint64_t bytes = 0;
  bool hex_with_suffix = false;
};
absl::StatusOr<ParsedSize> ParseSizeDetailed(absl::string_view text);

// key=value lists ("a.b=1,c=x", ",," for a comma; QEMU's keyval syntax), merged in order
// (a later key wins), as one JSON object with nested objects for dotted keys.
// With `warn_short_forms`, QEMU's deprecation warning for each short-form boolean ("key"
// for key=on, "nokey" for key=off) goes to the diagnostic sink.
absl::StatusOr<std::string> KeyvalsToJson(const std::vector<std::string>& keyvals,
                                          bool warn_short_forms = false);

// The leaves of a key=value list as dotted keys with their values, sorted by key
// ("c=2,a.b=1" -> {a.b, 1}, {c, 2}); its parse error otherwise.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KeyvalLeaves(
    absl::string_view keyval, bool warn_short_forms = false);

}  // namespace strata

#endif  // STRATA_STRATA_OPTIONS_H_
