// strata: the open path (see graph_builder.h).
#include "block/graph_builder.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "block/keyval.h"
#include "block/node_filename.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"
#include "block/temporary_overlay.h"

namespace strata {
namespace {

// Bytes of the image header given to format probes.
constexpr uint64_t kProbeBytes = 2048;
// How deeply child nodes may nest in options (a backing chain given inline counts too).
constexpr int kMaxOptionDepth = 512;

OpenFlags FlagsFromOptions(const proto::BlockdevOptions& options, OpenFlags flags) {
  if (options.has_read_only()) flags.read_only = options.read_only();
  if (options.cache().has_direct()) flags.cache.direct = options.cache().direct();
  if (options.cache().has_no_flush()) flags.cache.no_flush = options.cache().no_flush();
  if (options.has_force_share()) flags.force_share = options.force_share();
  if (options.discard() == "unmap" || options.discard() == "on") flags.discard_unmap = true;
  if (options.discard() == "ignore" || options.discard() == "off") flags.discard_unmap = false;
  return flags;
}

// The OpenContext a driver sees while its node is being opened.
class BuilderContext : public OpenContext {
 public:
  BuilderContext(BlockDriverState& node, const proto::BlockdevOptions& options,
                 const OpenFlags& flags, const PermissionSet& perms)
      : node_(node), options_(options), flags_(flags), perms_(perms) {}

  BlockDriverState& node() override { return node_; }
  const proto::BlockdevOptions& options() override { return options_; }
  const OpenFlags& flags() override { return flags_; }
  const PermissionSet& permissions() override { return perms_; }

  absl::StatusOr<BdrvChild*> OpenChild(absl::string_view name, ChildRole role,
                                       const proto::BlockdevRef& ref,
                                       const PermissionSet& perms,
                                       const OpenFlags& flags) override {
    std::unique_ptr<BlockDriverState> child;
    switch (ref.kind_case()) {
      case proto::BlockdevRef::kOptions: {
        STRATA_ASSIGN_OR_RETURN(child, OpenGraph(ref.options(), flags, perms));
        break;
      }
      case proto::BlockdevRef::kReference: {
        ImageOpenRequest request;
        request.filename = ref.reference();
        request.flags = flags;
        STRATA_ASSIGN_OR_RETURN(OpenedImage image, OpenImage(request));
        child = std::move(image.root);
        break;
      }
      default:
        return ErrnoError(EINVAL, absl::StrCat("A block device must be specified for \"",
                                               name, "\""));
    }
    return node_.AddChild(std::string(name), role, std::move(child));
  }

 private:
  BlockDriverState& node_;
  const proto::BlockdevOptions& options_;
  const OpenFlags flags_;
  const PermissionSet perms_;
};

std::string FilenameOf(const proto::BlockdevOptions& options) {
  if (options.has_file()) return options.file().filename();
  if (options.has_host_device()) return options.host_device().filename();
  return "";
}

// Reads the first bytes of `tree`'s protocol node for probing (taking no locks).
absl::StatusOr<std::vector<uint8_t>> ReadProbeHeader(const google::protobuf::Struct& tree,
                                                     const OpenFlags& flags) {
  STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions options, BlockdevOptionsFromTree(tree));
  // QEMU probes through the node it opened for the caller, so the probe opens with the
  // caller's read-only flag (a writable open of a directory fails in open(2) itself,
  // before any "regular file" check). It shares everything: the caller's open takes the
  // locks right after.
  OpenFlags probe_flags = flags;
  probe_flags.force_share = true;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlockDriverState> node,
                          OpenGraph(options, probe_flags, PermissionSet{}));
  STRATA_ASSIGN_OR_RETURN(uint64_t length, node->GetLength());
  std::vector<uint8_t> header(std::min(length, kProbeBytes));
  absl::Status s = node->Pread(0, header.size(), header.data());
  if (!s.ok()) {
    return Prefixed("Could not read image for determining its format", ErrnoError(ErrnoOf(s)));
  }
  return header;
}

// The protocol node QEMU opens for a "filename" found in options with no "driver": the
// file driver, with the name as it is. Only a name given as a file name (the tools'
// operands, a header's backing file) has its protocol prefix parsed
// (ProtocolTreeForFilename); one inside options never does, so "file.filename=nbd://x"
// opens a file of that name.
google::protobuf::Struct FileTreeForOptionFilename(const std::string& filename) {
  google::protobuf::Struct tree;
  auto& f = *tree.mutable_fields();
  f["driver"].set_string_value("file");
  f["filename"].set_string_value(filename);
  return tree;
}

