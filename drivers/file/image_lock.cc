// strata: QEMU-compatible image locks (see image_lock.h).
#include "drivers/file/image_lock.h"

#include <fcntl.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "block/status.h"

namespace strata {
namespace {

constexpr off_t kPermLockBase = 100;
constexpr off_t kSharedLockBase = 200;

int LockByte(int fd, off_t byte, short type) {
  struct flock fl = {};
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  fl.l_type = type;
  return fcntl(fd, F_OFD_SETLK, &fl);
}

// True if a description other than ours holds a lock on `byte`.
bool ByteLockedByOthers(int fd, off_t byte) {
  struct flock fl = {};
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  fl.l_type = F_WRLCK;
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

absl::Status LockError(const std::string& filename, bool shared, int bit) {
  return ErrnoError(EAGAIN, absl::StrCat("Failed to get ", shared ? "shared " : "", "\"",
                                         PermissionName(bit), "\" lock\n",
                                         "Is another process using the image [", filename,
                                         "]?"));
}

}  // namespace

absl::Status ApplyImageLocks(int fd, const PermissionSet& perms, const std::string& filename) {
  for (int bit = 0; bit < kPermissionBitCount; ++bit) {
    if (perms.perm & (1u << bit)) {
      if (LockByte(fd, kPermLockBase + bit, F_RDLCK) != 0) {
        ReleaseImageLocks(fd);
        return LockError(filename, false, bit);
      }
    }
    if (!(perms.shared & (1u << bit))) {
      if (LockByte(fd, kSharedLockBase + bit, F_RDLCK) != 0) {
        ReleaseImageLocks(fd);
        return LockError(filename, true, bit);
      }
    }
  }
  for (int bit = 0; bit < kPermissionBitCount; ++bit) {
    if ((perms.perm & (1u << bit)) && ByteLockedByOthers(fd, kSharedLockBase + bit)) {
      ReleaseImageLocks(fd);
      return LockError(filename, false, bit);
    }
  }
  for (int bit = 0; bit < kPermissionBitCount; ++bit) {
    if (!(perms.shared & (1u << bit)) && ByteLockedByOthers(fd, kPermLockBase + bit)) {
      ReleaseImageLocks(fd);
      return LockError(filename, true, bit);
    }
  }
  return absl::OkStatus();
}

void ReleaseImageLocks(int fd) {
  for (int bit = 0; bit < kPermissionBitCount; ++bit) {
    LockByte(fd, kPermLockBase + bit, F_UNLCK);
    LockByte(fd, kSharedLockBase + bit, F_UNLCK);
  }
}

}  // namespace strata
