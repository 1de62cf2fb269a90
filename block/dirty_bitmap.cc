#include "block/dirty_bitmap.h"

#include <algorithm>
#include <bit>

namespace strata {
namespace {

uint64_t DivRoundUp(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

DirtyBitmap::DirtyBitmap(uint64_t size, uint64_t granularity)
    : size_(size),
      granularity_(granularity),
      granules_(DivRoundUp(size, granularity)),
      words_(DivRoundUp(granules_, 64), 0) {}

void DirtyBitmap::SetGranules(uint64_t first, uint64_t count) {
  const uint64_t end = std::min(granules_, first + count);
  for (uint64_t g = first; g < end;) {
    if (g % 64 == 0 && end - g >= 64) {
      words_[g / 64] = ~uint64_t{0};
      g += 64;
    } else {
      words_[g / 64] |= uint64_t{1} << (g % 64);
      ++g;
    }
  }
}

void DirtyBitmap::SetRange(uint64_t offset, uint64_t bytes) {
  if (bytes == 0 || offset >= size_) return;
  const uint64_t end = std::min(size_, offset + bytes);
  const uint64_t first = offset / granularity_;
  SetGranules(first, DivRoundUp(end, granularity_) - first);
}

void DirtyBitmap::SetAll() { SetGranules(0, granules_); }

void DirtyBitmap::Clear() { std::fill(words_.begin(), words_.end(), 0); }

bool DirtyBitmap::Empty() const {
  return std::all_of(words_.begin(), words_.end(), [](uint64_t w) { return w == 0; });
}

bool DirtyBitmap::GranulesClean(uint64_t first, uint64_t count) const {
  const uint64_t end = std::min(granules_, first + count);
  for (uint64_t g = first; g < end;) {
    if (g % 64 == 0 && end - g >= 64) {
      if (words_[g / 64] != 0) return false;
      g += 64;
    } else {
      if (IsDirty(g)) return false;
      ++g;
    }
  }
  return true;
}

uint64_t DirtyBitmap::DirtyBytes() const {
  uint64_t n = 0;
  for (uint64_t w : words_) n += std::popcount(w);
  return n * granularity_;
}

std::optional<std::pair<uint64_t, uint64_t>> DirtyBitmap::NextDirtyRun(uint64_t offset) const {
  if (offset >= size_) return std::nullopt;
  uint64_t g = offset / granularity_;
  while (g < granules_ && !IsDirty(g)) {
    if (g % 64 == 0 && words_[g / 64] == 0) {
      g += 64;
    } else {
      ++g;
    }
  }
  if (g >= granules_) return std::nullopt;
  uint64_t end = g;
  while (end < granules_ && IsDirty(end)) {
    if (end % 64 == 0 && words_[end / 64] == ~uint64_t{0}) {
      end += 64;
    } else {
      ++end;
    }
  }
  end = std::min(end, granules_);
  const uint64_t start = std::max(offset, g * granularity_);
  return std::make_pair(start, std::min(size_, end * granularity_) - start);
}

uint64_t DirtyBitmap::RunAt(uint64_t offset, uint64_t max_bytes, bool* dirty) const {
  const uint64_t end = std::min(size_, offset + max_bytes);
  uint64_t g = offset / granularity_;
  *dirty = IsDirty(g);
  const uint64_t last = DivRoundUp(end, granularity_);  // granules up to `end`
  ++g;
  while (g < last) {
    const uint64_t word = words_[g / 64];
    if (g % 64 == 0 && last - g >= 64 && word == (*dirty ? ~uint64_t{0} : 0)) {
      g += 64;
    } else if (IsDirty(g) == *dirty) {
      ++g;
    } else {
      break;
    }
  }
  return std::min(end, g * granularity_) - offset;
}

void DirtyBitmap::Merge(const DirtyBitmap& other) {
  if (other.granularity_ == granularity_) {
    const size_t n = std::min(words_.size(), other.words_.size());
    for (size_t i = 0; i < n; ++i) words_[i] |= other.words_[i];
    // Bits of `other` past this bitmap's end must not land in the padding.
    if (granules_ % 64 != 0 && n == words_.size()) {
      words_.back() &= (uint64_t{1} << (granules_ % 64)) - 1;
    }
    return;
  }
  uint64_t pos = 0;
  while (auto run = other.NextDirtyRun(pos)) {
    SetRange(run->first, run->second);
    pos = run->first + run->second;
  }
}

void DirtyBitmap::Resize(uint64_t size) {
  size_ = size;
  granules_ = DivRoundUp(size, granularity_);
  words_.resize(DivRoundUp(granules_, 64), 0);
  if (granules_ % 64 != 0) words_.back() &= (uint64_t{1} << (granules_ % 64)) - 1;
}

void DirtyBitmap::Serialize(uint64_t first, uint64_t count, std::vector<uint8_t>* out) const {
  const uint64_t bytes = DivRoundUp(count, 8);
  for (uint64_t b = 0; b < bytes; ++b) {
    const uint64_t g = first + b * 8;
    uint8_t v = 0;
    if (g < granules_) {
      v = static_cast<uint8_t>(words_[g / 64] >> (g % 64));
      // Bits past `count` or past the end stay clean.
      const uint64_t valid = std::min<uint64_t>({8, first + count - g, granules_ - g});
      if (valid < 8) v &= static_cast<uint8_t>((1u << valid) - 1);
    }
    out->push_back(v);
  }
}

void DirtyBitmap::Deserialize(uint64_t first, uint64_t count, const uint8_t* bytes) {
  for (uint64_t i = 0; i < count && first + i < granules_; ++i) {
    const uint64_t g = first + i;
    const uint64_t bit = uint64_t{1} << (g % 64);
    if ((bytes[i / 8] >> (i % 8)) & 1) {
      words_[g / 64] |= bit;
    } else {
      words_[g / 64] &= ~bit;
    }
  }
}

}  // namespace strata
