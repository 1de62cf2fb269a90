// strata: AlignedBufferRecycler, free lists of large aligned buffers by size class, for
// request paths whose transfer sizes vary (the NBD server's read replies and write
// payloads).
//
// Why: a fresh buffer of a megabyte or more comes from mmap, and the kernel faults in and
// clears every page of it on first touch; freed, it goes back with munmap. Per request
// that costs more than the transfer itself (measured: 1 MiB NBD reads spent most of
// their server CPU there). Recycled buffers skip all of it. BufferPool (buffer_pool.h)
// does the same for copies whose chunks all have one size.
//
// Buffers of at least kMinRecycled bytes are rounded up to a power of two; smaller ones
// are plain allocations (malloc serves them from its heap anyway). At most
// `max_cached_bytes` wait in the lists; beyond that, returned buffers are freed.
// Contents of a taken buffer are undefined. Thread-safe.
#ifndef STRATA_BLOCK_BUFFER_RECYCLER_H_
#define STRATA_BLOCK_BUFFER_RECYCLER_H_

#include <cstddef>
#include <map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "block/io_vector.h"

namespace strata {

class AlignedBufferRecycler {
 public:
  static constexpr size_t kMinRecycled = 64 * 1024;

  explicit AlignedBufferRecycler(size_t max_cached_bytes = 64u << 20)
      : max_cached_bytes_(max_cached_bytes) {}
  AlignedBufferRecycler(const AlignedBufferRecycler&) = delete;
  AlignedBufferRecycler& operator=(const AlignedBufferRecycler&) = delete;

  // A 4096-aligned buffer of at least `size` bytes (its size() may be larger).
  AlignedBuffer Take(size_t size);
  // Keeps `buffer` for a later Take if it is of a recycled size and there is room.
  void Give(AlignedBuffer buffer);

 private:
  const size_t max_cached_bytes_;
  absl::Mutex mu_;
  std::map<size_t, std::vector<AlignedBuffer>> free_ ABSL_GUARDED_BY(mu_);
  size_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata

#endif  // STRATA_BLOCK_BUFFER_RECYCLER_H_
