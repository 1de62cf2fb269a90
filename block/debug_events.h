// strata: the vocabulary of debug events (QEMU's BlkdebugEvent, same names, same order).
//
// Format drivers announce these on a child edge immediately before the I/O an event names
// (BdrvChild::NotifyDebugEvent); a blkdebug node below matches them against its rules.
// The names are a public, QEMU-compatible contract: scripts and config files use them.
#ifndef STRATA_BLOCK_DEBUG_EVENTS_H_
#define STRATA_BLOCK_DEBUG_EVENTS_H_

#include <optional>
#include "absl/strings/string_view.h"

namespace strata {

// One value per QEMU 7.2 BlkdebugEvent, in QEMU's order; kNone is QEMU's `none`.
enum class DebugEvent {
  kL1Update,
  kL1GrowAllocTable,
  kL1GrowWriteTable,
  kL1GrowActivateTable,
  kL2Load,
  kL2Update,
  kL2UpdateCompressed,
  kL2AllocCowRead,
  kL2AllocWrite,
  kReadAio,
  kReadBackingAio,
  kReadCompressed,
  kWriteAio,
  kWriteCompressed,
  kVmstateLoad,
  kVmstateSave,
  kCowRead,
  kCowWrite,
  kReftableLoad,
  kReftableGrow,
  kReftableUpdate,
  kRefblockLoad,
  kRefblockUpdate,
  kRefblockUpdatePart,
  kRefblockAlloc,
  kRefblockAllocHookup,
  kRefblockAllocWrite,
  kRefblockAllocWriteBlocks,
  kRefblockAllocWriteTable,
  kRefblockAllocSwitchTable,
  kClusterAlloc,
  kClusterAllocBytes,
  kClusterFree,
  kFlushToOs,
  kFlushToDisk,
  kPwritevRmwHead,
  kPwritevRmwAfterHead,
  kPwritevRmwTail,
  kPwritevRmwAfterTail,
  kPwritev,
  kPwritevZero,
  kPwritevDone,
  kEmptyImagePrepare,
  kL1ShrinkWriteTable,
  kL1ShrinkFreeL2Clusters,
  kCorWrite,
  kClusterAllocSpace,
  kNone,
};

inline constexpr int kDebugEventCount = static_cast<int>(DebugEvent::kNone) + 1;

// QEMU's name of `event` ("l1_update").
absl::string_view DebugEventName(DebugEvent event);

// The event named `name`, or nullopt for an unknown name. Exact match only (QEMU 7.2
// rejects the old dotted spellings such as "l1_grow.alloc_table").
std::optional<DebugEvent> ParseDebugEvent(absl::string_view name);

}  // namespace strata

#endif  // STRATA_BLOCK_DEBUG_EVENTS_H_
