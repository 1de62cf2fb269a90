// strata qcow2: refcounts and allocation (see qcow2_refcount.h).
#include "drivers/qcow2/qcow2_refcount.h"

#include <cerrno>

#include <cinttypes>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/node.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"

namespace strata::qcow2 {

Qcow2Refcounts::Qcow2Refcounts(BdrvChild* file, uint32_t cluster_bits, uint32_t refcount_order,
                               size_t cache_blocks, SwitchTableFn switch_table)
    : file_(file),
      cluster_bits_(cluster_bits),
      cluster_size_(uint64_t{1} << cluster_bits),
      refcount_order_(refcount_order),
      entries_per_block_((uint64_t{1} << cluster_bits) * 8 >> refcount_order),
      refcount_max_(refcount_order == 6 ? ~uint64_t{0}
                                        : (uint64_t{1} << (1u << refcount_order)) - 1),
      switch_table_(std::move(switch_table)),
      cache_(file, uint64_t{1} << cluster_bits, cache_blocks, std::nullopt,
             DebugEvent::kRefblockUpdatePart) {}

absl::Status Qcow2Refcounts::Load(uint64_t table_offset, uint32_t table_clusters,
                                  uint64_t file_length) {
  table_offset_ = table_offset;
  table_clusters_ = table_clusters;
  uint64_t entries = uint64_t{table_clusters} * cluster_size_ / 8;
  std::vector<uint8_t> raw(entries * 8);
  file_->NotifyDebugEvent(DebugEvent::kReftableLoad);
  STRATA_RETURN_IF_ERROR(file_->node().Pread(table_offset, raw.size(), raw.data()));
  table_.resize(entries);
  ++table_epoch_;
  for (uint64_t i = 0; i < entries; ++i) table_[i] = LoadBe64(&raw[i * 8]);
  end_cluster_ = DivRoundUp(file_length, cluster_size_);
  free_hint_ = 0;
  return absl::OkStatus();
}

std::vector<uint8_t> Qcow2Refcounts::EncodeBlock(const std::vector<uint64_t>& refcounts,
                                                 uint64_t first) const {
  std::vector<uint8_t> block(cluster_size_, 0);
  for (uint64_t i = 0; i < entries_per_block_ && first + i < refcounts.size(); ++i) {
    SetEntry(block.data(), i, std::min(refcounts[first + i], refcount_max_));
  }
  return block;
}

uint64_t Qcow2Refcounts::GetEntry(const uint8_t* block, uint64_t index) const {
  const uint32_t bits = 1u << refcount_order_;
  if (bits >= 8) {
    const uint8_t* p = block + index * (bits / 8);
    uint64_t v = 0;
    for (uint32_t i = 0; i < bits / 8; ++i) v = (v << 8) | p[i];
    return v;
  }
  const uint32_t per_byte = 8 / bits;
  return (block[index / per_byte] >> ((index % per_byte) * bits)) & ((1u << bits) - 1);
}

void Qcow2Refcounts::SetEntry(uint8_t* block, uint64_t index, uint64_t value) const {
  const uint32_t bits = 1u << refcount_order_;
  if (bits >= 8) {
    uint8_t* p = block + index * (bits / 8);
    for (int i = bits / 8 - 1; i >= 0; --i, value >>= 8) p[i] = static_cast<uint8_t>(value);
    return;
  }
  const uint32_t per_byte = 8 / bits;
  const uint32_t shift = (index % per_byte) * bits;
  const uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << shift);
  block[index / per_byte] =
      static_cast<uint8_t>((block[index / per_byte] & ~mask) | ((value << shift) & mask));
}

absl::Status Qcow2Refcounts::CheckBlockOffset(uint64_t table_index, uint64_t block_offset) {
  if ((block_offset & (cluster_size_ - 1)) == 0) return absl::OkStatus();
  const std::string message =
      absl::StrFormat("Refblock offset %#" PRIx64 " unaligned (reftable index: %#" PRIx64 ")",
                      block_offset, table_index);
  return corruption_ ? corruption_(message) : ErrnoError(EIO, message);
}

