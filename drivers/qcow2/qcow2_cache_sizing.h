// strata qcow2: how big the L2 table and refcount block caches are, from the image and
// the open options (QEMU's l2-cache-size, refcount-cache-size, cache-size rules).
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_CACHE_SIZING_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_CACHE_SIZING_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"

namespace strata::qcow2 {

// The user's settings, in bytes; unset = default.
struct CacheSizeOptions {
  std::optional<uint64_t> l2_cache_size;
  std::optional<uint64_t> refcount_cache_size;
  std::optional<uint64_t> cache_size;  // both together
};

// Cache capacities in tables (one cluster each).
struct CacheSizes {
  size_t l2_tables = 0;
  size_t refcount_blocks = 0;
};

// The L2 cache gets what maps the whole image, at most 32 MiB unless set otherwise, never
// more than the image needs, at least 2 tables; the refcount cache 4 blocks unless set.
// With only `cache_size`, the L2 cache takes as much of it as it can use. Setting all
// three, or a part larger than the whole, is EINVAL with QEMU's message. `l2_entry_bytes`
// is 16 with extended L2 entries (the tables that map the image are twice as large).
absl::StatusOr<CacheSizes> ComputeCacheSizes(const CacheSizeOptions& options,
                                             uint64_t virtual_size, uint64_t cluster_size,
                                             uint32_t l2_entry_bytes = 8);

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_CACHE_SIZING_H_
