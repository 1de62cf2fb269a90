// strata: image locks that interoperate with QEMU's (file-posix "locking=on").
//
// QEMU expresses node permissions as shared OFD read locks on single bytes of the image
// file: byte 100+bit for each permission held, byte 200+bit for each permission it does
// not let others have (bits in block/permissions.h). A new user conflicts if it wants a
// permission whose "unshared" byte someone else locks, or refuses to share a permission
// whose "held" byte someone else locks. Observed with qemu-io 7.2: a qcow2 writer holds
// 100,101,103 and 201,203; a raw writer holds 100,101 only.
#ifndef STRATA_DRIVERS_FILE_IMAGE_LOCK_H_
#define STRATA_DRIVERS_FILE_IMAGE_LOCK_H_

#include <string>

#include "absl/status/status.h"
#include "block/permissions.h"

namespace strata {

// Takes the locks for `perms` on `fd` (an open file description of its own) and checks for
// conflicts with other users. On conflict the locks are released and the error is QEMU's:
// "Failed to get \"write\" lock\nIs another process using the image [<filename>]?"
// (or "Failed to get shared \"write\" lock..."), errno EAGAIN.
absl::Status ApplyImageLocks(int fd, const PermissionSet& perms, const std::string& filename);

// Drops every lock this description holds in the lock byte ranges.
void ReleaseImageLocks(int fd);

}  // namespace strata

#endif  // STRATA_DRIVERS_FILE_IMAGE_LOCK_H_
