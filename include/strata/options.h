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

// A size with an optional suffix (k, M, G, T, P, E; binary), as qemu-img reads one.
// EINVAL for anything else, ERANGE above 2^63 - 1.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// key=value lists ("a.b=1,c=x", ",," for a comma; QEMU's keyval syntax), merged in order
// (a later key wins), as one JSON object with nested objects for dotted keys.
absl::StatusOr<std::string> KeyvalsToJson(const std::vector<std::string>& keyvals);

// The top-level keys of a key=value list ("a.b=1,c=2" -> a, c); its parse error otherwise.
absl::StatusOr<std::vector<std::string>> KeyvalTopLevelKeys(absl::string_view keyval);

}  // namespace strata

#endif  // STRATA_STRATA_OPTIONS_H_
