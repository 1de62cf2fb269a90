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
absl::StatusOr<google::protobuf::Struct> ParseKeyval(absl::string_view text);

}  // namespace strata

#endif  // STRATA_BLOCK_KEYVAL_H_
