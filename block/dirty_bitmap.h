// strata: a dirty bitmap over a disk: one bit per `granularity` bytes, set when a write
// touches any byte of that granule (QEMU's BdrvDirtyBitmap, without the hierarchy).
//
// Used for persistent bitmaps (qcow2 stores them, incremental backups read them) and by
// anything else that must know which ranges changed since a point in time. The bit of
// granule g is bit g % 64 of word g / 64; the serialized form is little-endian bytes, bit
// 0 of byte 0 being granule 0 (the qcow2 bitmap data format).
//
// Thread safety: none; the owner serialises access.
#ifndef STRATA_BLOCK_DIRTY_BITMAP_H_
#define STRATA_BLOCK_DIRTY_BITMAP_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace strata {

class DirtyBitmap {
 public:
  // `granularity`: a power of two, at least 512 (the caller validates it).
  DirtyBitmap(uint64_t size, uint64_t granularity);

  uint64_t size() const { return size_; }
  uint64_t granularity() const { return granularity_; }
  // Bits in the bitmap: ceil(size / granularity).
  uint64_t granules() const { return granules_; }

  // Marks every granule that [offset, offset + bytes) touches; bytes past size() are
  // ignored.
  void SetRange(uint64_t offset, uint64_t bytes);
  void SetAll();
  void Clear();
  bool IsDirty(uint64_t granule) const {
    return (words_[granule / 64] >> (granule % 64)) & 1;
  }
  bool Empty() const;
  // Dirty bytes (granules × granularity, the last granule counted as whole, as QEMU's
  // dirty-count).
  uint64_t DirtyBytes() const;
  // The first dirty run at or after byte `offset`: (start, length) in bytes, granule
  // aligned except that it ends at size() at most. nullopt if nothing is dirty there.
  std::optional<std::pair<uint64_t, uint64_t>> NextDirtyRun(uint64_t offset) const;
  // The run starting at byte `offset` (< size()): its state in *dirty, and its length
  // in bytes, at most `max_bytes` and never past size().
  uint64_t RunAt(uint64_t offset, uint64_t max_bytes, bool* dirty) const;
  // Marks every range dirty in `other` (any granularity, same meaning of offsets).
  void Merge(const DirtyBitmap& other);
  // Changes the disk size: granules past the new end are dropped, new ones are clean.
  void Resize(uint64_t size);

  // The bits of granules [first, first + count) as little-endian bytes, (count + 7) / 8
  // of them, appended to `out`; granules past granules() read as clean. `first` is a
  // multiple of 8.
  void Serialize(uint64_t first, uint64_t count, std::vector<uint8_t>* out) const;
  // Sets granules [first, first + count) from bytes in Serialize's form (bits past
  // granules() are ignored); `first` a multiple of 8.
  void Deserialize(uint64_t first, uint64_t count, const uint8_t* bytes);
  // Sets granules [first, first + count) all dirty (clamped to granules()).
  void SetGranules(uint64_t first, uint64_t count);
  // Whether granules [first, first + count) are all clean.
  bool GranulesClean(uint64_t first, uint64_t count) const;

 private:
  uint64_t size_;
  uint64_t granularity_;
  uint64_t granules_;
  std::vector<uint64_t> words_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_DIRTY_BITMAP_H_
