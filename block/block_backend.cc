// strata: the guest-facing handle (see block_backend.h).
#include "block/block_backend.h"

#include <cerrno>

#include "block/status.h"

namespace strata {

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
  return root_->Preadv(offset, bytes, qiov, flags);
}

absl::Status BlockBackend::Pread(uint64_t offset, uint64_t bytes, void* buf) {
  return Preadv(offset, bytes, IoVector(buf, bytes));
}

absl::Status BlockBackend::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  return AfterWrite(root_->Pwritev(offset, bytes, qiov, flags));
}

absl::Status BlockBackend::Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                                  uint32_t flags) {
  return Pwritev(offset, bytes, IoVector(const_cast<void*>(buf), bytes), flags);
}

absl::Status BlockBackend::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  return AfterWrite(root_->PwriteZeroes(offset, bytes, flags));
}

absl::Status BlockBackend::Pdiscard(uint64_t offset, uint64_t bytes) {
  STRATA_RETURN_IF_ERROR(CheckRequest(offset, bytes));
  return root_->Pdiscard(offset, bytes);
}

absl::Status BlockBackend::Flush() {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  return root_->Flush();
}

absl::Status BlockBackend::Truncate(uint64_t length, bool exact, PreallocMode prealloc) {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  return root_->Truncate(length, exact, prealloc);
}

absl::StatusOr<uint64_t> BlockBackend::GetLength() {
  if (!root_) return ErrnoError(ENOMEDIUM, "No medium found");
  return root_->GetLength();
}

}  // namespace strata
