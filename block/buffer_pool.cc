// strata: the copy buffer pool (see buffer_pool.h).
#include "block/buffer_pool.h"

namespace strata {

BufferPool::Lease BufferPool::Take() {
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      AlignedBuffer buffer = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(buffer));
    }
  }
  return Lease(this, AlignedBuffer(buffer_bytes_, 4096, AlignedBuffer::kUninitialized));
}

void BufferPool::Return(AlignedBuffer buffer) {
  absl::MutexLock lock(&mu_);
  free_.push_back(std::move(buffer));
}

}  // namespace strata
