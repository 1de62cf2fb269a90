// strata: node permissions, QEMU's BLK_PERM_* bits.
//
// A parent states what it does with a child (perm) and what it lets others do at the same
// time (shared). The file driver turns these into byte-range locks that QEMU understands,
// so strata and QEMU processes never both write one image (see drivers/file/image_lock.h).
#ifndef STRATA_BLOCK_PERMISSIONS_H_
#define STRATA_BLOCK_PERMISSIONS_H_

#include <cstdint>
#include "absl/strings/string_view.h"

namespace strata {

// QEMU's permission bits, same values (they index the lock bytes).
enum Permission : uint32_t {
  kPermConsistentRead = 1u << 0,
  kPermWrite = 1u << 1,
  kPermWriteUnchanged = 1u << 2,
  kPermResize = 1u << 3,
  kPermGraphMod = 1u << 4,
  kPermAll = (1u << 5) - 1,
};
inline constexpr int kPermissionBitCount = 5;

// QEMU's name of permission bit `bit` ("write"), as used in lock error messages.
absl::string_view PermissionName(int bit);

// What a parent needs from a child and what it tolerates from other users.
struct PermissionSet {
  uint32_t perm = kPermConsistentRead;
  uint32_t shared = kPermAll;
};

// What a format driver needs from the node that stores its image: QEMU's rule for
// format nodes (qcow2): writers take write+resize and share neither; readers share reads
// and write-unchanged only.
inline PermissionSet FormatChildPermissions(bool read_only) {
  PermissionSet p;
  p.perm = read_only ? kPermConsistentRead
                     : (kPermConsistentRead | kPermWrite | kPermResize);
  p.shared = kPermConsistentRead | kPermWriteUnchanged | kPermGraphMod;
  return p;
}

// Raw-like (pass-through) nodes: take what their parent takes, share what it shares.
inline PermissionSet PassThroughPermissions(bool read_only) {
  PermissionSet p;
  p.perm = read_only ? kPermConsistentRead : (kPermConsistentRead | kPermWrite);
  p.shared = kPermAll;
  return p;
}

}  // namespace strata

#endif  // STRATA_BLOCK_PERMISSIONS_H_
