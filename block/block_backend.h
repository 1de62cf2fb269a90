// strata: BlockBackend, the handle a user of the stack holds (a guest device, a tool).
//
// It owns the root node of a graph and applies the guest-facing rules that do not belong to
// any node: requests must lie inside the device (EIO otherwise, as QEMU's
// blk_check_byte_request), requests are capped at QEMU's maximum size, and in writethrough
// mode every write is flushed before it completes.
//
// Thread safety: I/O methods may be called concurrently.
#ifndef STRATA_BLOCK_BLOCK_BACKEND_H_
#define STRATA_BLOCK_BLOCK_BACKEND_H_

#include <memory>

#include "block/node.h"

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

  // Flushes and closes the graph; the backend is unusable afterwards. Idempotent.
  absl::Status Close();

  BlockDriverState& root() const { return *root_; }
  bool writethrough() const { return writethrough_; }

 private:
  absl::Status CheckRequest(uint64_t offset, uint64_t bytes);
  absl::Status AfterWrite(absl::Status status);

  std::unique_ptr<BlockDriverState> root_;
  const bool writethrough_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_BLOCK_BACKEND_H_
