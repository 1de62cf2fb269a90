// strata qcow2: a write-back cache of metadata tables (L2 tables or refcount blocks), one
// cluster per entry, keyed by host offset.
//
// Entries are loaded on demand and written back only by Flush(): the owner decides the
// order between caches (refcount blocks before the L2 tables that reference new
// clusters, L2 tables before L1). The size is a soft limit: only clean entries are
// evicted. A write-back covers only the part of a table that changed (whole 4 KiB
// blocks around the changed bytes): an allocating write in writethrough mode writes 4 KiB
// of L2 table, not 64 KiB. Not thread-safe: the qcow2 instance's lock guards it.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_CACHE_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "aio/task.h"
#include "block/child.h"

namespace strata::qcow2 {

class Qcow2TableCache {
 public:
  // `load_event`/`write_event` are announced on `file` before each read/write.
  // A load event of nullopt announces nothing on a miss (refcount blocks announce
  // refblock_load on every lookup instead, as QEMU does).
  Qcow2TableCache(BdrvChild* file, uint64_t table_bytes, size_t max_entries,
                  std::optional<DebugEvent> load_event, DebugEvent write_event)
      : file_(file), table_bytes_(table_bytes), max_entries_(max_entries),
        load_event_(load_event), write_event_(write_event) {}

  // The table at `offset`, read from disk on a miss. The pointer stays valid until the
  // next call that may evict (Get, Create, Flush).
  absl::StatusOr<uint8_t*> Get(uint64_t offset);
  // The table at `offset` if it is cached (counted as a use), else nullptr. No I/O.
  uint8_t* Peek(uint64_t offset);
  // A new all-zero table at `offset` (not read from disk), marked dirty.
  absl::StatusOr<uint8_t*> Create(uint64_t offset);
  // Marks the whole table at `offset` changed.
  void MarkDirty(uint64_t offset);
  // Marks bytes [begin, begin + len) of the table at `offset` changed.
  void MarkDirty(uint64_t offset, uint64_t begin, uint64_t len);
  // Runs before every table write; an error fails the write (overlap checks).
  using WriteCheck = std::function<absl::Status(uint64_t offset)>;
  void set_write_check(WriteCheck check) { write_check_ = std::move(check); }
  bool HasDirty() const { return dirty_count_ > 0; }
  // Writes every dirty table. After OK, all are clean (not yet stable: caller flushes).
  absl::Status Flush();
  // Flush through the file's coroutine hook: the same writes in the same order. The
  // owner's lock must be held across the whole await (nothing else may touch the cache
  // while a write is suspended).
  aio::Task<absl::Status> CoFlush();
  // Forgets every entry (must be clean), e.g. after structures moved.
  void Clear();
  // Drops the entry at `offset` without writing it (its cluster was freed).
  void Discard(uint64_t offset);
  // Drops every clean entry not used since the previous call (cache-clean-interval);
  // returns how many went.
  size_t DropUnused();
  size_t size() const { return entries_.size(); }
  size_t max_entries() const { return max_entries_; }

  // Loading a table without the owner's lock held across the read (the coroutine path):
  // BeginLoad under the lock, read the table's bytes with the lock released, FinishLoad
  // under the lock again. Meanwhile another thread may load, change, write back, evict
  // or discard the same table, so the read may be stale or torn: FinishLoad keeps it
  // only if none of Create, MarkDirty, a write-back, Discard or Clear touched `offset`
  // since BeginLoad, and no entry for it exists (an existing entry is newer and wins).
  // One load per offset at a time (the owner's loading_tables_ guarantees it). Returns
  // true if the table is cached afterwards; false: the caller retries its lookup.
  // `data` null: the read failed, the load is just forgotten.
  void BeginLoad(uint64_t offset) { loads_[offset] = false; }
  bool FinishLoad(uint64_t offset, std::vector<uint8_t>* data);
  uint64_t table_bytes() const { return table_bytes_; }
  const std::optional<DebugEvent>& load_event() const { return load_event_; }

 private:
  struct Entry {
    std::vector<uint8_t> data;
    bool dirty = false;
    uint64_t dirty_begin = 0, dirty_end = 0;  // the changed bytes, while dirty
    bool used = true;  // since the last DropUnused
    std::list<uint64_t>::iterator lru;
  };
  absl::Status EvictIfFull();
  // One table's write-back: BeginWrite checks it and names the bytes to write (the
  // changed blocks), EndWrite marks the entry clean once they are written.
  struct TableWrite {
    uint64_t file_offset;
    uint64_t bytes;
    uint8_t* data;
  };
  absl::StatusOr<TableWrite> BeginWrite(uint64_t offset, Entry& e);
  void EndWrite(Entry& e);
  absl::Status WriteEntry(uint64_t offset, Entry& e);
  std::vector<uint64_t> DirtyOffsets() const;
  // Marks a load in flight of `offset` (BeginLoad) as raced by a change.
  void TouchLoad(uint64_t offset) {
    if (auto it = loads_.find(offset); it != loads_.end()) it->second = true;
  }
  // Inserts a new entry for `offset` (absent), evicting a clean one if full.
  absl::StatusOr<Entry*> InsertEntry(uint64_t offset);

  BdrvChild* const file_;
  const uint64_t table_bytes_;
  const size_t max_entries_;
  const std::optional<DebugEvent> load_event_;
  const DebugEvent write_event_;
  std::unordered_map<uint64_t, Entry> entries_;
  std::list<uint64_t> lru_;  // Most recently used first.
  size_t dirty_count_ = 0;
  WriteCheck write_check_;
  // Loads in flight without the lock (BeginLoad): offset -> raced by a change since.
  std::unordered_map<uint64_t, bool> loads_;
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_CACHE_H_
