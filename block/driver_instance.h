// strata: the per-node hooks a driver implements (the "driver API").
//
// The generic node (node.h) does the shared work before calling a hook: bounds and
// read-only checks, alignment padding, write tracking, debug events, flush bookkeeping.
// Each hook's comment states what the node guarantees on entry. Callers use node.h, never
// these hooks directly.
//
// Thread safety: hooks may be called concurrently from several threads; an instance that
// cannot run requests in parallel must serialise internally.
#ifndef STRATA_BLOCK_DRIVER_INSTANCE_H_
#define STRATA_BLOCK_DRIVER_INSTANCE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "aio/task.h"
#include "block/debug_breakpoints.h"
#include "block/debug_events.h"
#include "block/dirty_bitmap.h"
#include "block/io_vector.h"
#include "strata/types.h"

namespace strata {

class BlockDriverState;


// The answer to a block-status query for a run starting at the queried offset.
struct BlockStatus {
  uint64_t bytes = 0;         // Length of the run this answer covers (> 0 unless at EOF).
  bool data = false;          // Reads come from stored data (QEMU BDRV_BLOCK_DATA).
  bool zero = false;          // Reads return zeroes (BDRV_BLOCK_ZERO).
  bool allocated = false;     // Decided by this node, not a backing node (ALLOCATED).
  bool offset_valid = false;  // `host_offset` in `file` holds the data (OFFSET_VALID).
  uint64_t host_offset = 0;
  BlockDriverState* file = nullptr;  // Node that `host_offset` refers to.
  // Set by pass-through drivers: "ask `file` at `host_offset`; its answer is mine".
  bool recurse = false;
  // Set by format drivers whose data may sit on holes of the file (QEMU
  // BDRV_BLOCK_RECURSE: qcow2 with preallocated metadata): block status with want_zero
  // then asks the file whether the host range reads as zeroes. Without it, allocated data
  // is data, as in QEMU.
  bool recurse_for_zero = false;
};

// The answer of a driver that maps [offset, offset + bytes) one to one onto `file` at
// `host_offset` (raw, filters): "ask the file".
inline BlockStatus PassThroughStatus(BlockDriverState* file, uint64_t host_offset,
                                     uint64_t bytes) {
  BlockStatus s;
  s.bytes = bytes;
  s.recurse = true;
  s.offset_valid = true;
  s.host_offset = host_offset;
  s.file = file;
  s.allocated = true;
  s.data = true;
  return s;
}

// The answer of a protocol driver for a range it knows to hold data (or knows nothing
// about): data at the same offset of its own node (QEMU's default for protocols).
inline BlockStatus ProtocolDataStatus(BlockDriverState* node, uint64_t offset,
                                      uint64_t bytes) {
  BlockStatus s;
  s.bytes = bytes;
  s.allocated = true;
  s.offset_valid = true;
  s.host_offset = offset;
  s.file = node;
  s.data = true;
  return s;
}



// One open instance of a driver, owned by its BlockDriverState.
class DriverInstance {
 public:
  virtual ~DriverInstance() = default;

  // Reads `bytes` at `offset` into `qiov` (qiov.size() == bytes). On entry: the range lies
  // within GetLength(), offset and bytes are multiples of request_alignment() (the node
  // padded the request), bytes > 0. Must fill all of `qiov` or fail.
  virtual absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                              uint32_t flags) = 0;

