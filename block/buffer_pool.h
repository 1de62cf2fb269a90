// strata internals: the public <strata/buffer_pool.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_BUFFER_POOL_H_
#define STRATA_BLOCK_BUFFER_POOL_H_
#include "strata/buffer_pool.h"
#endif  // STRATA_BLOCK_BUFFER_POOL_H_
