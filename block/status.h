// strata internals: the public <strata/errors.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_STATUS_H_
#define STRATA_BLOCK_STATUS_H_
#include "strata/errors.h"
#endif  // STRATA_BLOCK_STATUS_H_
