// strata: QEMU's key=value,... option strings (--image-opts, qemu-io open -o).
#ifndef STRATA_BLOCK_KEYVAL_H_
#define STRATA_BLOCK_KEYVAL_H_

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"

namespace strata {

// Parses `text` (grammar in keyval.cc) into a tree: dotted keys become nested objects,
// every value is a string. "driver=raw,file.filename=a.img" ->
// {"driver": "raw", "file": {"filename": "a.img"}}.
// A bare key is QEMU's deprecated short-form boolean: "key" is key=on, "nokey" key=off;
// with `warn_short_forms` each one sends QEMU's deprecation warning to the diagnostic
// sink (callers pass it for the one parse of what the user typed, not for re-parses).
absl::StatusOr<google::protobuf::Struct> ParseKeyval(absl::string_view text,
                                                     bool warn_short_forms = false);

}  // namespace strata

#endif  // STRATA_BLOCK_KEYVAL_H_
