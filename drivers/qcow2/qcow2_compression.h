// strata qcow2: one cluster compressed and decompressed as QEMU does it.
//
// zlib: raw deflate (no header) with a 4 KiB window and memLevel 9 at the default level;
// zstd: one frame at the default level. Pure CPU work on caller-owned memory: both are
// called from any thread, with or without the image's lock, on a loop or off it.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_COMPRESSION_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_COMPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::qcow2 {

// One cluster compressed with `compression_type` (0 zlib, 1 zstd) into at most
// cluster - 1 bytes; nullopt if it does not fit.
absl::StatusOr<std::optional<std::vector<uint8_t>>> CompressCluster(uint8_t compression_type,
                                                                    const uint8_t* data,
                                                                    size_t cluster);

// Inflates the `compressed_bytes` read for a compressed cluster into exactly `cluster`
// bytes at `out`. The bytes read are rounded up to whole sectors, so trailing bytes after
// the stream are ignored; a stream that does not fill the cluster is EIO.
absl::Status DecompressCluster(uint8_t compression_type, const uint8_t* compressed,
                               size_t compressed_bytes, uint8_t* out, size_t cluster);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_COMPRESSION_H_
