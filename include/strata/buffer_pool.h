// strata/buffer_pool.h (public API): a free list of equal-sized aligned buffers for the workers of a copy.
//
//   strata::BufferPool pool(4 << 20);
//   strata::BufferPool::Lease buf = pool.Take();   // back to the pool when it goes
//
// A copy (convert, commit) handles its data in chunks, several at once. Allocating a
// fresh multi-megabyte buffer per chunk costs more than the copy itself: the allocator
// maps new memory, the kernel faults in and clears every page. With a pool, a buffer is
// leased for one chunk and comes back when the lease ends, so a whole copy allocates only
// as many buffers as run at once. Leased contents are undefined (what the last chunk
// left): use only the bytes you filled. Thread-safe.
#ifndef STRATA_STRATA_BUFFER_POOL_H_
#define STRATA_STRATA_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "strata/io_vector.h"

namespace strata {

class BufferPool {
 public:
  // Buffers of `buffer_bytes`, aligned for O_DIRECT.
  explicit BufferPool(size_t buffer_bytes) : buffer_bytes_(buffer_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // One buffer, returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), buffer_(std::move(other.buffer_)) {
      other.pool_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Return(std::move(buffer_));
    }
    uint8_t* data() const { return buffer_.data(); }
    size_t size() const { return buffer_.size(); }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, AlignedBuffer buffer) : pool_(pool), buffer_(std::move(buffer)) {}
    BufferPool* pool_;
    AlignedBuffer buffer_;
  };

  // A free buffer, or a new one if all are leased. The pool must outlive its leases.
  Lease Take();

 private:
  void Return(AlignedBuffer buffer);

  const size_t buffer_bytes_;
  absl::Mutex mu_;
  std::vector<AlignedBuffer> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata

#endif  // STRATA_STRATA_BUFFER_POOL_H_
