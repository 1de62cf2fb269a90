// strata: the node's requests as coroutines (see node.h, "The same requests as
// coroutines"). The synchronous methods stay the reference: every case this file does not
// handle natively runs them, offloaded, so the two paths cannot disagree on the rare cases.
#include "aio/offload.h"
#include "block/node.h"
#include "block/request_gate.h"
#include "block/status.h"

namespace strata {

aio::Task<absl::Status> BlockDriverState::CoPreadv(uint64_t offset, uint64_t bytes,
                                                   const IoVector& qiov, uint32_t flags) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  if (bytes == 0) co_return absl::OkStatus();
  if (offset % alignment_ == 0 && bytes % alignment_ == 0) {
    if (qiov.size() == bytes) co_return co_await instance_->CoPreadv(offset, bytes, qiov, flags);
    const IoVector exact = qiov.Slice(0, bytes);
    co_return co_await instance_->CoPreadv(offset, bytes, exact, flags);
  }
  co_return co_await aio::Offload([&] { return DoPreadv(offset, bytes, qiov, flags); });
}

aio::Task<absl::Status> BlockDriverState::CoPwritev(uint64_t offset, uint64_t bytes,
                                                    const IoVector& qiov, uint32_t flags) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  const bool aligned = offset % alignment_ == 0 && bytes % alignment_ == 0;
  // Native: aligned data writes at a node without debug events, whose range no other
  // write holds. Everything else is the synchronous path (which waits for the range).
  if (aligned && bytes > 0 && !wants_events_ && !(flags & kReqWriteCompressed) &&
      !read_only() && (alignment_ == 1 || TryBeginSerialised(offset, bytes))) {
    const IoVector data = qiov.size() == bytes ? qiov : qiov.Slice(0, bytes);
    absl::Status status = co_await instance_->CoPwritev(offset, bytes, data, flags);
    NoteWriteCompleted();
    if (alignment_ != 1) EndSerialised(offset, bytes);
    co_return status;
  }
  co_return co_await aio::Offload([&] { return DoPwritev(offset, bytes, qiov, flags); });
}

aio::Task<absl::Status> BlockDriverState::CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                         uint32_t flags) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  co_return co_await aio::Offload([&] { return DoPwriteZeroes(offset, bytes, flags); });
}

aio::Task<absl::Status> BlockDriverState::CoPdiscard(uint64_t offset, uint64_t bytes) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  co_return co_await aio::Offload([&] { return DoPdiscard(offset, bytes); });
}

aio::Task<absl::Status> BlockDriverState::CoFlush() {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  BdrvChild* primary = primary_child();
  if (primary != nullptr && primary->delivers_events()) {
    co_return co_await aio::Offload([&] { return DoFlush(); });
  }
  // The driver's write-back of its own caches may do metadata I/O: offloaded. Then the
  // disk flush (skipped when no write completed since the last), then the children, in
  // the order of the synchronous Flush.
  STRATA_CO_RETURN_IF_ERROR(co_await aio::Offload([&] { return instance_->FlushToOs(); }));
  uint64_t gen = write_generation_.load(std::memory_order_acquire);
  if (!flags_.cache.no_flush && gen != flushed_generation_.load(std::memory_order_acquire)) {
    STRATA_CO_RETURN_IF_ERROR(co_await instance_->CoFlushToDisk());
    MarkFlushed(gen);
  }
  for (auto& c : children_) STRATA_CO_RETURN_IF_ERROR(co_await c->node().CoFlush());
  co_return absl::OkStatus();
}

}  // namespace strata