absl::StatusOr<uint64_t> Qcow2Refcounts::GetRefcount(uint64_t cluster_index) {
  uint64_t table_index = cluster_index / entries_per_block_;
  if (table_index >= table_.size()) return 0;
  uint64_t block_offset = table_[table_index] & kReftableOffsetMask;
  if (block_offset == 0) return 0;
  STRATA_RETURN_IF_ERROR(CheckBlockOffset(table_index, block_offset));
  // No refblock_load here: QEMU raises it only for lookups that modify (UpdateRefcount).
  STRATA_ASSIGN_OR_RETURN(uint8_t * block, cache_.Get(block_offset));
  return GetEntry(block, cluster_index % entries_per_block_);
}

absl::StatusOr<uint64_t> Qcow2Refcounts::UsedEnd(uint64_t floor) {
  uint64_t end = end_cluster_;
  while (end > floor) {
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(end - 1));
    if (rc != 0) break;
    --end;
  }
  return std::max(end, floor);
}

absl::StatusOr<uint64_t> Qcow2Refcounts::FindFree(uint64_t count, bool check) {
  uint64_t start = free_hint_;
  uint64_t run = 0;
  for (uint64_t c = start;; ++c) {
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(c));
    if (rc != 0 && (pool_.empty() || !pool_.contains(c))) {
      run = 0;
      start = c + 1;
      continue;
    }
    if (++run == count) {
      if (allocation_check_ && check) {
        STRATA_RETURN_IF_ERROR(allocation_check_(start << cluster_bits_, count << cluster_bits_));
      }
      return start;
    }
  }
}

void Qcow2Refcounts::ResetToEmptyTable(uint64_t offset, uint32_t clusters) {
  cache_.Clear();
  pool_.clear();
  free_byte_offset_ = 0;
  table_offset_ = offset;
  table_clusters_ = clusters;
  table_.assign(uint64_t{clusters} * cluster_size_ / 8, 0);
  ++table_epoch_;
  free_hint_ = 0;
  end_cluster_ = 0;
}

absl::Status Qcow2Refcounts::HookBlock(uint64_t index, uint64_t block_offset) {
  table_[index] = block_offset;
  ++table_epoch_;
  STRATA_RETURN_IF_ERROR(WriteTableEntry(index));
  return file_->node().Flush();
}

absl::Status Qcow2Refcounts::WriteTableEntry(uint64_t table_index) {
  uint8_t be[8];
  StoreBe64(be, table_[table_index]);
  if (table_write_check_) {
    STRATA_RETURN_IF_ERROR(table_write_check_(table_offset_ + table_index * 8, 8));
  }
  return file_->node().Pwrite(table_offset_ + table_index * 8, 8, be);
}

