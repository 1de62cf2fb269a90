// strata: the names QEMU gives nodes (its bdrv_refresh_filename), shown by `info` as
// `image:` and in messages.
//
// A node has an exact name when opening that name alone would make the same node: a
// file's path, "null-co://", "blkdebug:CONF:IMAGE", "nbd://...", or a format node's
// file's exact name. Otherwise it is named by its options, "json:{...}": its driver, its
// file name and the driver's strong options (those that change what the data is, such as
// raw's offset and size; BlockDriver::strong_options) as they were given, and the same
// for each child but the backing file. A format node takes its file's exact name only if
// it was given no strong option and the file is a protocol node.
#ifndef STRATA_BLOCK_NODE_FILENAME_H_
#define STRATA_BLOCK_NODE_FILENAME_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "block/driver.h"
#include "block/node.h"
#include "google/protobuf/struct.pb.h"
#include "proto/blockdev_options.pb.h"

namespace strata {

// The members of a node's json:{...} name found in `tree`, the options of one node as
// given (children as nested objects or dotted keys): "driver", "filename" and the
// driver's strong options, flattened to dotted keys ("inject-error.0.event"), each with
// its value as QEMU prints it (an empty object or list, or null, kept as such).
std::vector<std::pair<std::string, std::string>> NamingOptionsOfTree(
    const google::protobuf::Struct& tree, const BlockDriver& driver);

// Whether `options` gave one of its driver's strong options (any value, null too) other
// than those in `except`: a driver that names its own nodes ("null-co://",
// "blkdebug:CONF:IMAGE") names them so only when this is false.
bool GivenStrongOptions(const proto::BlockdevOptions& options,
                        const std::vector<absl::string_view>& except = {});

// Names `node` once its driver has opened it (its children are named already): keeps a
// name the driver gave it, else gives it its file's exact name or json:{...} as above;
// records its options for its parent's json:{...} (BlockDriverState::full_options).
void NameOpenedNode(BlockDriverState& node, const proto::BlockdevOptions& options);

// The directory that names relative to `node` are taken from (QEMU's bdrv_dirname): its
// primary child's; for a node without one, its exact name up to the last '/' ("" when it
// has none). Fails where the driver refuses (CheckHasBaseDirectory) and for a node that
// has no exact name (json:{...}) and no primary child.
absl::StatusOr<std::string> BaseDirectory(const BlockDriverState& node);

// `backing`, a backing file name stored in `node`'s image, as it is opened (QEMU's full
// backing filename): absolute names and protocol names (json:, nbd://, rbd:) as they
// are, others joined to BaseDirectory(node).
absl::StatusOr<std::string> FullBackingFilename(const BlockDriverState& node,
                                                const std::string& backing);

}  // namespace strata

#endif  // STRATA_BLOCK_NODE_FILENAME_H_
