// strata: QEMU-shaped option trees (json:{...}, key=value) -> proto::BlockdevOptions.
//
// The pipeline, one step per function in options_json.cc: parse the source into a tree,
// split dotted keys, normalise hyphens to underscores, move driver-specific keys under the
// member named after the driver, turn child references into BlockdevRef, coerce string
// values by the field's type, then let protobuf's JSON parser build the message.
#ifndef STRATA_BLOCK_OPTIONS_JSON_H_
#define STRATA_BLOCK_OPTIONS_JSON_H_

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "strata/options.h"  // ParseSize, for the drivers that include this header
#include "google/protobuf/struct.pb.h"
#include "proto/blockdev_options.pb.h"

namespace strata {

class BlockDriver;

// Parses a JSON object text (the part after "json:") in QEMU's dialect (qemu_json.h).
// Errors: "Could not parse the JSON options: ..." and, for a value that is not an
// object, "Invalid JSON object given".
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json);

// Converts a QEMU-shaped tree into options. Unknown keys fail with QEMU's sentence
// ("Block format 'raw' does not support the option 'bogus'"); an unknown driver with
// "Unknown driver 'x'"; a missing driver with "Parameter 'driver' is missing".
absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromTree(
    const google::protobuf::Struct& tree);

// Convenience: json text / keyval text -> options.
absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromJson(absl::string_view json);
absl::StatusOr<proto::BlockdevOptions> BlockdevOptionsFromKeyval(absl::string_view keyval);

// {"file.filename": x} -> {"file": {"filename": x}}, at every level, merging a dotted
// key into an object given for its prefix (QEMU flattens json: options, so both forms
// name the same option). Done before anything looks at a tree's children.
google::protobuf::Struct SplitDottedKeys(const google::protobuf::Struct& in);

// The dotted keys QEMU's flattening (qdict_flatten) makes of a non-empty object or list,
// relative to it; an empty object or list inside stays a key of its own.
std::vector<std::string> FlattenedOptionKeys(const google::protobuf::Value& v);

// QEMU's refusal of options a node of `driver` left unused (non-empty `keys`): the first
// of them in its dict's order, "Block format 'raw' does not support the option 'x'".
absl::Status UnsupportedOptionError(const BlockDriver& driver, std::vector<std::string> keys);

// Whether `key` names a child node (file, backing, image, data-file): a string there
// refers to an existing node, which cannot take options of its own.
bool IsChildOptionKey(absl::string_view key);
// QEMU's refusal of a child named by reference and given options too, at any level of a
// tree still holding dotted keys: {"file": "x", "file.filename": "y"}.
absl::Status CheckChildReferences(const google::protobuf::Struct& tree);
extern const char kReferenceWithOptions[];

// Copies every key of `overlay` into `base`, merging nested objects (overlay wins).
void MergeTree(const google::protobuf::Struct& overlay, google::protobuf::Struct* base);

// key=value lists parsed (ParseKeyval) and merged in order, a later key winning.
absl::StatusOr<google::protobuf::Struct> MergedKeyvals(const std::vector<std::string>& keyvals);

}  // namespace strata

#endif  // STRATA_BLOCK_OPTIONS_JSON_H_