// QEMU's rule for a child given by a filename but no driver: a node's "file" and
// "data-file" children, and blkdebug's "image" (blkdebug is a protocol driver in QEMU,
// whose children inherit BDRV_O_PROTOCOL), are protocol nodes (the file driver:
// FileTreeForOptionFilename); a "backing" child is an image whose format is probed.
// Fills in the drivers throughout `tree`, so that a nested format node needs no explicit
// driver.
absl::Status FillImplicitDrivers(google::protobuf::Struct& tree, const OpenFlags& flags,
                                 int depth = 0) {
  if (depth > kMaxOptionDepth) return ErrnoError(EINVAL, "Options nest too deeply");
  static constexpr const char* kChildKeys[] = {"file", "image", "backing", "data-file"};
  auto& fields = *tree.mutable_fields();
  for (const char* key : kChildKeys) {
    auto it = fields.find(key);
    if (it == fields.end() || !it->second.has_struct_value()) continue;
    google::protobuf::Struct& child = *it->second.mutable_struct_value();
    auto& cf = *child.mutable_fields();
    const std::string k = key;
    const bool child_protocol = k == "file" || k == "data-file" || k == "image";
    auto filename = cf.find("filename");
    if (!cf.contains("driver") && filename != cf.end() &&
        filename->second.kind_case() == google::protobuf::Value::kStringValue) {
      const std::string name = filename->second.string_value();
      google::protobuf::Struct protocol = FileTreeForOptionFilename(name);
      if (child_protocol) {
        MergeTree(protocol, &child);
      } else {
        STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> header, ReadProbeHeader(protocol, flags));
        const BlockDriver* probed = DriverRegistry::Global().ProbeFormat(header, name);
        cf.erase("filename");
        MergeTree(child, &protocol);
        google::protobuf::Struct format;
        auto& ff = *format.mutable_fields();
        ff["driver"].set_string_value(probed != nullptr ? std::string(probed->name()) : "raw");
        *ff["file"].mutable_struct_value() = std::move(protocol);
        child = std::move(format);
      }
    }
    STRATA_RETURN_IF_ERROR(FillImplicitDrivers(child, flags, depth + 1));
  }
  return absl::OkStatus();
}

// An image opened for its metadata alone (qemu-img info: no backing file, no I/O) leaves
// options given for its backing file unused, and QEMU refuses unused options: the first
// of them in its order ("backing.driver"); "backing": null is no option but a choice.
absl::Status RefuseUnusedBacking(const google::protobuf::Struct& tree, const OpenFlags& flags) {
  if (!flags.no_backing || !flags.no_io) return absl::OkStatus();
  auto backing = tree.fields().find("backing");
  if (backing == tree.fields().end() ||
      backing->second.kind_case() == google::protobuf::Value::kNullValue) {
    return absl::OkStatus();
  }
  std::vector<std::string> keys;
  if (backing->second.has_struct_value() && !backing->second.struct_value().fields().empty()) {
    for (const std::string& k : FlattenedOptionKeys(backing->second)) {
      keys.push_back("backing." + k);
    }
  } else {
    keys.push_back("backing");
  }
  const auto driver = tree.fields().find("driver");
  const BlockDriver* format = DriverRegistry::Global().Find(
      driver != tree.fields().end() ? driver->second.string_value() : std::string("raw"));
  if (format == nullptr) return absl::OkStatus();  // the open names the unknown driver
  return UnsupportedOptionError(*format, std::move(keys));
}

