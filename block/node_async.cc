// strata: the node's requests as coroutines (see node.h, "The same requests as
// coroutines"). The synchronous methods stay the reference: every case this file does not
// handle natively runs them, offloaded, so the two paths cannot disagree on the rare cases.
#include <algorithm>

#include "aio/offload.h"
#include "block/align.h"
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
  co_return co_await CoPaddedPreadv(offset, bytes, qiov);
}

aio::Task<absl::Status> BlockDriverState::CoPaddedPreadv(uint64_t offset, uint64_t bytes,
                                                         const IoVector& qiov) {
  const uint64_t begin = AlignDown(offset, alignment_);
  const uint64_t end = AlignUp(offset + bytes, alignment_);
  AlignedBuffer bounce(end - begin, std::max<uint32_t>(alignment_, 4096),
                       AlignedBuffer::kUninitialized);
  STRATA_CO_RETURN_IF_ERROR(
      co_await instance_->CoPreadv(begin, end - begin, bounce.AsIoVector(), 0));
  qiov.CopyFrom(0, bounce.data() + (offset - begin), bytes);
  co_return absl::OkStatus();
}

aio::Task<absl::Status> BlockDriverState::CoPwritev(uint64_t offset, uint64_t bytes,
                                                    const IoVector& qiov, uint32_t flags) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  co_return co_await CoDoPwritev(offset, bytes, qiov, flags);
}

aio::Task<absl::Status> BlockDriverState::CoDoPwritev(uint64_t offset, uint64_t bytes,
                                                      const IoVector& qiov, uint32_t flags) {
  // Native: data writes at a writable node without debug events. With a request
  // alignment the write holds its block-widened range (parking, not blocking, behind an
  // overlapping one) and pads a partial head or tail by read-modify-write, as DoPwritev.
  // The rest (events, compressed writes, the error cases) is the synchronous path's.
  if (bytes == 0 || wants_events_ || (flags & kReqWriteCompressed) || read_only()) {
    co_return co_await aio::Offload([&] { return DoPwritev(offset, bytes, qiov, flags); });
  }
  const IoVector data = qiov.size() == bytes ? qiov : qiov.Slice(0, bytes);
  if (alignment_ == 1) {
    absl::Status status = co_await instance_->CoPwritev(offset, bytes, data, flags);
    NoteWriteCompleted();
    co_return status;
  }
  STRATA_CO_RETURN_IF_ERROR(co_await CoBeginSerialised(offset, bytes));
  absl::Status status;
  if (offset % alignment_ == 0 && bytes % alignment_ == 0) {
    status = co_await instance_->CoPwritev(offset, bytes, data, flags);
    NoteWriteCompleted();
  } else {
    status = co_await CoPaddedPwritev(offset, bytes, data, flags);
  }
  EndSerialised(offset, bytes);
  co_return status;
}

aio::Task<absl::Status> BlockDriverState::CoBeginSerialised(uint64_t offset, uint64_t bytes) {
  const uint64_t begin = AlignDown(offset, alignment_);
  const uint64_t end = AlignUp(offset + bytes, alignment_);
  while (!serialised_.TryBegin(begin, end)) co_await serialised_.Released(begin, end);
  co_return absl::OkStatus();
}

aio::Task<absl::Status> BlockDriverState::CoPaddedPwritev(uint64_t offset, uint64_t bytes,
                                                          const IoVector& qiov,
                                                          uint32_t flags) {
  // PaddedPwritev's read-modify-write: the blocks holding a partial head and tail are read
  // (once if they are one block), the request's bytes laid over them, all written at once.
  const uint64_t begin = AlignDown(offset, alignment_);
  const uint64_t end = AlignUp(offset + bytes, alignment_);
  const uint64_t head_len = offset - begin;
  const uint64_t tail_len = end - (offset + bytes);
  const bool same_block = end - begin == alignment_;
  const uint32_t memory_alignment = std::max<uint32_t>(alignment_, 4096);
  AlignedBuffer head(alignment_, memory_alignment, AlignedBuffer::kUninitialized);
  AlignedBuffer tail(alignment_, memory_alignment, AlignedBuffer::kUninitialized);
  if (head_len > 0 || same_block) {
    STRATA_CO_RETURN_IF_ERROR(co_await instance_->CoPreadv(begin, alignment_, head.AsIoVector(), 0));
  }
  if (tail_len > 0 && !same_block) {
    STRATA_CO_RETURN_IF_ERROR(
        co_await instance_->CoPreadv(end - alignment_, alignment_, tail.AsIoVector(), 0));
  }
  absl::Status status = co_await instance_->CoPwritev(
      begin, end - begin, PaddedVector(offset, bytes, qiov, head, tail), flags);
  NoteWriteCompleted();
  co_return status;
}

