// strata: the guest-facing handle (see block_backend.h).
#include "block/block_backend.h"

#include <cerrno>
#include <memory>
#include <optional>

#include "aio/offload.h"
#include "block/status.h"

namespace strata {
namespace {

// How many Submit calls are starting a request on this thread right now: a completion
// that arrives while it is positive finished inside Submit, and is posted instead.
thread_local int t_submit_depth = 0;

}  // namespace

BlockBackend::BlockBackend(std::unique_ptr<BlockDriverState> root, bool writethrough)
    : root_(std::move(root)), writethrough_(writethrough) {}

BlockBackend::~BlockBackend() { (void)Close(); }

absl::Status BlockBackend::Close() {
  if (!root_) return absl::OkStatus();
  absl::Status s = root_->Close();
  root_.reset();
  return s;
}

absl::Status BlockBackend::CheckRequest(uint64_t offset, uint64_t bytes) {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  if (bytes > kMaxRequestBytes) return ErrnoError(EIO);
  STRATA_ASSIGN_OR_RETURN(uint64_t length, root_->GetLength());
  if (offset > length || bytes > length - offset) return ErrnoError(EIO);
  return absl::OkStatus();
}

absl::Status BlockBackend::AfterWrite(absl::Status status) {
  if (status.ok() && writethrough_) return root_->Flush();
  return status;
}

absl::Status BlockBackend::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                  uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  if (cor_) return cor_->Preadv(offset, bytes, qiov, flags);
  return root_->Preadv(offset, bytes, qiov, flags);
}

absl::Status BlockBackend::Pread(uint64_t offset, uint64_t bytes, void* buf) {
  return Preadv(offset, bytes, IoVector(buf, bytes));
}

absl::Status BlockBackend::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  const std::optional<absl::ReaderMutexLock> after_copies = WaitForCopies();
  return AfterWrite(root_->Pwritev(offset, bytes, qiov, flags));
}

absl::Status BlockBackend::Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                                  uint32_t flags) {
  return Pwritev(offset, bytes, IoVector(const_cast<void*>(buf), bytes), flags);
}

absl::Status BlockBackend::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  const std::optional<absl::ReaderMutexLock> after_copies = WaitForCopies();
  return AfterWrite(root_->PwriteZeroes(offset, bytes, flags));
}

absl::Status BlockBackend::Pdiscard(uint64_t offset, uint64_t bytes) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  const std::optional<absl::ReaderMutexLock> after_copies = WaitForCopies();
  return root_->Pdiscard(offset, bytes);
}

absl::Status BlockBackend::Flush() {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  return root_->Flush();
}

absl::Status BlockBackend::Truncate(uint64_t length, bool exact, PreallocMode prealloc) {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  const std::optional<absl::ReaderMutexLock> after_copies = WaitForCopies();
  return root_->Truncate(length, exact, prealloc);
}

aio::Task<absl::Status> BlockBackend::CoPreadv(uint64_t offset, uint64_t bytes,
                                               const IoVector& qiov, uint32_t flags) {
  aio::RequestScope request;
  if (cor_) co_return co_await aio::Offload([&] { return Preadv(offset, bytes, qiov, flags); });
  STRATA_CO_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  co_return co_await root_->CoPreadv(offset, bytes, qiov, flags);
}

aio::Task<absl::Status> BlockBackend::CoPwritev(uint64_t offset, uint64_t bytes,
                                                const IoVector& qiov, uint32_t flags) {
  aio::RequestScope request;
  if (cor_) co_return co_await aio::Offload([&] { return Pwritev(offset, bytes, qiov, flags); });
  STRATA_CO_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  absl::Status s = co_await root_->CoPwritev(offset, bytes, qiov, flags);
  if (s.ok() && writethrough_) s = co_await root_->CoFlush();
  co_return s;
}

aio::Task<absl::Status> BlockBackend::CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                     uint32_t flags) {
  aio::RequestScope request;
  if (cor_) co_return co_await aio::Offload([&] { return PwriteZeroes(offset, bytes, flags); });
  STRATA_CO_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  absl::Status s = co_await root_->CoPwriteZeroes(offset, bytes, flags);
  if (s.ok() && writethrough_) s = co_await root_->CoFlush();
  co_return s;
}

aio::Task<absl::Status> BlockBackend::CoPdiscard(uint64_t offset, uint64_t bytes) {
  aio::RequestScope request;
  if (cor_) co_return co_await aio::Offload([&] { return Pdiscard(offset, bytes); });
  STRATA_CO_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  co_return co_await root_->CoPdiscard(offset, bytes);
}

aio::Task<absl::Status> BlockBackend::CoFlush() {
  aio::RequestScope request;
  if (!root_) co_return ErrnoError(ENOMEDIUM, "No medium found");
  co_return co_await root_->CoFlush();
}

aio::Task<absl::Status> BlockBackend::CoExecute(Request r) {
  const uint64_t bytes = r.bytes != 0 ? r.bytes : r.qiov.size();
  if ((r.op == Op::kRead || r.op == Op::kWrite) && r.qiov.size() < bytes) {
    co_return ErrnoError(EINVAL, "I/O vector shorter than the request");
  }
  switch (r.op) {
    case Op::kRead:
      co_return co_await CoPreadv(r.offset, bytes, r.qiov, r.flags);
    case Op::kWrite:
      co_return co_await CoPwritev(r.offset, bytes, r.qiov, r.flags);
    case Op::kWriteZeroes:
      co_return co_await CoPwriteZeroes(r.offset, r.bytes, r.flags);
    case Op::kDiscard:
      co_return co_await CoPdiscard(r.offset, r.bytes);
    case Op::kFlush:
      co_return co_await CoFlush();
  }
  co_return ErrnoError(EINVAL);
}

void BlockBackend::Submit(aio::IoContext& queue, Request request, Completion done) {
  // `done` never runs inside Submit: a request that completes without suspending (a
  // page-cache hit) has its completion posted to the loop, so a callback that submits the
  // next request does not recurse.
  auto start = [this, &queue, request = std::move(request), done = std::move(done)]() mutable {
    ++t_submit_depth;
    aio::Start(CoExecute(std::move(request)),
               [&queue, done = std::move(done)](absl::Status s) mutable {
                 if (t_submit_depth > 0) {  // completed inside a Submit on this thread
                   queue.Post([done = std::move(done), s = std::move(s)]() mutable {
                     done(std::move(s));
                   });
                 } else {
                   done(std::move(s));
                 }
               });
    --t_submit_depth;
  };
  if (aio::IoContext::Current() == &queue) {
    start();
  } else {
    queue.Post(std::move(start));
  }
}

absl::StatusOr<uint64_t> BlockBackend::GetLength() {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  return root_->GetLength();
}

}  // namespace strata
