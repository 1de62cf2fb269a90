// strata: AlignedBufferRecycler (see buffer_recycler.h).
#include "block/buffer_recycler.h"

#include <bit>

namespace strata {

AlignedBuffer AlignedBufferRecycler::Take(size_t size) {
  if (size < kMinRecycled) {
    return AlignedBuffer(std::max<size_t>(size, 1), 4096, AlignedBuffer::kUninitialized);
  }
  const size_t size_class = std::bit_ceil(size);
  {
    absl::MutexLock lock(&mu_);
    auto it = free_.find(size_class);
    if (it != free_.end() && !it->second.empty()) {
      AlignedBuffer buffer = std::move(it->second.back());
      it->second.pop_back();
      cached_bytes_ -= size_class;
      return buffer;
    }
  }
  return AlignedBuffer(size_class, 4096, AlignedBuffer::kUninitialized);
}

void AlignedBufferRecycler::Give(AlignedBuffer buffer) {
  const size_t size = buffer.size();
  if (size < kMinRecycled || !std::has_single_bit(size)) return;
  absl::MutexLock lock(&mu_);
  if (cached_bytes_ + size > max_cached_bytes_) return;  // freed as `buffer` goes
  cached_bytes_ += size;
  free_[size].push_back(std::move(buffer));
}

}  // namespace strata
