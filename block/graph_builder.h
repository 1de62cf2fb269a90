// strata: the open path. Builds a graph of nodes from options or from a filename.
#ifndef STRATA_BLOCK_GRAPH_BUILDER_H_
#define STRATA_BLOCK_GRAPH_BUILDER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "block/driver.h"
#include "block/node.h"
#include "google/protobuf/struct.pb.h"
#include "proto/blockdev_options.pb.h"

namespace strata {

// Opens the graph `options` describes. The root node gets `perms` from its (absent)
// parent. Errors carry the driver's message ("Could not open 'x': No such file...").
absl::StatusOr<std::unique_ptr<BlockDriverState>> OpenGraph(
    const proto::BlockdevOptions& options, const OpenFlags& flags,
    const PermissionSet& perms);

// An image as the tools name it.
struct ImageOpenRequest {
  // A filename ("a.qcow2", "json:{...}", "blkdebug:conf:img"), or with image_opts a
  // key=value string ("driver=raw,file.filename=a.img").
  std::string filename;
  bool image_opts = false;
  // -f: format driver name; empty = probe the header.
  std::string format;
  // Extra options laid over the parsed filename (qemu-io `open -o`).
  google::protobuf::Struct overlay;
  OpenFlags flags;
};

struct OpenedImage {
  std::unique_ptr<BlockDriverState> root;
  // The format was probed and guessed raw (tools warn about this when writing).
  bool probed_raw = false;
};

// Resolves `request` into options (probing the format if needed) and opens the graph.
absl::StatusOr<OpenedImage> OpenImage(const ImageOpenRequest& request);

// The name QEMU's probed-raw warning gives `raw_node`: its file's, as the graph names it
// ("nbd+unix://?socket=S" for a URL, json:{...} for rbd).
std::string ProbedRawName(BlockDriverState& raw_node);

// Resolves a backing file name as an image names it: relative to the directory of the
// image (unless absolute or a protocol filename such as "json:..." or "nbd:...").
// Whether a backing file name is opened as it is, whatever image names it: empty,
// absolute, or a protocol name (rbd:..., nbd://..., json:...).
bool BackingNameStandsAlone(const std::string& backing);
std::string ResolveBackingPath(const std::string& image, const std::string& backing);

// What identifies an image when following chains: CanonicalPath of the file it lives in;
// for json:{...} options, of the innermost "filename" they name (so a json backing file
// that names the image itself is seen as a loop).
std::string ImageIdentity(const std::string& name);

// `path` with symlinks and relative parts resolved; `path` itself when it does not resolve
// (a missing file, a protocol filename). Identifies images when following chains.
std::string CanonicalPath(const std::string& path);

// The options a plain filename stands for: a prefixed protocol, or driver=file.
absl::StatusOr<google::protobuf::Struct> ProtocolTreeForFilename(const std::string& filename);

}  // namespace strata

#endif  // STRATA_BLOCK_GRAPH_BUILDER_H_
