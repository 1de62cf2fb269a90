// strata qcow2: host cluster refcounts: the refcount table, refcount blocks (through a
// write-back cache), cluster allocation and freeing, refcount block allocation (including
// blocks that describe themselves) and refcount table growth.
//
// Crash safety: a new refcount block is written and made stable before the reftable entry
// that points at it; a grown reftable and its new blocks are written and made stable before
// the one header write that switches to them; the old table is freed only afterwards. A
// crash at any point leaves at worst leaked clusters.
//
// The pre-counted pool: FillPool raises the refcounts of the next free clusters ahead of
// use, and AllocateClusters hands those out without touching a refcount block. Once the
// pool's increments are stable, L2 tables using its clusters need no refcount write and
// no disk flush before them (writethrough: one flush per allocating write instead of
// two). The allocator treats pool clusters as free, so the layout is the one it would
// have chosen anyway. Unused pool clusters are leaks after a crash, never corruption;
// ReleasePool gives them back before a clean close and before anything that reads
// refcounts as references (check, a new refcount structure). Refcount increments sit in the cache
// until the owner flushes it, which the owner does before writing any L2 table that uses
// the new clusters.
//
// Not thread-safe: the qcow2 instance's metadata lock guards every call.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_REFCOUNT_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_REFCOUNT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "block/child.h"
#include "drivers/qcow2/qcow2_cache.h"

namespace strata::qcow2 {

class Qcow2Refcounts {
 public:
  // Writes header bytes 48..59 (reftable offset and cluster count) in one synchronous
  // write; the owner keeps its header copy in sync.
  using SwitchTableFn = std::function<absl::Status(uint64_t offset, uint32_t clusters)>;

  // `cache_blocks`: how many refcount blocks the cache holds (a soft limit).
  Qcow2Refcounts(BdrvChild* file, uint32_t cluster_bits, uint32_t refcount_order,
                 size_t cache_blocks, SwitchTableFn switch_table);

  // Reads the refcount table. `file_length` seeds the allocator.
  absl::Status Load(uint64_t table_offset, uint32_t table_clusters, uint64_t file_length);

  absl::StatusOr<uint64_t> GetRefcount(uint64_t cluster_index);
  // Adds `delta` to the refcount of `cluster_index` (allocating its refcount block first if
  // needed). Fails with EINVAL if the result would be negative or overflow the width.
  // `discard`: if the refcount drops to 0, the cluster is queued for TakeDiscards.
  absl::Status UpdateRefcount(uint64_t cluster_index, int64_t delta, bool discard = false);
  // Clusters freed with `discard` since the last call (QEMU's pass-discard-*: the caller
  // discards them in the file once the refcounts that free them are written; nothing
  // references them, so a crash before that leaves only a leak).
  std::vector<uint64_t> TakeDiscards() { return std::exchange(discards_, {}); }
  bool HasDiscards() const { return !discards_.empty(); }
  // Finds `count` contiguous free clusters, sets their refcounts to 1 and returns the host
  // offset of the first. The clusters' contents are undefined. The run passes the
  // allocation check unless `counting_known_metadata` (make_empty counting the header and
  // tables it has just laid out at the start of the file).
  absl::StatusOr<uint64_t> AllocateClusters(uint64_t count, bool counting_known_metadata = false);
  // Where AllocateClusters(count) would place its run, if it can do so without I/O: every
  // refcount block the search and the run touch exists and is cached, and no block or
  // table growth is needed. nullopt otherwise (also for a corrupt block offset, which the
  // real allocation reports). Changes nothing but the cache's LRU order; the coroutine
  // path asks this before allocating on a loop thread, under the same lock hold.
  std::optional<uint64_t> PeekFreeRun(uint64_t count);
  // Whether changing the refcounts of `count` clusters from host byte `offset` does no
  // I/O: each of their refcount blocks exists and is cached. Changes nothing but the
  // cache's LRU order (as PeekFreeRun; for the coroutine path's write-back).
  bool BlocksCached(uint64_t offset, uint64_t count);
  // Whether FillPool(target) would do no I/O: the free clusters it would take lie in
  // existing, cached blocks. Changes nothing but the cache's LRU order.
  bool FillPoolIsCached(uint64_t target);
  // Allocates `size` bytes (at most a cluster) for compressed data, QEMU's way: packed
  // after the previous compressed allocation while it fits (a run may continue into the
  // next cluster if that one is free and adjacent), else at the first free cluster. Each
  // cluster the bytes touch gains one reference. Returns the host byte offset.
  absl::StatusOr<uint64_t> AllocateBytes(uint64_t size);
  // Decrements the refcounts of `count` clusters at `offset` (`discard` as UpdateRefcount).
  absl::Status FreeClusters(uint64_t offset, uint64_t count, bool discard = false);

  // Adds the first free clusters from the allocation hint to the pool until it holds
  // `target` (their refcounts raised in the cache; the caller flushes them).
  absl::Status FillPool(uint64_t target);
  // Gives every unused pool cluster back (refcount lowered in the cache).
  absl::Status ReleasePool();
  size_t pool_size() const { return pool_.size(); }

  // Writes dirty refcount blocks (not made stable: the caller flushes the file).
  absl::Status Flush() { return cache_.Flush(); }
  // Flush's coroutine form (Qcow2TableCache::CoFlush: the owner's lock held across it).
  aio::Task<absl::Status> CoFlush() { return cache_.CoFlush(); }
  bool HasDirty() const { return cache_.HasDirty(); }

