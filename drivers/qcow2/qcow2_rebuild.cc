// strata qcow2: rebuilding the refcount structure from scratch (qemu-img check -r all,
// when on-disk refcounts are beyond incremental repair).
//
// The in-memory reference counts of the check (one entry per cluster) are treated as the
// concatenation of all refcount blocks. Every refblock-sized range with a used cluster
// gets a new refblock in a free cluster (accounted in the same array, so the structure
// describes itself), then a new reftable is placed in the first free run; blocks covering
// the table are rewritten, repeating until the table size settles. The new blocks and the
// table are written before one synchronous header write (bytes 48..59) switches to them,
// so a crash before that switch leaves the old structure in force and after it the new
// one; the old structure becomes leaked clusters, freed by the check's leak pass.
#include <cerrno>
#include <cstdio>

#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

// Finds `count` contiguous clusters with refcount 0 in `refs` from `*first_free` on
// (growing `refs` past the end if needed), sets them to 1 and returns the first index.
uint64_t AllocateInMemory(std::vector<uint64_t>& refs, uint64_t count, uint64_t* first_free,
                          uint64_t grow_granularity) {
  uint64_t cluster = *first_free;
  uint64_t run = 0;
  bool first_gap = true;
  for (; cluster < refs.size() && run < count; ++cluster) {
    if (refs[cluster] == 0) {
      ++run;
      if (first_gap) {
        *first_free = cluster;
        first_gap = false;
      }
    } else {
      run = 0;
    }
  }
  if (run < count) {
    uint64_t needed = cluster + count - run;
    refs.resize(DivRoundUp(needed, grow_granularity) * grow_granularity, 0);
  }
  cluster -= run;
  for (uint64_t i = 0; i < count; ++i) refs[cluster + i] = 1;
  return cluster;
}

}  // namespace

absl::StatusOr<bool> Qcow2Instance::WriteRebuiltRefblocks(const Qcow2Refcounts& layout,
                                                          std::vector<uint64_t>& refs,
                                                          uint64_t first_cluster,
                                                          uint64_t end_cluster,
                                                          std::vector<uint64_t>& reftable) {
  const uint64_t per_block = layout.entries_per_block();
  uint64_t first_free = 0;
  bool grown = false;
  for (uint64_t cluster = first_cluster; cluster < end_cluster; ++cluster) {
    if (cluster >= refs.size() || refs[cluster] == 0) continue;
    const uint64_t index = cluster / per_block;
    const uint64_t block_start = index * per_block;
    uint64_t block_offset;
    if (index < reftable.size() && reftable[index] != 0) {
      block_offset = reftable[index];
    } else {
      // Never inside a range whose block was already written.
      first_free = std::max(first_free, block_start);
      uint64_t block_cluster = AllocateInMemory(refs, 1, &first_free, per_block);
      block_offset = block_cluster << cluster_bits_;
      if (block_cluster >= end_cluster) end_cluster = block_cluster + 1;
      if (index >= reftable.size()) {
        reftable.resize(AlignUp((index + 1) * 8, cluster_size_) / 8, 0);
        grown = true;
      }
      reftable[index] = block_offset;
    }
    std::vector<uint8_t> block = layout.EncodeBlock(refs, block_start);
    STRATA_RETURN_IF_ERROR(file_->node().Pwrite(block_offset, block.size(), block.data()));
    cluster = block_start + per_block - 1;  // this block is done
  }
  return grown;
}

absl::StatusOr<std::pair<uint64_t, uint32_t>> Qcow2Instance::WriteRefcountStructure(
    const Qcow2Refcounts& layout, std::vector<uint64_t>& refs) {
  std::vector<uint64_t> reftable;
  STRATA_ASSIGN_OR_RETURN(bool grown,
                          WriteRebuiltRefblocks(layout, refs, 0, refs.size(), reftable));
  uint64_t table_cluster = 0, table_clusters = 0;
  while (grown) {
    uint64_t first_free = 0;
    table_clusters = DivRoundUp(reftable.size() * 8, cluster_size_);
    table_cluster = AllocateInMemory(refs, table_clusters, &first_free,
                                     layout.entries_per_block());
    STRATA_ASSIGN_OR_RETURN(grown, WriteRebuiltRefblocks(layout, refs, table_cluster,
                                                         table_cluster + table_clusters,
                                                         reftable));
    if (grown) {
      for (uint64_t i = 0; i < table_clusters; ++i) refs[table_cluster + i] = 0;
    }
  }
  if (table_clusters == 0) return ErrnoError(EIO, "Rebuilt refcount table is empty");
  std::vector<uint8_t> raw(table_clusters * cluster_size_, 0);
  for (size_t i = 0; i < reftable.size(); ++i) StoreBe64(&raw[i * 8], reftable[i]);
  const uint64_t table_offset = table_cluster << cluster_bits_;
  STRATA_RETURN_IF_ERROR(file_->node().Pwrite(table_offset, raw.size(), raw.data()));
  STRATA_RETURN_IF_ERROR(file_->node().Flush());
  return std::make_pair(table_offset, static_cast<uint32_t>(table_clusters));
}

absl::Status Qcow2Instance::RebuildRefcountStructure(std::vector<uint64_t>& refs) {
  refcounts_->DropCache();
  STRATA_ASSIGN_OR_RETURN(auto table, WriteRefcountStructure(*refcounts_, refs));
  header_.refcount_table_offset = table.first;
  header_.refcount_table_clusters = table.second;
  STRATA_RETURN_IF_ERROR(WriteHeaderBytes(48, 12));
  STRATA_ASSIGN_OR_RETURN(uint64_t file_length, file_->node().GetLength());
  return refcounts_->Load(table.first, table.second, file_length);
}

}  // namespace strata::qcow2
