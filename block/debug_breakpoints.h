// strata internals: the public <strata/debug_breakpoints.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_DEBUG_BREAKPOINTS_H_
#define STRATA_BLOCK_DEBUG_BREAKPOINTS_H_
#include "strata/debug_breakpoints.h"
#endif  // STRATA_BLOCK_DEBUG_BREAKPOINTS_H_