  // Replaces the in-memory table by an empty one of `clusters` clusters at `offset` whose
  // on-disk copy the caller has zeroed (make_empty); drops the cache, restarts the
  // allocator at cluster 0.
  void ResetToEmptyTable(uint64_t offset, uint32_t clusters);
  // Points table entry `index` at the refcount block at `block_offset` and writes that
  // entry to disk synchronously (make_empty's hook-up of its first block).
  absl::Status HookBlock(uint64_t index, uint64_t block_offset);

  // Forgets every cached refcount block, dirty or not, and the pool (after the structure
  // was replaced).
  void DropCache() {
    cache_.Clear();
    pool_.clear();
    free_byte_offset_ = 0;
  }
  // Drops cached blocks unused since the previous call (see Qcow2TableCache::DropUnused).
  size_t DropUnusedBlocks() { return cache_.DropUnused(); }
  size_t cached_blocks() const { return cache_.size(); }
  // Refcount entries per refcount block.
  uint64_t entries_per_block() const { return entries_per_block_; }
  // Encodes refcounts[first, first + entries_per_block()) (missing ones are 0) as one
  // on-disk refcount block.
  std::vector<uint8_t> EncodeBlock(const std::vector<uint64_t>& refcounts,
                                   uint64_t first) const;
  // The largest refcount the entry width holds.
  uint64_t refcount_max() const { return refcount_max_; }

  uint64_t table_offset() const { return table_offset_; }
  // The refcount table's entries (refcount block offsets, 0 where none).
  const std::vector<uint64_t>& table() const { return table_; }
  // Changes whenever table() may have changed.
  uint64_t table_epoch() const { return table_epoch_; }
  // Called with a description when a refcount block offset is found corrupt; its status
  // is what the lookup fails with. Default: a plain EIO.
  using CorruptionFn = std::function<absl::Status(const std::string& message)>;
  void set_corruption_handler(CorruptionFn fn) { corruption_ = std::move(fn); }
  // Called before each refcount block write (see Qcow2TableCache::set_write_check).
  void set_write_check(Qcow2TableCache::WriteCheck check) {
    cache_.set_write_check(std::move(check));
  }
  // Called with every run of clusters the allocator is about to hand out (offset, bytes),
  // before any refcount changes. The refcounts are untrusted input: a run they call free
  // may hold the header or other metadata. A non-OK status (the instance marks the image
  // corrupt) fails the allocation with nothing changed.
  using RangeCheck = std::function<absl::Status(uint64_t offset, uint64_t bytes)>;
  void set_allocation_check(RangeCheck check) { allocation_check_ = std::move(check); }
  // Called before each write of refcount table entries (offset, bytes); non-OK: not written.
  void set_table_write_check(RangeCheck check) { table_write_check_ = std::move(check); }
  uint32_t table_clusters() const { return table_clusters_; }
  // One past the highest cluster index known to be in use or allocated.
  uint64_t end_cluster() const { return end_cluster_; }
  // One past the last cluster with a nonzero refcount, searching down from end_cluster()
  // and stopping at `floor` (the answer is at least `floor`).
  absl::StatusOr<uint64_t> UsedEnd(uint64_t floor);

 private:
  uint64_t EntriesPerBlock() const { return entries_per_block_; }
  uint64_t GetEntry(const uint8_t* block, uint64_t index) const;
  // The refcount block of table entry `table_index` if it exists and is cached (counted
  // as a use), else nullptr (also past the table or for a misaligned offset). No I/O.
  const uint8_t* PeekBlock(uint64_t table_index);
  void SetEntry(uint8_t* block, uint64_t index, uint64_t value) const;
  // First run of `count` clusters with refcount 0 at or after the allocation hint, passed
  // through the allocation check.
  absl::StatusOr<uint64_t> FindFree(uint64_t count, bool check = true);
  // Makes sure reftable entry `table_index` points at a refcount block. Sets *allocated
  // when it had to allocate clusters (callers must then search for free space again).
  absl::Status EnsureBlock(uint64_t table_index, bool* allocated);
  absl::Status GrowTable(uint64_t needed_index);
  // OK for a cluster-aligned block offset; otherwise reports the corruption.
  absl::Status CheckBlockOffset(uint64_t table_index, uint64_t block_offset);
  absl::Status WriteTableEntry(uint64_t table_index);

  BdrvChild* const file_;
  const uint32_t cluster_bits_;
  const uint64_t cluster_size_;
  const uint32_t refcount_order_;
  const uint64_t entries_per_block_;
  const uint64_t refcount_max_;
  SwitchTableFn switch_table_;
  Qcow2TableCache cache_;
  std::vector<uint64_t> table_;
  uint64_t table_offset_ = 0;
  uint32_t table_clusters_ = 0;
  uint64_t free_hint_ = 0;
  uint64_t table_epoch_ = 0;
  CorruptionFn corruption_;
  RangeCheck allocation_check_;
  RangeCheck table_write_check_;
  uint64_t end_cluster_ = 0;
  std::set<uint64_t> pool_;  // cluster indices counted ahead of use
  std::vector<uint64_t> discards_;  // freed clusters to discard (TakeDiscards)
  uint64_t free_byte_offset_ = 0;  // where AllocateBytes packs next (0: a new cluster)
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_REFCOUNT_H_
