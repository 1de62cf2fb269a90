// strata qcow2: cache sizing (see qcow2_cache_sizing.h).
#include "drivers/qcow2/qcow2_cache_sizing.h"

#include <algorithm>
#include <cerrno>

#include "block/status.h"

namespace strata::qcow2 {
namespace {

constexpr uint64_t kDefaultMaxL2CacheBytes = 32u << 20;
constexpr uint64_t kMinL2Tables = 2;
constexpr uint64_t kMinRefcountBlocks = 4;

}  // namespace

absl::StatusOr<CacheSizes> ComputeCacheSizes(const CacheSizeOptions& options,
                                             uint64_t virtual_size, uint64_t cluster_size,
                                             uint32_t l2_entry_bytes) {
  const uint64_t guest_clusters = (virtual_size + cluster_size - 1) / cluster_size;
  // Bytes of L2 tables that map the whole image.
  const uint64_t whole_image_l2 =
      (guest_clusters * l2_entry_bytes + cluster_size - 1) / cluster_size * cluster_size;
  const uint64_t min_refcount = kMinRefcountBlocks * cluster_size;
  uint64_t l2 = 0, refcount = 0;
  const auto& [l2_set, refcount_set, total_set] =
      std::tie(options.l2_cache_size, options.refcount_cache_size, options.cache_size);
  if (l2_set && refcount_set && total_set) {
    return ErrnoError(EINVAL, "cache-size, l2-cache-size and refcount-cache-size may not be "
                              "set at the same time");
  }
  if (total_set) {
    if (l2_set) {
      if (*l2_set > *total_set) {
        return ErrnoError(EINVAL, "l2-cache-size may not exceed cache-size");
      }
      l2 = *l2_set;
      refcount = *total_set - l2;
    } else if (refcount_set) {
      if (*refcount_set > *total_set) {
        return ErrnoError(EINVAL, "refcount-cache-size may not exceed cache-size");
      }
      refcount = *refcount_set;
      l2 = *total_set - refcount;
    } else {
      // As much as the L2 cache can use, the rest to the refcount cache.
      l2 = std::min(whole_image_l2,
                    *total_set > min_refcount ? *total_set - min_refcount : uint64_t{0});
      refcount = *total_set - l2;
    }
  } else {
    l2 = std::min(l2_set.value_or(kDefaultMaxL2CacheBytes), whole_image_l2);
    refcount = refcount_set.value_or(min_refcount);
  }
  CacheSizes sizes;
  sizes.l2_tables = std::max<uint64_t>(l2 / cluster_size, kMinL2Tables);
  sizes.refcount_blocks = std::max<uint64_t>(refcount / cluster_size, kMinRefcountBlocks);
  return sizes;
}

}  // namespace strata::qcow2
