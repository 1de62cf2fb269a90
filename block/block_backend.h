// strata: BlockBackend, the handle a user of the stack holds (a guest device, a tool).
//
// It owns the root node of a graph and applies the guest-facing rules that do not belong to
// any node: requests must lie inside the device (EIO otherwise, as QEMU's
// blk_check_byte_request), requests are capped at QEMU's maximum size, and in writethrough
// mode every write is flushed before it completes.
//
// Thread safety: I/O methods may be called concurrently, from any number of threads and
// event loops (queues).
//
// Three ways to issue a request, all with the same results:
//  - synchronous (Preadv, ...): the calling thread blocks; what the tools use;
//  - coroutines (CoPreadv, ...): awaited on a loop thread (aio::IoContext), the request
//    suspends instead of blocking; thousands can be in flight on one thread;
//  - callbacks (Submit): starts a request on a given loop from any thread; `done` runs on
//    that loop's thread. An embedder with several virtqueues gives each its own loop
//    (aio::LoopThread) and submits each queue's requests to its loop.
#ifndef STRATA_BLOCK_BLOCK_BACKEND_H_
#define STRATA_BLOCK_BLOCK_BACKEND_H_

#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "aio/io_context.h"
#include "aio/task.h"
#include "block/copy_on_read.h"
#include "block/node.h"
#include "strata/request.h"

namespace strata {

// QEMU's BDRV_REQUEST_MAX_BYTES: the largest request the block layer accepts.
inline constexpr uint64_t kMaxRequestBytes = 2147483136;

class BlockBackend {
 public:
  BlockBackend(std::unique_ptr<BlockDriverState> root, bool writethrough);
  ~BlockBackend();

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags = kReqNone);
  absl::Status Pread(uint64_t offset, uint64_t bytes, void* buf);
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags = kReqNone);
  absl::Status Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                      uint32_t flags = kReqNone);
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags = kReqNone);
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes);
  absl::Status Flush();
  absl::Status Truncate(uint64_t length, bool exact = true,
                        PreallocMode prealloc = PreallocMode::kOff);
  absl::StatusOr<uint64_t> GetLength();

  // --- Coroutines: the same requests, to be awaited (see the class comment). `qiov` and
  // its buffers must stay valid until they return.
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                         uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes);
  aio::Task<absl::Status> CoFlush();

  // --- Callbacks: one request started on `queue` (posted there unless called on its
  // thread); `done` runs on the queue's thread with the result, never from inside Submit. The request owns its copy
  // of the IoVector; the buffers it points to must stay valid until `done` runs. The
  // backend must outlive every request submitted.
  // The public request type (strata/request.h).
  using Op = IoOp;
  using Request = IoRequest;
  using Completion = IoCompletion;
  void Submit(aio::IoContext& queue, Request request, Completion done);
  // The coroutine that Submit runs: `request` is owned by its frame.
  aio::Task<absl::Status> CoExecute(Request request);

  // Flushes and closes the graph; the backend is unusable afterwards. Idempotent.
  absl::Status Close();

  BlockDriverState& root() const { return *root_; }
  bool writethrough() const { return writethrough_; }

  // Turns on copy-on-read (copy_on_read.h) for the rest of the backend's life; call
  // before the first request. Reads then copy into the root what they find below it;
  // writes, zero writes, discards and truncates wait for copies they overlap (all of
  // them, for simplicity). Coroutine and Submit requests run the synchronous path on the
  // blocking pool. The root must be writable.
  void EnableCopyOnRead() { cor_ = std::make_unique<CopyOnRead>(*root_); }
  bool copy_on_read() const { return cor_ != nullptr; }

 private:
  absl::Status CheckRequest(uint64_t offset, uint64_t bytes);
  absl::Status AfterWrite(absl::Status status);
  // While copy-on-read is on: holds its lock shared, so a data-changing request waits
  // for copies in progress (see CopyOnRead). Empty otherwise.
  std::optional<absl::ReaderMutexLock> WaitForCopies() {
    if (!cor_) return std::nullopt;
    return std::optional<absl::ReaderMutexLock>(std::in_place, &cor_->serial());
  }

  std::unique_ptr<BlockDriverState> root_;
  const bool writethrough_;
  std::unique_ptr<CopyOnRead> cor_;  // null unless EnableCopyOnRead
};

}  // namespace strata

#endif  // STRATA_BLOCK_BLOCK_BACKEND_H_
