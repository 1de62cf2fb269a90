// strata qcow2: the external data file (incompatible bit 2, QEMU's data-file): which file
// it is, and QEMU's rules for naming it. The data path itself only swaps the child it
// reads and writes data through (Qcow2Instance::data_file_).
#include <cerrno>

#include "block/status.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::OpenDataFile(OpenContext& ctx) {
  const proto::Qcow2Options& opts = ctx.options().qcow2();
  const bool option_given = opts.data_file().kind_case() != proto::BlockdevRef::KIND_NOT_SET;
  // Opened for metadata only (qemu-img info): the data file is not needed, nor checked.
  if (ctx.flags().no_io) return absl::OkStatus();
  if (!header_.has_data_file()) {
    if (option_given) {
      return ErrnoError(EINVAL, "'data-file' can only be set for images with an external "
                                "data file");
    }
    if (header_.data_file_raw()) return ErrnoError(EINVAL, "data-file-raw requires a data file");
    return absl::OkStatus();
  }
  proto::BlockdevRef ref = opts.data_file();
  if (!option_given) {
    const std::string name = header_.data_file_name();
    if (name.empty()) return ErrnoError(EINVAL, "'data-file' is required for this image");
    // As QEMU (since the CVE-2024-4467 fix): the name is a plain file name, opened as
    // given (relative to the working directory); never parsed as json: or a protocol, so
    // an untrusted image cannot make strata open anything but a file.
    proto::BlockdevOptions* file = ref.mutable_options();
    file->set_driver("file");
    file->mutable_file()->set_filename(name);
  }
  STRATA_ASSIGN_OR_RETURN(data_file_,
                          ctx.OpenChild("data-file", ChildRole::kFile, ref,
                                        FormatChildPermissions(read_only_), ctx.flags()));
  external_data_ = true;
  data_file_raw_ = header_.data_file_raw();
  return absl::OkStatus();
}

}  // namespace strata::qcow2