aio::Task<absl::Status> BlockDriverState::CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                         uint32_t flags) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  // Native at a writable node without debug events: DoPwriteZeroes's cases as coroutines.
  // An aligned range goes to the driver (zero buffers, written as coroutines too, where it
  // cannot zero without data: ENOTSUP); an unaligned one is split as QEMU splits it, the
  // partial blocks at either end as data writes (read-modify-write), the aligned middle
  // as a zero write of its own.
  if (bytes == 0 || wants_events_ || read_only()) {
    co_return co_await aio::Offload([&] { return DoPwriteZeroes(offset, bytes, flags); });
  }
  if (offset % alignment_ == 0 && bytes % alignment_ == 0) {
    co_return co_await CoDoAlignedZeroes(offset, bytes, flags);
  }
  if (flags & kReqNoFallback) co_return ErrnoError(ENOTSUP);
  const uint64_t end = offset + bytes;
  const uint64_t middle_start = AlignUp(offset, alignment_);
  const uint64_t middle_end = AlignDown(end, alignment_);
  if (middle_start >= middle_end) co_return co_await CoDoZeroesByBuffer(offset, bytes, flags);
  if (middle_start > offset) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoDoZeroesByBuffer(offset, middle_start - offset, flags));
  }
  STRATA_CO_RETURN_IF_ERROR(
      co_await CoDoAlignedZeroes(middle_start, middle_end - middle_start, flags));
  if (end > middle_end) {
    STRATA_CO_RETURN_IF_ERROR(co_await CoDoZeroesByBuffer(middle_end, end - middle_end, flags));
  }
  co_return absl::OkStatus();
}

aio::Task<absl::Status> BlockDriverState::CoDoAlignedZeroes(uint64_t offset, uint64_t bytes,
                                                            uint32_t flags) {
  absl::Status s = co_await instance_->CoPwriteZeroes(offset, bytes, flags);
  NoteWriteCompleted();
  if (ErrnoOf(s) != ENOTSUP || (flags & kReqNoFallback)) co_return s;
  co_return co_await CoDoZeroesByBuffer(offset, bytes, flags);
}

aio::Task<absl::Status> BlockDriverState::CoDoZeroesByBuffer(uint64_t offset, uint64_t bytes,
                                                             uint32_t flags) {
  AlignedBuffer zeroes(std::min<uint64_t>(bytes + 2 * alignment_, kZeroBufferBytes));
  const uint64_t chunk_limit = zeroes.size() - zeroes.size() % std::max<uint32_t>(alignment_, 1);
  while (bytes > 0) {
    const uint64_t n = std::min(bytes, chunk_limit);
    STRATA_CO_RETURN_IF_ERROR(
        co_await CoDoPwritev(offset, n, IoVector(zeroes.data(), n), flags & kReqFua));
    offset += n;
    bytes -= n;
  }
  co_return absl::OkStatus();
}

aio::Task<absl::Status> BlockDriverState::CoPdiscard(uint64_t offset, uint64_t bytes) {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  if (wants_events_ || read_only()) {
    co_return co_await aio::Offload([&] { return DoPdiscard(offset, bytes); });
  }
  // DoPdiscard's rules: ignored without discard=unmap; a driver's ENOTSUP is no error.
  if (bytes == 0 || !flags_.discard_unmap) co_return absl::OkStatus();
  absl::Status s = co_await instance_->CoPdiscard(offset, bytes);
  NoteWriteCompleted();
  if (ErrnoOf(s) == ENOTSUP) co_return absl::OkStatus();
  co_return s;
}

aio::Task<absl::Status> BlockDriverState::CoFlush() {
  co_await gate_.CoEnter();
  GateRequest held(gate_, GateRequest::kEntered);
  BdrvChild* primary = primary_child();
  if (primary != nullptr && primary->delivers_events()) {
    co_return co_await aio::Offload([&] { return DoFlush(); });
  }
  if (aio::IoContext::Current() == nullptr) co_return co_await CoDoFlush();
  // The writes this flush must cover: every one completed before it was issued. Read
  // before anything is written back, so a flush that succeeds after reading a generation
  // at least this high covers them all.
  const uint64_t covers = write_generation_.load(std::memory_order_acquire);
  FlushCoalescer::Turn turn = co_await flush_turns_.CoTakeTurn(covers);
  if (!turn.held()) co_return absl::OkStatus();  // a flush that ran meanwhile covered it
  absl::Status s = co_await CoDoFlush();
  if (s.ok()) turn.Succeeded(covers);
  co_return s;
}

aio::Task<absl::Status> BlockDriverState::CoDoFlush() {
  // The driver's write-back of its own caches (which may offload its metadata I/O), then
  // the disk flush (skipped when no write completed since the last), then the children,
  // in the order of the synchronous Flush.
  STRATA_CO_RETURN_IF_ERROR(co_await instance_->CoFlushToOs());
  uint64_t gen = write_generation_.load(std::memory_order_acquire);
  if (!flags_.cache.no_flush && gen != flushed_generation_.load(std::memory_order_acquire)) {
    STRATA_CO_RETURN_IF_ERROR(co_await instance_->CoFlushToDisk());
    MarkFlushed(gen);
  }
  for (auto& c : children_) STRATA_CO_RETURN_IF_ERROR(co_await c->node().CoFlush());
  co_return absl::OkStatus();
}

}  // namespace strata
