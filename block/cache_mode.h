// strata: cache modes (QEMU's -t writeback|none|writethrough|directsync|unsafe).
#ifndef STRATA_BLOCK_CACHE_MODE_H_
#define STRATA_BLOCK_CACHE_MODE_H_

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace strata {

// The three independent switches a cache mode name stands for.
struct CacheMode {
  // O_DIRECT on file nodes (bypass the host page cache). Default: false.
  bool direct = false;
  // Flushes are not passed to the disk. Default: false.
  bool no_flush = false;
  // Every write is followed by a flush before it completes (writethrough). Default: false.
  bool writethrough = false;
};

// Parses a QEMU cache mode name. Unknown names: EINVAL "Invalid cache option".
absl::StatusOr<CacheMode> ParseCacheMode(absl::string_view name);

}  // namespace strata

#endif  // STRATA_BLOCK_CACHE_MODE_H_