// QEMU's rule for an image given by options (json:, --image-opts) with no format: a
// string "driver" names it; else a "file" object is opened and its format probed (the
// driver filled in; returns whether it came out raw); a "file" string would name another
// node, which the tools never have.
absl::StatusOr<bool> ProbeDriverOfOptions(google::protobuf::Struct& tree, const OpenFlags& flags) {
  auto& fields = *tree.mutable_fields();
  auto driver = fields.find("driver");
  if (driver != fields.end() && driver->second.has_string_value()) return false;
  auto file = fields.find("file");
  if (file != fields.end() && file->second.has_string_value()) {
    const std::string& name = file->second.string_value();
    return ErrnoError(ENODEV, absl::StrCat("Cannot find device='", name, "' nor node-name='",
                                           name, "'"));
  }
  if (file == fields.end() || !file->second.has_struct_value()) {
    return ErrnoError(EINVAL, "Must specify either driver or file");
  }
  google::protobuf::Struct protocol = file->second.struct_value();
  std::string filename;
  auto& pf = *protocol.mutable_fields();
  if (auto it = pf.find("filename"); it != pf.end() && it->second.has_string_value()) {
    filename = it->second.string_value();
    if (!pf.contains("driver")) {
      google::protobuf::Struct implied = FileTreeForOptionFilename(filename);
      MergeTree(protocol, &implied);
      protocol = std::move(implied);
    }
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> header, ReadProbeHeader(protocol, flags));
  const BlockDriver* probed = DriverRegistry::Global().ProbeFormat(header, filename);
  fields["driver"].set_string_value(probed != nullptr ? std::string(probed->name()) : "raw");
  return probed == nullptr || probed->name() == "raw";
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockDriverState>> OpenGraph(
    const proto::BlockdevOptions& options, const OpenFlags& parent_flags,
    const PermissionSet& perms) {
  const BlockDriver* driver = DriverRegistry::Global().Find(options.driver());
  if (driver == nullptr) {
    return ErrnoError(EINVAL, absl::StrCat("Unknown driver '", options.driver(), "'"));
  }
  const std::string& discard = options.discard();
  if (!discard.empty() && discard != "ignore" && discard != "off" && discard != "unmap" &&
      discard != "on") {
    return ErrnoError(EINVAL, "Invalid discard option");
  }
  const std::string& detect_zeroes = options.detect_zeroes();
  if (!detect_zeroes.empty() && detect_zeroes != "off" && detect_zeroes != "on" &&
      detect_zeroes != "unmap") {
    return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", detect_zeroes));
  }
  OpenFlags flags = FlagsFromOptions(options, parent_flags);
  auto node = std::make_unique<BlockDriverState>(*driver, FilenameOf(options), flags);
  node->set_node_name(options.node_name());
  BuilderContext ctx(*node, options, flags, perms);
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<DriverInstance> instance, driver->Open(ctx));
  node->SetInstance(std::move(instance));
  node->AssignAutomaticName();
  NameOpenedNode(*node, options);
  return node;
}

std::string ProbedRawName(BlockDriverState& raw_node) {
  BdrvChild* file = raw_node.primary_child();
  return file != nullptr ? file->node().filename() : raw_node.filename();
}

bool BackingNameStandsAlone(const std::string& backing) {
  return backing.empty() || backing[0] == '/' || !ProtocolOf(backing).empty();
}

std::string ResolveBackingPath(const std::string& image, const std::string& backing) {
  if (BackingNameStandsAlone(backing)) return backing;
  size_t slash = image.rfind('/');
  if (slash == std::string::npos) return backing;
  return image.substr(0, slash + 1) + backing;
}

std::string ImageIdentity(const std::string& name) {
  if (!absl::StartsWith(name, "json:")) return CanonicalPath(name);
  absl::StatusOr<google::protobuf::Struct> tree = ParseJsonObject(name.substr(5));
  if (!tree.ok()) return name;
  // Follow "file" children (nested or dotted) down to a filename.
  const google::protobuf::Struct* node = &*tree;
  std::string found;
  for (int depth = 0; depth < kMaxOptionDepth && node != nullptr; ++depth) {
    const auto& f = node->fields();
    auto filename = f.find("filename");
    if (filename != f.end() && filename->second.has_string_value()) {
      found = filename->second.string_value();
    }
    auto dotted = f.find("file.filename");
    if (dotted != f.end() && dotted->second.has_string_value()) {
      found = dotted->second.string_value();
    }
    auto file = f.find("file");
    node = file != f.end() && file->second.has_struct_value() ? &file->second.struct_value()
                                                              : nullptr;
  }
  return found.empty() ? name : CanonicalPath(found);
}

std::string CanonicalPath(const std::string& path) {
  char real[PATH_MAX];
  return realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
}

absl::StatusOr<google::protobuf::Struct> ProtocolTreeForFilename(const std::string& filename) {
  if (absl::StartsWith(filename, "json:")) return ParseJsonObject(filename.substr(5));
  google::protobuf::Struct tree;
  auto& f = *tree.mutable_fields();
  if (const BlockDriver* proto_driver = DriverRegistry::Global().FindByPrefix(filename)) {
    f["driver"].set_string_value(std::string(proto_driver->name()));
    f["x-filename"].set_string_value(filename);
    return tree;
  }
  if (absl::StartsWith(filename, "file:")) {
    // A relative path that would read as a protocol ("a:b") is named "./a:b", as QEMU
    // names it, so that the name can be given back (as a backing file, say) unchanged.
    std::string path = filename.substr(5);
    if (!ProtocolOf(path).empty()) path = "./" + path;
    f["driver"].set_string_value("file");
    f["filename"].set_string_value(path);
    return tree;
  }
  if (absl::string_view protocol = ProtocolOf(filename); !protocol.empty()) {
    return ErrnoError(EINVAL, absl::StrCat("Unknown protocol '", protocol, "'"));
  }
  // An empty name is given, not missing: QEMU's file driver words it so.
  if (filename.empty()) {
    return ErrnoError(EINVAL, "The 'file' block driver requires a file name");
  }
  return FileTreeForOptionFilename(filename);
}

