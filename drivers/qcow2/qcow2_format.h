// strata qcow2: on-disk constants, masks and big-endian helpers. No I/O, no state.
// The authority is the qcow2 specification (QEMU docs/interop/qcow2.txt).
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_FORMAT_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_FORMAT_H_

#include <cstdint>

namespace strata::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kV2HeaderBytes = 72;
inline constexpr uint32_t kV3HeaderBytes = 104;
// What QEMU writes for v3: 104 + compression_type (1) + padding (7).
inline constexpr uint32_t kV3WrittenHeaderBytes = 112;
inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint32_t kMaxRefcountOrder = 6;
inline constexpr uint64_t kMaxReftableBytes = 8 << 20;
inline constexpr uint64_t kMaxL1Bytes = 32 << 20;
// QEMU's bound on the whole snapshot table (QCOW_MAX_SNAPSHOTS_SIZE: 1 KiB per entry).
inline constexpr uint64_t kMaxSnapshotTableBytes = uint64_t{64} << 20;
inline constexpr uint32_t kMaxBackingNameBytes = 1023;

// Incompatible feature bits.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompression = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatKnownMask = 0x1f;
// Compatible feature bits.
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
// Autoclear feature bits.
inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;
inline constexpr uint64_t kAutoclearDataFileRaw = 1ull << 1;
// The autoclear bits a writer keeps (it maintains what they promise); others are cleared
// when an image is opened for writing.
inline constexpr uint64_t kAutoclearKeptByWriters = kAutoclearBitmaps | kAutoclearDataFileRaw;

// Header extension magics.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtCrypto = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

// L1 / L2 / reftable entry masks.
inline constexpr uint64_t kOflagCopied = 1ull << 63;
inline constexpr uint64_t kOflagCompressed = 1ull << 62;
inline constexpr uint64_t kOflagZero = 1ull << 0;
inline constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;
inline constexpr uint64_t kL2StandardReservedMask = 0x3f000000000001feull;
// Extended L2 entries (incompatible bit 4): each entry is followed by a 64-bit bitmap of
// 32 subclusters, bit i "subcluster i allocated" (reads from the host cluster) and bit
// 32 + i "subcluster i reads as zeroes"; neither bit: the backing file (or zeroes).
inline constexpr uint32_t kSubclustersPerCluster = 32;
inline constexpr uint32_t kMinExtendedClusterBits = 14;  // subclusters of at least 512 bytes
inline constexpr uint64_t kL2BitmapAllAlloc = 0xffffffffull;
inline constexpr uint64_t kL2BitmapAllZero = 0xffffffffull << 32;
// Not a format bit: strata marks effective entries (Qcow2Instance::GetMapping) of zero
// and unallocated subclusters in a cluster that has a host cluster (QEMU's ZERO_ALLOC and
// UNALLOCATED_ALLOC) with it: they report their host offset, even offset 0 of an
// external data file; an unallocated one reads like unallocated. A reserved bit of the
// format, masked out of raw entries of extended images.
inline constexpr uint64_t kUnallocatedWithHost = 1ull << 61;
// The allocation (zero) bits of subclusters [first, end).
inline uint64_t SubclusterAllocRange(uint32_t first, uint32_t end) {
  return ((uint64_t{1} << end) - 1) & ~((uint64_t{1} << first) - 1);
}
inline uint64_t SubclusterZeroRange(uint32_t first, uint32_t end) {
  return SubclusterAllocRange(first, end) << 32;
}
// How many subclusters from `first` on are in the same state (the same allocation and
// zero bits) as `first` in `bitmap`.
inline uint32_t SameStateSubclusters(uint64_t bitmap, uint32_t first) {
  const uint64_t state = (bitmap >> first) & 0x100000001ull;
  uint32_t n = 1;
  while (first + n < kSubclustersPerCluster && ((bitmap >> (first + n)) & 0x100000001ull) == state) {
    ++n;
  }
  return n;
}

inline constexpr uint64_t kReftableOffsetMask = 0xfffffffffffffe00ull;
inline constexpr uint64_t kReftableReservedMask = 0x1ffull;

// A compressed cluster's descriptor (an L2 entry with kOflagCompressed): with
// x = 62 - (cluster_bits - 8), bits 0..x-1 hold the host byte offset of the compressed
// data and bits x..61 the number of 512-byte sectors it spans beyond the first.
struct CompressedExtent {
  uint64_t offset = 0;   // host byte offset of the compressed data
  uint64_t sectors = 0;  // 512-byte sectors spanned, from offset's sector on
  uint64_t sector_start() const { return offset & ~uint64_t{511}; }
  // Bytes from `offset` to the end of its last sector (what a reader fetches).
  uint64_t bytes() const { return sectors * 512 - (offset & 511); }
  // The host clusters the sectors touch (each holds one reference for this extent).
  uint64_t first_cluster(uint32_t cluster_bits) const { return sector_start() >> cluster_bits; }
  uint64_t last_cluster(uint32_t cluster_bits) const {
    return (sector_start() + sectors * 512 - 1) >> cluster_bits;
  }
};

inline CompressedExtent DecodeCompressed(uint64_t entry, uint32_t cluster_bits) {
  const uint32_t x = 62 - (cluster_bits - 8);
  return {entry & ((uint64_t{1} << x) - 1),
          ((entry >> x) & ((uint64_t{1} << (cluster_bits - 8)) - 1)) + 1};
}

// The L2 entry for `size` compressed bytes at host byte `offset`.
inline uint64_t EncodeCompressed(uint64_t offset, uint64_t size, uint32_t cluster_bits) {
  const uint32_t x = 62 - (cluster_bits - 8);
  const uint64_t extra_sectors = ((offset + size - 1) >> 9) - (offset >> 9);
  return kOflagCompressed | (extra_sectors << x) | offset;
}

// The feature name table QEMU writes (v3, cluster size > 4 KiB), in its order.
struct FeatureName {
  uint8_t type;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit;
  const char* name;
};
inline constexpr FeatureName kFeatureNames[] = {
    {0, 0, "dirty bit"},         {0, 1, "corrupt bit"},         {0, 2, "external data file"},
    {0, 3, "compression type"},  {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},           {2, 1, "raw external data"},
};
inline constexpr uint32_t kFeatureNameEntryBytes = 48;

inline uint64_t LoadBe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline void StoreBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline uint64_t DivRoundUp(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
inline uint64_t AlignUp(uint64_t a, uint64_t b) { return DivRoundUp(a, b) * b; }

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_FORMAT_H_
