// strata: snapshot=on overlays (see temporary_overlay.h).
#include "block/temporary_overlay.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "block/graph_builder.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

// Unlinks a temporary file when it goes out of scope.
class TemporaryFileName {
 public:
  explicit TemporaryFileName(std::string path) : path_(std::move(path)) {}
  ~TemporaryFileName() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BlockDriverState>> OpenWithTemporaryOverlay(
    const google::protobuf::Struct& image_tree, OpenFlags flags) {
  flags.snapshot = false;
  OpenFlags base_flags = flags;
  base_flags.read_only = true;
  STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions base_options,
                          BlockdevOptionsFromTree(image_tree));
  uint64_t length = 0;
  {
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlockDriverState> base,
                            OpenGraph(base_options, base_flags, PermissionSet{}));
    STRATA_ASSIGN_OR_RETURN(length, base->GetLength());
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmpdir != nullptr && *tmpdir ? tmpdir : "/var/tmp",
                                     "/vl.XXXXXX");
  int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    return Prefixed("Could not get temporary filename", ErrnoError(errno));
  }
  ::close(fd);
  TemporaryFileName temp(pattern);
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  if (qcow2 == nullptr) return ErrnoError(ENOTSUP, "Unknown driver 'qcow2'");
  CreateRequest create;
  create.filename = temp.path();
  create.size_bytes = length;
  STRATA_RETURN_IF_ERROR(qcow2->Create(create));

  google::protobuf::Struct overlay;
  auto& f = *overlay.mutable_fields();
  f["driver"].set_string_value("qcow2");
  auto& file = *f["file"].mutable_struct_value()->mutable_fields();
  file["driver"].set_string_value("file");
  file["filename"].set_string_value(temp.path());
  *f["backing"].mutable_struct_value() = image_tree;
  STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions options, BlockdevOptionsFromTree(overlay));
  return OpenGraph(options, flags, PermissionSet{});
}


}  // namespace strata
