// strata internals: the public <strata/qdict_order.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_QDICT_ORDER_H_
#define STRATA_BLOCK_QDICT_ORDER_H_
#include "strata/qdict_order.h"
#endif  // STRATA_BLOCK_QDICT_ORDER_H_
