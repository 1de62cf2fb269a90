// strata internals: the public <strata/io_vector.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_IO_VECTOR_H_
#define STRATA_BLOCK_IO_VECTOR_H_
#include "strata/io_vector.h"
#endif  // STRATA_BLOCK_IO_VECTOR_H_
