// strata/copy_pipeline.h (public API): a pipeline for copy loops (convert, commit): chunks are processed by several
// threads so that reads overlap other chunks' writes and a device sees several requests
// at once.
//
//   absl::Status s = strata::RunCopyPipeline(chunks, 8, /*in_order=*/true,
//       [&](uint64_t i, const std::function<void()>& wait_turn) {
//         /* read chunk i */ wait_turn(); /* write chunk i */ return absl::OkStatus();
//       });
//
// Ordering contract: with `in_order`, the part of chunk i after its wait_turn() call
// runs only once chunk i - 1 has completely finished (so writes reach the target in
// chunk order and allocating formats lay the data out in that order); chunk i's part
// before wait_turn() (its reads) may run at any time. Without `in_order`, wait_turn() is a
// no-op. After the first error no new chunk starts; chunks already running finish.
// Chunks start in order, so every chunk below a failed one has run: the error returned,
// that of the lowest-numbered failed chunk, does not depend on timing.
#ifndef STRATA_STRATA_COPY_PIPELINE_H_
#define STRATA_STRATA_COPY_PIPELINE_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"

namespace strata {

// fn(index, wait_turn) processes chunk `index`; it calls wait_turn() (at most once, from
// its own thread) before its writes. Returns the error of the lowest-numbered chunk that
// failed (OK if none did).
using CopyChunkFn = std::function<absl::Status(uint64_t index,
                                               const std::function<void()>& wait_turn)>;
absl::Status RunCopyPipeline(uint64_t chunks, int workers, bool in_order, CopyChunkFn fn);

}  // namespace strata

#endif  // STRATA_STRATA_COPY_PIPELINE_H_
