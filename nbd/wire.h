// strata nbd: big-endian encoding of protocol messages into byte buffers and bounds-checked
// decoding out of them. Decoding never reads past the buffer: a short message makes the
// reader fail (ok() false), and every value read after that is zero.
#ifndef STRATA_NBD_WIRE_H_
#define STRATA_NBD_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace strata::nbd {

// Appends values to a byte vector.
class WireWriter {
 public:
  explicit WireWriter(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Put(v, 2); }
  void U32(uint32_t v) { Put(v, 4); }
  void U64(uint64_t v) { Put(v, 8); }
  void Bytes(absl::string_view s) { out_->insert(out_->end(), s.begin(), s.end()); }
  void Zeroes(size_t n) { out_->insert(out_->end(), n, 0); }

 private:
  void Put(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_->push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>* out_;
};

// Reads values from a byte span.
class WireReader {
 public:
  explicit WireReader(absl::Span<const uint8_t> in) : in_(in) {}
  uint8_t U8() { return static_cast<uint8_t>(Get(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Get(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Get(4)); }
  uint64_t U64() { return Get(8); }
  // `n` bytes as a string; empty (and failed) when fewer remain.
  std::string String(size_t n) {
    if (!Take(n)) return {};
    return std::string(reinterpret_cast<const char*>(in_.data() + pos_ - n), n);
  }
  void Skip(size_t n) { Take(n); }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  bool ok() const { return ok_; }
  // Whether every byte was consumed and nothing failed.
  bool AtEnd() const { return ok_ && pos_ == in_.size(); }

 private:
  bool Take(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  uint64_t Get(int bytes) {
    if (!Take(bytes)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | in_[pos_ - bytes + i];
    return v;
  }
  absl::Span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace strata::nbd

#endif  // STRATA_NBD_WIRE_H_