absl::StatusOr<OpenedImage> OpenImage(const ImageOpenRequest& request) {
  // With snapshot=on the image itself is opened read-only under a temporary overlay, so
  // sharing it is allowed (as QEMU allows -U with -s).
  if (request.flags.force_share && !request.flags.read_only && !request.flags.snapshot) {
    return ErrnoError(EINVAL, "force-share=on can only be used with read-only images");
  }
  google::protobuf::Struct tree;
  bool plain_filename = false;
  if (request.image_opts) {
    STRATA_ASSIGN_OR_RETURN(tree, ParseKeyval(request.filename, /*warn_short_forms=*/true));
  } else if (absl::StartsWith(request.filename, "json:")) {
    STRATA_ASSIGN_OR_RETURN(tree, ParseJsonObject(request.filename.substr(5)));
    STRATA_RETURN_IF_ERROR(CheckChildReferences(tree));
    tree = SplitDottedKeys(tree);
  } else {
    plain_filename = true;
  }
  MergeTree(request.overlay, &tree);
  auto& fields = *tree.mutable_fields();
  OpenedImage result;

  if (plain_filename) {
    STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct protocol,
                            ProtocolTreeForFilename(request.filename));
    std::string format = request.format;
    if (format.empty() && fields.contains("driver")) format = fields["driver"].string_value();
    const BlockDriver* fmt_driver =
        format.empty() ? nullptr : DriverRegistry::Global().Find(format);
    if (!format.empty() && fmt_driver == nullptr) {
      return ErrnoError(EINVAL, absl::StrCat("Unknown driver '", format, "'"));
    }
    if (fmt_driver != nullptr && fmt_driver->kind() == DriverKind::kProtocol) {
      // "-f file": the protocol is the whole graph.
      google::protobuf::Struct merged = protocol;
      MergeTree(tree, &merged);
      (*merged.mutable_fields())["driver"].set_string_value(format);
      tree = std::move(merged);
    } else {
      google::protobuf::Struct file_tree = protocol;
      if (fields.contains("file") && fields["file"].has_struct_value()) {
        MergeTree(fields["file"].struct_value(), &file_tree);
        // Options that make the file node blkdebug ("open -o file.driver=blkdebug IMG")
        // hand it the file name, which its filename parser takes as the image (QEMU's
        // x-image); a "filename" given in options is refused (options_json.cc).
        auto& ff = *file_tree.mutable_fields();
        if (ff["driver"].string_value() == "blkdebug" && ff.contains("filename") &&
            !ff.contains("x-image") && !ff.contains("image")) {
          ff["x-image"] = ff["filename"];
          ff.erase("filename");
        }
      }
      if (format.empty()) {
        STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> header,
                                ReadProbeHeader(file_tree, request.flags));
        const BlockDriver* probed =
            DriverRegistry::Global().ProbeFormat(header, request.filename);
        format = probed != nullptr ? std::string(probed->name()) : "raw";
        result.probed_raw = format == "raw";
      }
      fields["driver"].set_string_value(format);
      *fields["file"].mutable_struct_value() = std::move(file_tree);
    }
  } else if (!request.format.empty()) {
    fields["driver"].set_string_value(request.format);
  } else {
    STRATA_ASSIGN_OR_RETURN(result.probed_raw, ProbeDriverOfOptions(tree, request.flags));
  }
  STRATA_RETURN_IF_ERROR(RefuseUnusedBacking(tree, request.flags));
  STRATA_RETURN_IF_ERROR(FillImplicitDrivers(tree, request.flags));

  OpenFlags flags = request.flags;
  flags.format_probed = result.probed_raw;
  if (flags.snapshot) {
    STRATA_ASSIGN_OR_RETURN(result.root, OpenWithTemporaryOverlay(tree, flags));
    return result;
  }
  STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions options, BlockdevOptionsFromTree(tree));
  STRATA_ASSIGN_OR_RETURN(result.root, OpenGraph(options, flags, PermissionSet{}));
  // The caller asked to write, and the options made the node read-only (read-only=on):
  // QEMU's user of the node cannot get the write permission it needs.
  if (!request.flags.read_only && result.root->read_only()) {
    return ErrnoError(EACCES, "Block node is read-only");
  }
  return result;
}

}  // namespace strata