  // Writes `qiov` (size == bytes) at `offset`. On entry: node is writable, range aligned to
  // request_alignment(), and within the length unless the driver accepts growth
  // (protocol drivers). With kReqFua the data must be stable when this returns OK.
  virtual absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                               uint32_t flags) = 0;

  // --- The asynchronous request path (aio/task.h) ---
  // The node calls these instead of Preadv/Pwritev/FlushToDisk when it serves a request
  // as a coroutine. Same entry guarantees and results as the synchronous hooks. Called on
  // a loop thread (aio::IoContext::Current() set) or, inline, on any thread; a driver
  // must not block a loop thread: it awaits its children's coroutine hooks, aio file
  // operations, or aio::Offload. Default: the synchronous hook, offloaded (so every
  // driver works on the request path; only its blocking runs on the pool).
  virtual aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes,
                                           const IoVector& qiov, uint32_t flags);
  virtual aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes,
                                            const IoVector& qiov, uint32_t flags);
  virtual aio::Task<absl::Status> CoFlushToDisk();
  // PwriteZeroes and Pdiscard as coroutines (same contracts, ENOTSUP included). Default:
  // the synchronous hook, offloaded.
  virtual aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                 uint32_t flags);
  virtual aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes);
  // FlushToOs as a coroutine. Default: FlushToOs, offloaded. A driver without caches of
  // its own (FlushToOs a no-op) overrides it to return at once, so that a flush through
  // it costs no pool hand-off; a driver that overrides FlushToOs must not do so.
  virtual aio::Task<absl::Status> CoFlushToOs();

  // Makes [offset, offset + bytes) read as zeroes without a data buffer. Return ENOTSUP
  // to let the node fall back to writing a zero buffer (unless kReqNoFallback).
  virtual absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags);

  // Hints that the range is no longer needed. May do nothing. Contents afterwards are
  // unspecified unless the driver documents otherwise. Default: ignore (OK).
  virtual absl::Status Pdiscard(uint64_t offset, uint64_t bytes);

  // Writes back the driver's own caches to its children (QEMU flush_to_os).
  virtual absl::Status FlushToOs();
  // Makes everything written so far stable on the device (QEMU flush_to_disk). Protocol
  // drivers only; the node skips it when nothing was written since the last one.
  virtual absl::Status FlushToDisk();

  // Resizes to `length`. `exact`: fail rather than round. Default: ENOTSUP.
  virtual absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc);

  // The guest-visible length in bytes.
  virtual absl::StatusOr<uint64_t> GetLength() = 0;

  // The VM state area (savevm's RAM image; qemu-io read/write -b): `bytes` at `pos` in a
  // space of the driver's own beside the guest's data. Only a driver whose HasVmState()
  // is true is called; the node sends the others' requests to their primary child.
  // Calling context: a tool or API thread, not a loop; the node has checked the range.
  // A failed write leaves the guest's data as it was. Default: ENOTSUP.
  virtual bool HasVmState() const { return false; }
  virtual absl::Status ReadVmState(uint64_t pos, uint64_t bytes, void* buf);
  virtual absl::Status WriteVmState(uint64_t pos, uint64_t bytes, const void* buf);

  // Status of the run starting at `offset` (bytes > 0, within length). Default: allocated
  // data for the whole range (protocol semantics).
  virtual absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes);

  // Bytes the image occupies on the host; default: sum over children, -ENOTSUP if none.
  virtual absl::StatusOr<uint64_t> AllocatedFileSize();

  // Receives a debug event sent down the edge above this node. Default: ignore. Only a
  // driver that overrides WantsDebugEvents() to true is ever called.
  virtual void HandleDebugEvent(DebugEvent event) {}
  virtual bool WantsDebugEvents() const { return false; }
  // The node's breakpoint controls, if it has any (blkdebug). Owned by the instance.
  virtual DebugBreakpoints* debug_breakpoints() { return nullptr; }

  // Offsets and lengths of requests must be multiples of this (power of two). Default 1.
  virtual uint32_t request_alignment() const { return 1; }

  // Called once before destruction, with children still attached: write back metadata.
  // Errors are reported to the user by the caller of Close.
  virtual absl::Status Close() { return absl::OkStatus(); }

  // Rewrites the image's record of its backing file ("" = none) and its format. Does not
  // open or check the new backing file. Default: ENOTSUP.
  virtual absl::Status ChangeBackingFile(const std::string& name, const std::string& format);

  // Drops every cluster of the image so that it reads through to its backing file (after
  // a commit copied its data there). Must leave the image consistent, or dirty so that the
  // next read-write open repairs it, if it fails. Default: ENOTSUP.
  virtual absl::Status MakeEmpty();

  // Changes options of an existing image (qemu-img amend), `options` in command-line
  // order (a later one wins). All are validated before anything changes; each step
  // leaves a consistent image. `progress` (may be empty) hears (done, total) on the
  // calling thread during long steps. Default: ENOTSUP.
  virtual absl::Status Amend(const std::vector<std::pair<std::string, std::string>>& options,
                             const AmendProgress& progress);

  // Internal snapshots. Default: none to list; ENOTSUP for the rest. `name` finds a
  // snapshot by ID first, then by name (QEMU's rule). ENOENT: no such snapshot.
  virtual absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() {
    return std::vector<SnapshotInfo>{};
  }
  virtual absl::Status CreateSnapshot(const std::string& name);
  virtual absl::Status ApplySnapshot(const std::string& name);
  virtual absl::Status DeleteSnapshot(const std::string& name);
  // Read-only images: from now on, reads see snapshot `id`/`name` (either may be empty
  // to match any) instead of the active image (qemu-img convert -l). ENOENT: not found.
  virtual absl::Status LoadSnapshotForReading(const std::string& id, const std::string& name);

  // Consistency check (qemu-img check). `fix` is a mask of kCheckFix* bits. Per-cluster
  // findings go to stderr as QEMU prints them. Default: ENOTSUP.
  virtual absl::StatusOr<CheckResult> Check(uint32_t fix);

  // Persistent dirty bitmaps (qcow2). Called from any thread; the instance serialises.
  // Whether the image can hold persistent bitmaps (qcow2 v3). Default: no.
  virtual bool SupportsDirtyBitmaps() { return false; }
  // What the image holds, in directory order (flags as on disk). Default: none.
  virtual std::vector<DirtyBitmapInfo> ListDirtyBitmaps() { return {}; }
  // Adds an empty bitmap (tracking writes if `enabled`), stored at close. `granularity`
  // is a valid power of two (the caller checks). `node_label` names the node in
  // refusals ("Can't make bitmap 'b' persistent in '<label>': ..."). EEXIST if the name is
  // taken; nothing changes on failure. Default: ENOTSUP (the format cannot store them).
  virtual absl::Status AddDirtyBitmap(const std::string& name, uint64_t granularity,
                                      bool enabled, absl::string_view node_label);
  // Removes the bitmap from the image at once (its clusters freed). ENOENT if missing.
  virtual absl::Status RemoveDirtyBitmap(const std::string& name);
  // Clears it / starts or stops tracking / ORs `source` into it (any granularity). EINVAL
  // for an inconsistent bitmap, ENOENT for a missing one; nothing changes on failure.
  virtual absl::Status ClearDirtyBitmap(const std::string& name);
  virtual absl::Status SetDirtyBitmapEnabled(const std::string& name, bool enabled);
  virtual absl::Status MergeDirtyBitmap(const std::string& target, const DirtyBitmap& source);
  // A copy of the bitmap's bits now (incremental backup reads the dirty runs from it).
  virtual absl::StatusOr<DirtyBitmap> GetDirtyBitmap(const std::string& name);
  // The bitmap's runs over [offset, offset + length) (inside the disk), in order, at most
  // `max_runs` of them (fewer cover less of the range); without copying the bitmap.
  using DirtyRun = ::strata::DirtyRun;
  virtual absl::StatusOr<std::vector<DirtyRun>> GetDirtyRuns(const std::string& name,
                                                             uint64_t offset, uint64_t length,
                                                             size_t max_runs);

  virtual DriverInfo GetInfo() { return {}; }
  virtual FormatSpecificInfo GetFormatSpecificInfo() { return {}; }
};

}  // namespace strata

#endif  // STRATA_BLOCK_DRIVER_INSTANCE_H_
