// strata qcow2: metadata table cache (see qcow2_cache.h).
#include "drivers/qcow2/qcow2_cache.h"

#include <algorithm>

#include "block/node.h"
#include "block/status.h"

namespace strata::qcow2 {
namespace {
// The smallest table write: a page, the unit file systems and disks write anyway.
constexpr uint64_t kWriteBlock = 4096;
}  // namespace

absl::StatusOr<Qcow2TableCache::TableWrite> Qcow2TableCache::BeginWrite(uint64_t offset,
                                                                        Entry& e) {
  if (write_check_) STRATA_RETURN_IF_ERROR(write_check_(offset));
  file_->NotifyDebugEvent(write_event_);
  // Whole blocks of the file around the changed bytes (at least its request alignment).
  const uint64_t block = std::min<uint64_t>(
      table_bytes_, std::max<uint64_t>(kWriteBlock, file_->node().request_alignment()));
  const uint64_t begin = e.dirty_begin / block * block;
  const uint64_t end = std::min(table_bytes_, (e.dirty_end + block - 1) / block * block);
  TouchLoad(offset);
  return TableWrite{offset + begin, end - begin, e.data.data() + begin};
}

void Qcow2TableCache::EndWrite(Entry& e) {
  e.dirty = false;
  --dirty_count_;
}

absl::Status Qcow2TableCache::WriteEntry(uint64_t offset, Entry& e) {
  STRATA_ASSIGN_OR_RETURN(const TableWrite w, BeginWrite(offset, e));
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(w.file_offset, w.bytes, w.data));
  EndWrite(e);
  return absl::OkStatus();
}

absl::Status Qcow2TableCache::EvictIfFull() {
  if (entries_.size() < max_entries_) return absl::OkStatus();
  // Evict the least recently used clean entry. If every entry is dirty the cache grows past
  // its size (a soft limit): dirty tables leave only through the owner's ordered flush.
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    auto e = entries_.find(*it);
    if (!e->second.dirty) {
      lru_.erase(e->second.lru);
      entries_.erase(e);
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

uint8_t* Qcow2TableCache::Peek(uint64_t offset) {
  auto it = entries_.find(offset);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  it->second.used = true;
  return it->second.data.data();
}

absl::StatusOr<Qcow2TableCache::Entry*> Qcow2TableCache::InsertEntry(uint64_t offset) {
  STRATA_RETURN_IF_ERROR(EvictIfFull());
  lru_.push_front(offset);
  Entry& e = entries_[offset];
  e.lru = lru_.begin();
  return &e;
}

absl::StatusOr<uint8_t*> Qcow2TableCache::Get(uint64_t offset) {
  if (uint8_t* cached = Peek(offset)) return cached;
  std::vector<uint8_t> data(table_bytes_);
  if (load_event_) file_->NotifyDebugEvent(*load_event_);
  STRATA_RETURN_IF_ERROR(file_->node().Pread(offset, table_bytes_, data.data()));
  STRATA_ASSIGN_OR_RETURN(Entry * e, InsertEntry(offset));
  e->data = std::move(data);
  return e->data.data();
}

bool Qcow2TableCache::FinishLoad(uint64_t offset, std::vector<uint8_t>* data) {
  auto load = loads_.extract(offset);
  if (entries_.count(offset) != 0) return true;
  if (data == nullptr || load.empty() || load.mapped() || data->size() != table_bytes_) {
    return false;
  }
  absl::StatusOr<Entry*> e = InsertEntry(offset);
  if (!e.ok()) return false;
  (*e)->data = std::move(*data);
  return true;
}

absl::StatusOr<uint8_t*> Qcow2TableCache::Create(uint64_t offset) {
  TouchLoad(offset);
  auto it = entries_.find(offset);
  if (it == entries_.end()) {
    STRATA_ASSIGN_OR_RETURN(Entry * e, InsertEntry(offset));
    e->data.assign(table_bytes_, 0);
    it = entries_.find(offset);
  } else {
    std::fill(it->second.data.begin(), it->second.data.end(), 0);
    it->second.used = true;
  }
  MarkDirty(offset);
  return it->second.data.data();
}

void Qcow2TableCache::MarkDirty(uint64_t offset) { MarkDirty(offset, 0, table_bytes_); }

void Qcow2TableCache::MarkDirty(uint64_t offset, uint64_t begin, uint64_t len) {
  TouchLoad(offset);
  auto it = entries_.find(offset);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (!e.dirty) {
    e.dirty = true;
    e.dirty_begin = begin;
    e.dirty_end = begin + len;
    ++dirty_count_;
    return;
  }
  e.dirty_begin = std::min(e.dirty_begin, begin);
  e.dirty_end = std::max(e.dirty_end, begin + len);
}

std::vector<uint64_t> Qcow2TableCache::DirtyOffsets() const {
  // Ascending offsets: sequential writes.
  std::vector<uint64_t> dirty;
  for (const auto& [offset, e] : entries_) {
    if (e.dirty) dirty.push_back(offset);
  }
  std::sort(dirty.begin(), dirty.end());
  return dirty;
}

absl::Status Qcow2TableCache::Flush() {
  if (dirty_count_ == 0) return absl::OkStatus();
  for (uint64_t offset : DirtyOffsets()) {
    STRATA_RETURN_IF_ERROR(WriteEntry(offset, entries_[offset]));
  }
  return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2TableCache::CoFlush() {
  if (dirty_count_ == 0) co_return absl::OkStatus();
  for (uint64_t offset : DirtyOffsets()) {
    Entry& e = entries_[offset];
    STRATA_CO_ASSIGN_OR_RETURN(const TableWrite w, BeginWrite(offset, e));
    STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPwritev(
        w.file_offset, w.bytes, IoVector(w.data, w.bytes), 0));
    EndWrite(e);
  }
  co_return absl::OkStatus();
}

void Qcow2TableCache::Clear() {
  for (auto& [offset, raced] : loads_) raced = true;
  entries_.clear();
  lru_.clear();
  dirty_count_ = 0;
}

void Qcow2TableCache::Discard(uint64_t offset) {
  TouchLoad(offset);
  auto it = entries_.find(offset);
  if (it == entries_.end()) return;
  if (it->second.dirty) --dirty_count_;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t Qcow2TableCache::DropUnused() {
  size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (!e.used && !e.dirty) {
      lru_.erase(e.lru);
      it = entries_.erase(it);
      ++dropped;
      continue;
    }
    e.used = false;
    ++it;
  }
  return dropped;
}

}  // namespace strata::qcow2
