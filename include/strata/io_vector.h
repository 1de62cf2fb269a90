// strata/io_vector.h (public API): scatter/gather lists (QEMU's QEMUIOVector) and aligned buffers.
//
//   strata::IoVector v(header, 512);          // two pieces of the caller's memory
//   v.Append(payload, 3584);
//   strata::AlignedBuffer bounce(4096);       // owned, aligned for O_DIRECT
//
// An IoVector names memory owned by someone else: a request's data travels through the
// graph as slices of the caller's buffers, bounced only where alignment (O_DIRECT) or a
// format transformation demands it. An AlignedBuffer owns memory suitable for O_DIRECT.
#ifndef STRATA_STRATA_IO_VECTOR_H_
#define STRATA_STRATA_IO_VECTOR_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace strata {

// A non-owning list of (pointer, length) pieces; `size()` is their total. Copying an
// IoVector copies the list, never the data. Not thread-safe; the memory it names must
// outlive every use.
class IoVector {
 public:
  IoVector() = default;
  IoVector(void* base, size_t len) { Append(base, len); }

  // Adds a piece at the end. Zero-length pieces are dropped.
  void Append(void* base, size_t len);
  // Appends every piece of `other`.
  void Concat(const IoVector& other);

  size_t size() const { return size_; }
  const std::vector<iovec>& iovecs() const { return iov_; }

  // The bytes [offset, offset + len) of this vector, as a new list over the same memory.
  // Requires offset + len <= size().
  IoVector Slice(size_t offset, size_t len) const;

  // Copies `n` bytes from `src` into this vector at `offset`. Requires offset + n <= size().
  void CopyFrom(size_t offset, const void* src, size_t n) const;
  // Copies `n` bytes of this vector at `offset` to `dst`. Requires offset + n <= size().
  void CopyTo(size_t offset, void* dst, size_t n) const;
  // Fills `n` bytes at `offset` with `byte`.
  void Memset(size_t offset, uint8_t byte, size_t n) const;
  // True if every byte is zero.
  bool IsZero() const;
  // True if every piece starts at a multiple of `mem_align` and has a length that is a
  // multiple of `len_align` (what O_DIRECT needs).
  bool IsAligned(size_t mem_align, size_t len_align) const;

 private:
  std::vector<iovec> iov_;
  size_t size_ = 0;
};

// True if all `n` bytes at `p` are zero (fast word-wise scan).
bool BufferIsZero(const void* p, size_t n);

// Heap memory aligned for direct I/O, freed on destruction. Move-only.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Allocates `size` bytes aligned to `alignment` (a power of two, >= sizeof(void*)).
  // Contents are zeroed. Aborts only if the allocator fails (as `new` would).
  AlignedBuffer(size_t size, size_t alignment = 4096);
  // The same, contents left undefined: for buffers about to be filled whole.
  enum Uninitialized { kUninitialized };
  AlignedBuffer(size_t size, size_t alignment, Uninitialized);

  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  IoVector AsIoVector() const { return IoVector(data_.get(), size_); }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, FreeDeleter> data_;
  size_t size_ = 0;
};

}  // namespace strata

#endif  // STRATA_STRATA_IO_VECTOR_H_
