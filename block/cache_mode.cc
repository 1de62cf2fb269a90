// strata: cache mode names (see cache_mode.h).
#include "block/cache_mode.h"

#include <cerrno>

#include "block/status.h"

namespace strata {

absl::StatusOr<CacheMode> ParseCacheMode(absl::string_view name) {
  if (name == "writeback") return CacheMode{};
  if (name == "none" || name == "off") return CacheMode{.direct = true};
  if (name == "writethrough") return CacheMode{.writethrough = true};
  if (name == "directsync") return CacheMode{.direct = true, .writethrough = true};
  if (name == "unsafe") return CacheMode{.no_flush = true};
  return ErrnoError(EINVAL, "Invalid cache option");
}

}  // namespace strata
