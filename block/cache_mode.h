// strata internals: cache modes (QEMU's -t writeback|none|writethrough|directsync|unsafe).
// CacheMode and ParseCacheMode are public (strata/types.h); cache_mode.cc implements them.
#ifndef STRATA_BLOCK_CACHE_MODE_H_
#define STRATA_BLOCK_CACHE_MODE_H_
#include "strata/types.h"
#endif  // STRATA_BLOCK_CACHE_MODE_H_
