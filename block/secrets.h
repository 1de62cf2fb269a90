// strata internals: the public <strata/secrets.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_SECRETS_H_
#define STRATA_BLOCK_SECRETS_H_
#include "strata/secrets.h"
#endif  // STRATA_BLOCK_SECRETS_H_