absl::Status Qcow2Refcounts::EnsureBlock(uint64_t table_index, bool* allocated) {
  file_->NotifyDebugEvent(DebugEvent::kRefblockAlloc);
  if (table_index >= table_.size()) {
    STRATA_RETURN_IF_ERROR(GrowTable(table_index));
    *allocated = true;
    if (table_index >= table_.size()) return ErrnoError(EIO, "Refcount table growth failed");
  }
  if ((table_[table_index] & kReftableOffsetMask) != 0) return absl::OkStatus();
  *allocated = true;
  STRATA_ASSIGN_OR_RETURN(uint64_t cluster, FindFree(1));
  uint64_t owner = cluster / entries_per_block_;
  if (owner != table_index) {
    // The new block's own refcount lives in another block: make sure that one exists
    // (QEMU's order: it goes after this block's cluster), then count the new block there.
    // Retry if that took this block's cluster after all (a grown table may).
    bool inner = false;
    const uint64_t hint = free_hint_;
    free_hint_ = cluster + 1;
    absl::Status owner_status = EnsureBlock(owner, &inner);
    if (!owner_status.ok()) {
      free_hint_ = hint;
      return owner_status;
    }
    if (inner) {
      STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(cluster));
      if (rc != 0) {
        free_hint_ = hint;
        return EnsureBlock(table_index, allocated);
      }
    }
    // A pool cluster is counted already.
    if (pool_.empty() || pool_.erase(cluster) == 0) {
      STRATA_RETURN_IF_ERROR(UpdateRefcount(cluster, 1));
    }
  }
  uint64_t offset = cluster << cluster_bits_;
  if (offset == 0) return ErrnoError(EIO, "Preventing invalid allocation of refcount block at offset 0");
  STRATA_ASSIGN_OR_RETURN(uint8_t * block, cache_.Create(offset));
  if (owner == table_index) SetEntry(block, cluster % entries_per_block_, 1);
  end_cluster_ = std::max(end_cluster_, cluster + 1);
  // The block (and any refcount of it held elsewhere) must be stable before the reftable
  // entry makes it reachable.
  file_->NotifyDebugEvent(DebugEvent::kRefblockAllocWrite);
  STRATA_RETURN_IF_ERROR(cache_.Flush());
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  table_[table_index] = offset;
  ++table_epoch_;
  file_->NotifyDebugEvent(DebugEvent::kRefblockAllocHookup);
  absl::Status s = WriteTableEntry(table_index);
  if (s.ok()) s = file_->node().Flush();
  if (!s.ok()) {
    table_[table_index] = 0;
    ++table_epoch_;
    cache_.Discard(offset);
    return s;
  }
  return absl::OkStatus();
}

absl::Status Qcow2Refcounts::GrowTable(uint64_t needed_index) {
  file_->NotifyDebugEvent(DebugEvent::kReftableGrow);
  // Everything from `area` on is unused: lay out the new blocks and table there, each new
  // block counting the area clusters it covers (a self-describing area).
  const uint64_t area = end_cluster_;
  const uint64_t entries_per_table_cluster = cluster_size_ / 8;
  uint64_t blocks = 0, table_clusters = table_clusters_;
  for (int iteration = 0; iteration < 64; ++iteration) {
    uint64_t area_end = area + blocks + table_clusters;
    uint64_t last_index = (area_end - 1) / entries_per_block_;
    uint64_t entries = std::max(needed_index, last_index) + 1;
    uint64_t want_table = DivRoundUp(std::max<uint64_t>(entries, table_.size() * 3 / 2),
                                     entries_per_table_cluster);
    uint64_t want_blocks = 0;
    for (uint64_t i = area / entries_per_block_; i <= last_index; ++i) {
      if (i >= table_.size() || (table_[i] & kReftableOffsetMask) == 0) ++want_blocks;
    }
    if (want_table == table_clusters && want_blocks == blocks) break;
    table_clusters = std::max(table_clusters, want_table);
    blocks = want_blocks;
  }
  if (table_clusters * cluster_size_ > kMaxReftableBytes) {
    return ErrnoError(EFBIG, "Reference count table too large");
  }
  const uint64_t area_end = area + blocks + table_clusters;
  if (allocation_check_) {
    STRATA_RETURN_IF_ERROR(
        allocation_check_(area << cluster_bits_, (area_end - area) << cluster_bits_));
  }
  std::vector<uint64_t> new_table(table_clusters * entries_per_table_cluster, 0);
  std::copy(table_.begin(), table_.end(), new_table.begin());
  std::vector<uint8_t> block_data(blocks * cluster_size_, 0);
  uint64_t next_block = area;
  for (uint64_t i = area / entries_per_block_; i <= (area_end - 1) / entries_per_block_; ++i) {
    if (i < table_.size() && (table_[i] & kReftableOffsetMask) != 0) {
      // An existing block covers part of the area: count the area clusters there.
      for (uint64_t c = std::max(area, i * entries_per_block_);
           c < std::min(area_end, (i + 1) * entries_per_block_); ++c) {
        STRATA_RETURN_IF_ERROR(UpdateRefcount(c, 1));
      }
      continue;
    }
    uint8_t* block = &block_data[(next_block - area) * cluster_size_];
    for (uint64_t c = std::max(area, i * entries_per_block_);
         c < std::min(area_end, (i + 1) * entries_per_block_); ++c) {
      SetEntry(block, c % entries_per_block_, 1);
    }
    new_table[i] = next_block << cluster_bits_;
    ++next_block;
  }
  STRATA_RETURN_IF_ERROR(cache_.Flush());
  file_->NotifyDebugEvent(DebugEvent::kRefblockAllocWriteBlocks);
  if (blocks > 0) {
    STRATA_RETURN_IF_ERROR(
        file_->node().Pwrite(area << cluster_bits_, block_data.size(), block_data.data()));
  }
  std::vector<uint8_t> raw(new_table.size() * 8);
  for (size_t i = 0; i < new_table.size(); ++i) StoreBe64(&raw[i * 8], new_table[i]);
  const uint64_t new_table_offset = (area + blocks) << cluster_bits_;
  file_->NotifyDebugEvent(DebugEvent::kRefblockAllocWriteTable);
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(new_table_offset, raw.size(), raw.data()));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  file_->NotifyDebugEvent(DebugEvent::kRefblockAllocSwitchTable);
  STRATA_RETURN_IF_ERROR(switch_table_(new_table_offset, static_cast<uint32_t>(table_clusters)));
  const uint64_t old_offset = table_offset_;
  const uint64_t old_clusters = table_clusters_;
  table_ = std::move(new_table);
  ++table_epoch_;
  table_offset_ = new_table_offset;
  table_clusters_ = static_cast<uint32_t>(table_clusters);
  end_cluster_ = std::max(end_cluster_, area_end);
  // The old table is unreachable now; freeing it can only leak on a crash.
  return FreeClusters(old_offset, old_clusters);
}

