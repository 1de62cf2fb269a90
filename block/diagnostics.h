// strata internals: the public <strata/diagnostics.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_DIAGNOSTICS_H_
#define STRATA_BLOCK_DIAGNOSTICS_H_
#include "strata/diagnostics.h"
#endif  // STRATA_BLOCK_DIAGNOSTICS_H_
