// strata/request.h (public API): one asynchronous request and its completion.
//
//   strata::IoRequest r;
//   r.op = strata::IoOp::kWrite;
//   r.offset = 1 << 20;
//   r.qiov = strata::IoVector(buf, 4096);     // the caller's memory, not copied
//   r.flags = strata::kReqFua;
//   image->Submit(queue, std::move(r), [](absl::Status s) { ... });
#ifndef STRATA_STRATA_REQUEST_H_
#define STRATA_STRATA_REQUEST_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "strata/io_vector.h"
#include "strata/types.h"

namespace strata {

// One asynchronous request (Image::Submit; strata/image.h).
enum class IoOp { kRead, kWrite, kWriteZeroes, kDiscard, kFlush };
struct IoRequest {
  IoOp op = IoOp::kRead;
  uint64_t offset = 0;
  uint64_t bytes = 0;  // kRead/kWrite: qiov.size() if 0
  IoVector qiov;       // kRead/kWrite: the caller's buffers, valid until completion
  uint32_t flags = kReqNone;
};
using IoCompletion = absl::AnyInvocable<void(absl::Status)>;

}  // namespace strata

#endif  // STRATA_STRATA_REQUEST_H_