absl::Status Qcow2Refcounts::UpdateRefcount(uint64_t cluster_index, int64_t delta,
                                            bool discard) {
  uint64_t table_index = cluster_index / entries_per_block_;
  bool allocated = false;
  STRATA_RETURN_IF_ERROR(EnsureBlock(table_index, &allocated));
  uint64_t block_offset = table_[table_index] & kReftableOffsetMask;
  STRATA_RETURN_IF_ERROR(CheckBlockOffset(table_index, block_offset));
  file_->NotifyDebugEvent(DebugEvent::kRefblockLoad);
  STRATA_ASSIGN_OR_RETURN(uint8_t * block, cache_.Get(block_offset));
  uint64_t index = cluster_index % entries_per_block_;
  uint64_t value = GetEntry(block, index);
  if ((delta < 0 && value < static_cast<uint64_t>(-delta)) ||
      (delta > 0 && refcount_max_ - value < static_cast<uint64_t>(delta))) {
    return ErrnoError(EINVAL, absl::StrCat("Refcount of cluster ", cluster_index,
                                           " would leave its range"));
  }
  value += delta;
  SetEntry(block, index, value);
  const uint64_t bits = uint64_t{1} << refcount_order_;
  cache_.MarkDirty(block_offset, index * bits / 8, std::max<uint64_t>(1, bits / 8));
  if (value == 0 && cluster_index < free_hint_) free_hint_ = cluster_index;
  if (value == 0 && delta < 0 && discard) discards_.push_back(cluster_index);
  // The cluster AllocateBytes packs into was freed: it may be reused whole, so compressed
  // data must never be packed after its old contents again.
  if (value == 0 && free_byte_offset_ != 0 &&
      (free_byte_offset_ >> cluster_bits_) == cluster_index) {
    free_byte_offset_ = 0;
  }
  if (value > 0) end_cluster_ = std::max(end_cluster_, cluster_index + 1);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Qcow2Refcounts::AllocateClusters(uint64_t count,
                                                          bool counting_known_metadata) {
  file_->NotifyDebugEvent(DebugEvent::kClusterAlloc);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    STRATA_ASSIGN_OR_RETURN(uint64_t start, FindFree(count, !counting_known_metadata));
    // QEMU's order: the run is taken first, the refcount blocks it needs go after it (the
    // search for them starts past the run). A grown table may still land in the run:
    // then search again.
    const uint64_t hint = free_hint_;
    free_hint_ = start + count;
    bool allocated = false;
    for (uint64_t i = start / entries_per_block_; i <= (start + count - 1) / entries_per_block_;
         ++i) {
      STRATA_RETURN_IF_ERROR(EnsureBlock(i, &allocated));
    }
    if (allocated) {
      bool clash = false;
      for (uint64_t c = start; c < start + count && !clash; ++c) {
        STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(c));
        clash = rc != 0 && (pool_.empty() || !pool_.contains(c));
      }
      if (clash) {
        free_hint_ = hint;
        continue;
      }
    }
    for (uint64_t c = start; c < start + count; ++c) {
      if (!pool_.empty() && pool_.erase(c) > 0) continue;  // counted already
      STRATA_RETURN_IF_ERROR(UpdateRefcount(c, 1));
    }
    free_hint_ = start + count;
    return start << cluster_bits_;
  }
  return ErrnoError(EIO, "Could not allocate clusters");
}

