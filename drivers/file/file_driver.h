// strata: the `file` protocol driver (and `host_device`), POSIX files and block devices.
//
// pread/pwritev on one descriptor (thread-safe by nature), O_DIRECT for cache.direct with
// bouncing of unaligned memory, fallocate for write-zeroes and discard, fdatasync for
// flushes, SEEK_DATA/SEEK_HOLE for block status, and QEMU-compatible image locks.
#ifndef STRATA_DRIVERS_FILE_FILE_DRIVER_H_
#define STRATA_DRIVERS_FILE_FILE_DRIVER_H_

#include "block/driver.h"

namespace strata {

// Registered as "file" and, for block devices, "host_device".
class FileDriver : public BlockDriver {
 public:
  explicit FileDriver(absl::string_view name = "file") : name_(name) {}
  absl::string_view name() const override { return name_; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  bool requires_filename() const override { return true; }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override;
  std::vector<CreateOptionSpec> create_options() const override;
  // Creates (or truncates to zero, then grows) the file. Option: preallocation.
  absl::Status Create(const CreateRequest& request) const override;

 private:
  absl::string_view name_;
};

}  // namespace strata

#endif  // STRATA_DRIVERS_FILE_FILE_DRIVER_H_
