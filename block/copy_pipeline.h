// strata internals: the public <strata/copy_pipeline.h>, under the name internal code has used.
#ifndef STRATA_BLOCK_COPY_PIPELINE_H_
#define STRATA_BLOCK_COPY_PIPELINE_H_
#include "strata/copy_pipeline.h"
#endif  // STRATA_BLOCK_COPY_PIPELINE_H_