std::optional<uint64_t> Qcow2Refcounts::PeekFreeRun(uint64_t count) {
  uint64_t start = free_hint_, run = 0;
  uint64_t block_index = UINT64_MAX;  // the table index `block` belongs to
  const uint8_t* block = nullptr;
  for (uint64_t c = free_hint_;; ++c) {
    const uint64_t table_index = c / entries_per_block_;
    if (table_index != block_index) {
      // Past the table, a missing block or one not cached: the allocation needs I/O.
      block = PeekBlock(table_index);
      if (block == nullptr) return std::nullopt;
      block_index = table_index;
    }
    const uint64_t rc = GetEntry(block, c % entries_per_block_);
    if (rc != 0 && (pool_.empty() || !pool_.contains(c))) {
      run = 0;
      start = c + 1;
      continue;
    }
    if (++run == count) return start;
  }
}

const uint8_t* Qcow2Refcounts::PeekBlock(uint64_t table_index) {
  if (table_index >= table_.size()) return nullptr;
  const uint64_t block_offset = table_[table_index] & kReftableOffsetMask;
  if (block_offset == 0 || (block_offset & (cluster_size_ - 1)) != 0) return nullptr;
  return cache_.Peek(block_offset);
}

bool Qcow2Refcounts::BlocksCached(uint64_t offset, uint64_t count) {
  if (count == 0) return true;
  const uint64_t first = (offset >> cluster_bits_) / entries_per_block_;
  const uint64_t last = ((offset >> cluster_bits_) + count - 1) / entries_per_block_;
  for (uint64_t i = first; i <= last; ++i) {
    if (PeekBlock(i) == nullptr) return false;
  }
  return true;
}

bool Qcow2Refcounts::FillPoolIsCached(uint64_t target) {
  // FillPool's walk, reading only cached blocks: it takes free clusters from the hint
  // on (pool clusters count as used there: their refcounts are raised already).
  uint64_t needed = target > pool_.size() ? target - pool_.size() : 0;
  uint64_t block_index = UINT64_MAX;
  const uint8_t* block = nullptr;
  for (uint64_t c = free_hint_; needed > 0; ++c) {
    const uint64_t table_index = c / entries_per_block_;
    if (table_index != block_index) {
      block = PeekBlock(table_index);
      if (block == nullptr) return false;
      block_index = table_index;
    }
    if (GetEntry(block, c % entries_per_block_) == 0) --needed;
  }
  return true;
}

