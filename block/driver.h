// strata: BlockDriver, the stateless plugin descriptor that drivers register by name.
//
// A driver says what it is (format / protocol / filter), scores headers for probing,
// opens instances (building its children through the OpenContext) and creates images.
// Nothing in block/ names a concrete driver: drivers join the registry from their own
// file (registry.h, STRATA_REGISTER_DRIVER).
#ifndef STRATA_BLOCK_DRIVER_H_
#define STRATA_BLOCK_DRIVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "block/cache_mode.h"
#include "strata/types.h"
#include "block/driver_instance.h"
#include "block/permissions.h"
#include "proto/blockdev_options.pb.h"

namespace strata {

class BdrvChild;
class BlockDriverState;


// The role of a child edge (QEMU BdrvChildRole, simplified).
enum class ChildRole { kFile, kBacking, kFiltered };

// Flags that travel down the graph when it is opened.
struct OpenFlags {
  bool read_only = false;
  CacheMode cache;
  // Never take or check image locks (QEMU -U / force-share keeps perms but shares all).
  bool force_share = false;
  // Do not open backing files (qemu-img create/info -u, rebase -u).
  bool no_backing = false;
  // QEMU BDRV_O_NO_IO: opened to read metadata only (qemu-img info); format drivers skip
  // children only data needs (a qcow2 external data file).
  bool no_io = false;
  // Opened for a consistency check: corrupt images may be opened, no automatic repair.
  bool check_mode = false;
  // QEMU discard=unmap: pass discards down. Default for qemu-io.
  bool discard_unmap = true;
  // Canonical paths of the images above the one being opened in its backing chain, so a
  // chain that loops back is refused instead of opened forever.
  std::vector<std::string> images_above;
  // The format of this node was guessed by probing and came out raw (set by OpenImage for
  // the node it probed only). The raw driver then refuses writes that would make the
  // first sector probe as another format, as QEMU does.
  bool format_probed = false;
  // QEMU snapshot=on / qemu-io -s: writes go to a temporary qcow2 overlay that is deleted
  // at close; the image itself is opened read-only and never written.
  bool snapshot = false;
  // QEMU's aio option for file nodes ("threads", "native", "io_uring"; empty: default),
  // as -i/-k set it. The engine itself is the loop's (aio::IoContext): a file node only
  // checks the value, and that native comes with cache.direct=on, as QEMU does.
  std::string aio;
};

// Everything a driver's Open needs: its node, options, flags, and a way to open children.
class OpenContext {
 public:
  virtual ~OpenContext() = default;
  virtual BlockDriverState& node() = 0;
  virtual const proto::BlockdevOptions& options() = 0;
  virtual const OpenFlags& flags() = 0;
  // What the parent needs from this node (protocol drivers turn this into locks).
  virtual const PermissionSet& permissions() = 0;
  // Opens `ref` as child `name` of this node with `role` and attaches it. `perms` is what
  // this node needs from the child. `flags` usually derives from flags().
  virtual absl::StatusOr<BdrvChild*> OpenChild(absl::string_view name, ChildRole role,
                                               const proto::BlockdevRef& ref,
                                               const PermissionSet& perms,
                                               const OpenFlags& flags) = 0;
};



// What `qemu-img measure` asks: the size of a new image with `options` (-o), for a virtual
// size or for the contents of an open image.
struct MeasureRequest {
  uint64_t size_bytes = 0;  // used when `input` is null
  std::map<std::string, std::string> options;
  BlockDriverState* input = nullptr;
};

class BlockDriver {
 public:
  virtual ~BlockDriver() = default;

  virtual absl::string_view name() const = 0;
  virtual DriverKind kind() const = 0;

  // Score in [0, 100] of how sure the driver is that `header` (the first bytes of the
  // file, possibly fewer than asked) is one of its images. 0 = not mine.
  virtual int Probe(absl::Span<const uint8_t> header, absl::string_view filename) const {
    return 0;
  }
  // Filename prefix that selects this protocol ("blkdebug" for "blkdebug:..."), or empty.
  virtual absl::string_view protocol_prefix() const { return {}; }
  // Whether "PROTOCOL:..." filenames are this driver's (a driver with several URL
  // schemes, such as nbd, nbd+tcp and nbd+unix, overrides it).
  virtual bool HandlesProtocol(absl::string_view protocol) const {
    return !protocol_prefix().empty() && protocol == protocol_prefix();
  }

  // What an open refuses before it reads a node's other options (QEMU opens the children
  // first, then runs the driver's own open, then refuses leftover options): whether a
  // node needs a non-empty string `filename` (protocols on files), and the child it
  // cannot open without ("file", "image"; empty: none). The options normaliser asks
  // both; a node given a file name (or x-filename) names its children itself.
  virtual bool requires_filename() const { return false; }
  virtual absl::string_view required_child() const { return {}; }
  // QEMU's strong runtime options: those that change what the node's data is, so that a
  // node given one is named by its options (json:{...}, block/node_filename.h) and not
  // by its file. A name ending in '.' covers every key under it ("inject-error.").
  virtual std::vector<absl::string_view> strong_options() const { return {}; }
  // Whether the driver's images can have a backing file (QEMU's supports_backing): such a
  // node with none reads the ranges it does not allocate as zeroes; other nodes (raw over
  // a null node) may have ranges that are neither data nor zero.
  virtual bool supports_backing() const { return false; }
  // Whether names relative to a node of this driver (a backing file name stored in the
  // image above it) may be resolved against its name (BaseDirectory in
  // node_filename.h); an error says why not (an NBD export has no directory).
  virtual absl::Status CheckHasBaseDirectory() const { return absl::OkStatus(); }
  // Whether QEMU opens nodes of this driver as protocol nodes (its bdrv_file_open): the
  // protocols, and blkdebug, a filter named by a "blkdebug:" file name. Its messages call
  // such a driver a protocol.
  bool opens_as_protocol() const {
    return kind() == DriverKind::kProtocol || !protocol_prefix().empty();
  }
  // Opens an instance on ctx.node(). Children are opened through ctx.OpenChild.
  virtual absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const = 0;

  // Create options, in the order `Formatting ...` prints them.
  virtual std::vector<CreateOptionSpec> create_options() const { return {}; }
  // Options `amend` can change on an existing image; none = amend unsupported.
  virtual std::vector<CreateOptionSpec> amend_options() const { return {}; }
  // Whether option `key` (relative to a node of this driver, e.g. "cache.direct") may take
  // a new value when the node is reopened (QEMU's mutable options; qemu-io reopen -o).
  // Default: the options every node can change.
  virtual bool CanChangeAtReopen(absl::string_view key) const;
  // Whether its nodes take writes with kReqWriteCompressed (qemu-img convert -c).
  virtual bool supports_compressed_writes() const { return false; }
  // Creates an image. Default: ENOTSUP ("Driver does not support image creation").
  virtual absl::Status Create(const CreateRequest& request) const;
  // Size estimate for a new image (qemu-img measure). Default: ENOTSUP.
  virtual absl::StatusOr<MeasureResult> Measure(const MeasureRequest& request) const;
};

}  // namespace strata

#endif  // STRATA_BLOCK_DRIVER_H_
