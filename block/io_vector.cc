// strata: scatter/gather lists and aligned buffers (see io_vector.h).
#include "block/io_vector.h"

#include <cassert>
#include <cstring>
#include <new>

namespace strata {

void IoVector::Append(void* base, size_t len) {
  if (len == 0) return;
  iov_.push_back(iovec{base, len});
  size_ += len;
}

void IoVector::Concat(const IoVector& other) {
  for (const iovec& v : other.iov_) Append(v.iov_base, v.iov_len);
}

IoVector IoVector::Slice(size_t offset, size_t len) const {
  assert(offset + len <= size_);
  IoVector out;
  for (const iovec& v : iov_) {
    if (len == 0) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    size_t take = std::min(v.iov_len - offset, len);
    out.Append(static_cast<uint8_t*>(v.iov_base) + offset, take);
    len -= take;
    offset = 0;
  }
  return out;
}

namespace {

// Calls fn(piece_pointer, piece_length, position_in_request) for [offset, offset + n).
template <typename Fn>
void ForEachPiece(const std::vector<iovec>& iov, size_t offset, size_t n, Fn fn) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == n) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    size_t take = std::min(v.iov_len - offset, n - done);
    fn(static_cast<uint8_t*>(v.iov_base) + offset, take, done);
    done += take;
    offset = 0;
  }
}

}  // namespace

void IoVector::CopyFrom(size_t offset, const void* src, size_t n) const {
  assert(offset + n <= size_);
  const uint8_t* s = static_cast<const uint8_t*>(src);
  ForEachPiece(iov_, offset, n, [&](uint8_t* p, size_t len, size_t pos) {
    std::memcpy(p, s + pos, len);
  });
}

void IoVector::CopyTo(size_t offset, void* dst, size_t n) const {
  assert(offset + n <= size_);
  uint8_t* d = static_cast<uint8_t*>(dst);
  ForEachPiece(iov_, offset, n, [&](uint8_t* p, size_t len, size_t pos) {
    std::memcpy(d + pos, p, len);
  });
}

void IoVector::Memset(size_t offset, uint8_t byte, size_t n) const {
  assert(offset + n <= size_);
  ForEachPiece(iov_, offset, n, [&](uint8_t* p, size_t len, size_t) {
    std::memset(p, byte, len);
  });
}

bool IoVector::IsZero() const {
  for (const iovec& v : iov_) {
    if (!BufferIsZero(v.iov_base, v.iov_len)) return false;
  }
  return true;
}

bool IoVector::IsAligned(size_t mem_align, size_t len_align) const {
  for (const iovec& v : iov_) {
    if (reinterpret_cast<uintptr_t>(v.iov_base) % mem_align != 0) return false;
    if (v.iov_len % len_align != 0) return false;
  }
  return true;
}

bool BufferIsZero(const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  while (n > 0 && reinterpret_cast<uintptr_t>(b) % sizeof(uint64_t) != 0) {
    if (*b != 0) return false;
    ++b;
    --n;
  }
  const uint64_t* w = reinterpret_cast<const uint64_t*>(b);
  for (; n >= 4 * sizeof(uint64_t); n -= 4 * sizeof(uint64_t), w += 4) {
    if ((w[0] | w[1] | w[2] | w[3]) != 0) return false;
  }
  b = reinterpret_cast<const uint8_t*>(w);
  for (; n > 0; --n, ++b) {
    if (*b != 0) return false;
  }
  return true;
}

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment)
    : AlignedBuffer(size, alignment, kUninitialized) {
  std::memset(data_.get(), 0, size);
}

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment, Uninitialized) : size_(size) {
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size == 0 ? alignment : size) != 0) {
    throw std::bad_alloc();
  }
  data_.reset(static_cast<uint8_t*>(p));
}

}  // namespace strata
