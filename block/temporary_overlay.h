// strata: snapshot=on (qemu-io -s): the image under a throwaway qcow2 overlay.
#ifndef STRATA_BLOCK_TEMPORARY_OVERLAY_H_
#define STRATA_BLOCK_TEMPORARY_OVERLAY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "block/driver.h"
#include "block/node.h"
#include "google/protobuf/struct.pb.h"

namespace strata {

// Opens `image_tree` (resolved options, driver filled in) read-only as the backing node of
// a fresh qcow2 overlay in $TMPDIR (default /var/tmp, as QEMU) and returns the overlay.
// The overlay's file is unlinked as soon as it is open, so nothing is left behind however
// the process ends; the image itself is never written. On failure nothing is left behind.
absl::StatusOr<std::unique_ptr<BlockDriverState>> OpenWithTemporaryOverlay(
    const google::protobuf::Struct& image_tree, OpenFlags flags);

}  // namespace strata

#endif  // STRATA_BLOCK_TEMPORARY_OVERLAY_H_