absl::StatusOr<uint64_t> Qcow2Refcounts::AllocateBytes(uint64_t size) {
  file_->NotifyDebugEvent(DebugEvent::kClusterAllocBytes);
  if (size == 0 || size > cluster_size_) return ErrnoError(EINVAL);
  uint64_t offset = free_byte_offset_;
  if (offset != 0) {
    // A full refcount, or a cluster freed meanwhile (it may be reused whole): start anew.
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(offset >> cluster_bits_));
    if (rc == refcount_max_ || rc == 0) offset = 0;
  }
  uint64_t free_in_cluster = cluster_size_ - (offset & (cluster_size_ - 1));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint64_t new_cluster = UINT64_MAX;
    bool precounted = false;  // the new cluster came from the pool (counted already)
    if (offset == 0 || free_in_cluster < size) {
      STRATA_ASSIGN_OR_RETURN(const uint64_t c, FindFree(1));
      free_hint_ = c + 1;
      if (c == 0) {
        return corruption_ ? corruption_("Preventing invalid allocation of compressed cluster "
                                         "at offset 0")
                           : ErrnoError(EIO);
      }
      new_cluster = c;
      precounted = !pool_.empty() && pool_.erase(c) > 0;
      if (offset == 0 || ((offset + cluster_size_ - 1) >> cluster_bits_) != c) {
        offset = c << cluster_bits_;
        free_in_cluster = cluster_size_;
      } else {
        free_in_cluster += cluster_size_;
      }
    }
    const uint64_t first = offset >> cluster_bits_;
    const uint64_t last = (offset + size - 1) >> cluster_bits_;
    // Refcount blocks first; if one had to be allocated, start over in a new cluster.
    bool allocated = false;
    for (uint64_t i = first / entries_per_block_; i <= last / entries_per_block_; ++i) {
      STRATA_RETURN_IF_ERROR(EnsureBlock(i, &allocated));
    }
    if (allocated) {
      if (precounted) pool_.insert(new_cluster);
      offset = 0;
      continue;
    }
    for (uint64_t c = first; c <= last; ++c) {
      if (c == new_cluster && precounted) continue;
      STRATA_RETURN_IF_ERROR(UpdateRefcount(c, 1));
    }
    free_byte_offset_ = (offset + size) & (cluster_size_ - 1) ? offset + size : 0;
    return offset;
  }
  return ErrnoError(EIO, "Could not allocate bytes");
}

absl::Status Qcow2Refcounts::FillPool(uint64_t target) {
  uint64_t c = free_hint_;
  while (pool_.size() < target) {
    STRATA_ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(c));
    if (rc != 0) {
      ++c;
      continue;
    }
    // The refcount block first; if that took clusters, `c` may be one of them: look again.
    bool allocated = false;
    STRATA_RETURN_IF_ERROR(EnsureBlock(c / entries_per_block_, &allocated));
    if (allocated) continue;
    if (allocation_check_) {
      STRATA_RETURN_IF_ERROR(allocation_check_(c << cluster_bits_, cluster_size_));
    }
    STRATA_RETURN_IF_ERROR(UpdateRefcount(c, 1));
    pool_.insert(c);
    ++c;
  }
  return absl::OkStatus();
}

absl::Status Qcow2Refcounts::ReleasePool() {
  while (!pool_.empty()) {
    const uint64_t c = *pool_.begin();
    STRATA_RETURN_IF_ERROR(UpdateRefcount(c, -1));
    pool_.erase(pool_.begin());
  }
  return absl::OkStatus();
}

absl::Status Qcow2Refcounts::FreeClusters(uint64_t offset, uint64_t count, bool discard) {
  file_->NotifyDebugEvent(DebugEvent::kClusterFree);
  for (uint64_t c = offset >> cluster_bits_; c < (offset >> cluster_bits_) + count; ++c) {
    STRATA_RETURN_IF_ERROR(UpdateRefcount(c, -1, discard));
  }
  return absl::OkStatus();
}

}  // namespace strata::qcow2
