// strata: BlockDriverState, one open node of the graph (the "caller API").
//
// A node owns its driver instance and its children (BdrvChild edges). Callers use the
// methods below; the node does the generic work (alignment padding with read-modify-write,
// read-only checks, serialising overlapping read-modify-writes, write-zeroes fallback,
// flush bookkeeping and the block-layer debug events) and then calls the driver hook.
//
// Thread safety: all I/O methods are safe to call concurrently. Graph changes (AddChild,
// RemoveChild) require that no request is in flight.
#ifndef STRATA_BLOCK_NODE_H_
#define STRATA_BLOCK_NODE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "aio/task.h"
#include "block/child.h"
#include "block/driver.h"
#include "block/driver_instance.h"
#include "block/flush_coalescer.h"
#include "block/io_vector.h"
#include "block/request_gate.h"
#include "block/serialised_ranges.h"

namespace strata {

class BlockDriverState {
 public:
  BlockDriverState(const BlockDriver& driver, std::string filename, OpenFlags flags);
  // Closes the driver (errors are dropped; call Close() first to see them), then the
  // children.
  ~BlockDriverState();
  BlockDriverState(const BlockDriverState&) = delete;
  BlockDriverState& operator=(const BlockDriverState&) = delete;

  // Called once by the graph builder after the driver opened.
  void SetInstance(std::unique_ptr<DriverInstance> instance);

  // Flushes and closes the driver instance (recursively for children). Idempotent.
  absl::Status Close();

  // --- I/O: byte granular; the node pads to the driver's alignment. ---

  // Reads `bytes` at `offset` into qiov (qiov.size() >= bytes).
  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags = kReqNone);
  absl::Status Pread(uint64_t offset, uint64_t bytes, void* buf);
  // Writes. Fails with EPERM on a read-only node. Unaligned writes are done as
  // read-modify-write, serialised against overlapping requests.
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags = kReqNone);
  absl::Status Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                      uint32_t flags = kReqNone);
  // The VM state area (DriverInstance::ReadVmState): served by the first node down the
  // primary children whose driver has one, else ENOTSUP. EIO past the block layer's
  // maximum length; EPERM for a write to a read-only node.
  absl::Status ReadVmState(uint64_t pos, uint64_t bytes, void* buf);
  absl::Status WriteVmState(uint64_t pos, uint64_t bytes, const void* buf);
  // Makes the range read as zeroes; falls back to writing zero buffers when the driver
  // cannot, unless kReqNoFallback is set (then ENOTSUP).
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags = kReqNone);
  // Writes zeroes with ordinary data writes (never a hole or an unwritten extent): the
  // fallback of PwriteZeroes, and preallocation=full.
  absl::Status ZeroesByBuffer(uint64_t offset, uint64_t bytes, uint32_t flags = kReqNone);
  // Discards the range (ignored unless opened with discard=unmap).
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes);
  // Writes back caches of this node and its children, then (unless cache.no-flush)
  // makes them stable; the disk flush is skipped if nothing was written since the last.
  absl::Status Flush();
  absl::Status Truncate(uint64_t length, bool exact = true,
                        PreallocMode prealloc = PreallocMode::kOff);
  absl::StatusOr<uint64_t> GetLength();

  // --- The same requests as coroutines (node_async.cc; aio/task.h) ---
  // Same semantics and results as the synchronous methods. Awaited on a loop thread they
  // never block it: the common case (aligned reads and writes, no debug events at this
  // node; aligned zero writes and discards) goes straight to the driver's coroutine
  // hooks, and so do unaligned reads and writes (padded, a write parking while another
  // holds its blocks) and zero writes (split as QEMU splits unaligned ones); the rest
  // (compressed writes, nodes with debug events) runs the synchronous path on the
  // blocking pool. Awaited with no loop
  // current (aio::RunSync) they run inline. `qiov` must stay valid until they return.
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                         uint32_t flags = kReqNone);
  aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes);
  aio::Task<absl::Status> CoFlush();

  // Host bytes used by this node and its non-backing children (qemu-img "disk size").
  absl::StatusOr<uint64_t> AllocatedFileSize();

  // Block status at `offset` for at most `bytes`; pass-through drivers are resolved.
  // With want_zero, allocated data whose host range reads as zero is reported zero when
  // the driver asks for it (BlockStatus::recurse_for_zero).
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes,
                                             bool want_zero = true);
  // Block status through the whole backing chain (QEMU's block_status_above): the answer
  // of the first node that decides the run; `zero` also where no node does (reads give
  // zeroes). Lets copies and comparisons skip what is not allocated anywhere.
  absl::StatusOr<BlockStatus> GetBlockStatusAbove(uint64_t offset, uint64_t bytes);
  // True in *allocated if the run at `offset` is allocated in this node (data or zero,
  // not inherited from a backing node); returns the run length (<= bytes).
  absl::StatusOr<uint64_t> IsAllocated(uint64_t offset, uint64_t bytes, bool* allocated);

  // --- Control operations ---
  // The node's way to the driver's control hooks (driver_instance.h states what each
  // does). Operations that change the image check that the node is writable (EPERM
  // otherwise), quiesce the node (new requests on it wait, the ones in flight finish;
  // request_gate.h), run the hook, and resume; what a failure leaves is the hook's
  // contract. They block the calling thread: call them from outside the node's requests;
  // a request of this node parked at a breakpoint holds them until it is resumed.
  absl::Status Amend(const std::vector<std::pair<std::string, std::string>>& options,
                     const AmendProgress& progress = nullptr);
  absl::Status CreateSnapshot(const std::string& name);
  absl::Status ApplySnapshot(const std::string& name);
  absl::Status DeleteSnapshot(const std::string& name);
  // Read-only nodes (the hook says so otherwise); quiesces.
  absl::Status LoadSnapshotForReading(const std::string& id, const std::string& name);
  absl::Status MakeEmpty();
  absl::Status ChangeBackingFile(const std::string& name, const std::string& format);
  // Quiesces; with `fix` (kCheckFix*) the node must be writable.
  absl::StatusOr<CheckResult> Check(uint32_t fix);
  absl::Status AddDirtyBitmap(const std::string& name, uint64_t granularity, bool enabled,
                              absl::string_view node_label);
  absl::Status RemoveDirtyBitmap(const std::string& name);
  absl::Status ClearDirtyBitmap(const std::string& name);
  absl::Status SetDirtyBitmapEnabled(const std::string& name, bool enabled);
  // ORs bitmap `source_name` of node `source` (this one or another) into `target`.
  absl::Status MergeDirtyBitmap(const std::string& target, BlockDriverState& source,
                                const std::string& source_name);
  // Reports (no quiesce: the driver serialises them against I/O).
  DriverInfo GetInfo() { return instance_->GetInfo(); }
  FormatSpecificInfo GetFormatSpecificInfo() { return instance_->GetFormatSpecificInfo(); }
  absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() {
    return instance_->ListSnapshots();
  }
  bool SupportsDirtyBitmaps() { return instance_->SupportsDirtyBitmaps(); }
  std::vector<DirtyBitmapInfo> ListDirtyBitmaps() { return instance_->ListDirtyBitmaps(); }
  absl::StatusOr<std::vector<DirtyRun>> GetDirtyRuns(const std::string& name, uint64_t offset,
                                                     uint64_t length, size_t max_runs) {
    return instance_->GetDirtyRuns(name, offset, length, max_runs);
  }

  // Delivers a debug event to this node's driver (called by BdrvChild).
  void HandleDebugEvent(DebugEvent event) { instance_->HandleDebugEvent(event); }
  bool WantsDebugEvents() const { return instance_ && instance_->WantsDebugEvents(); }
  // The breakpoint controls of the first node down the primary-child chain (this one
  // first) that has them (a blkdebug node), or nullptr.
  DebugBreakpoints* FindDebugBreakpoints();

  // --- Graph ---
  BdrvChild* AddChild(std::string name, ChildRole role,
                      std::unique_ptr<BlockDriverState> node);
  // Detaches and closes child `name` (no-op if absent).
  void RemoveChild(absl::string_view name);
  BdrvChild* child(absl::string_view name) const;
  BdrvChild* file() const { return child("file"); }
  BdrvChild* backing() const { return child("backing"); }
  // The child that holds this node's data (file, or image for filters), or nullptr.
  BdrvChild* primary_child() const;
  const std::vector<std::unique_ptr<BdrvChild>>& children() const { return children_; }

  // --- Facts ---
  const BlockDriver& driver() const { return driver_; }
  DriverInstance& instance() const { return *instance_; }
  const std::string& filename() const { return filename_; }
  // Set once by the graph builder for nodes named after their file.
  void set_filename(std::string filename) { filename_ = std::move(filename); }
  // The options that name this node inside its parent's json:{...} name, as one JSON
  // object (block/node_filename.h). Set once by the graph builder after the open.
  const std::string& full_options() const { return full_options_; }
  void set_full_options(std::string json) { full_options_ = std::move(json); }
  // QEMU's node-name option; empty if none was given. Set once by the graph builder.
  const std::string& node_name() const { return node_name_; }
  void set_node_name(std::string name) { node_name_ = std::move(name); }
  // The name messages give this node: its node-name, or the automatic name QEMU would
  // give it (node_names.h), assigned once its children are open (so a child is named
  // first, as in QEMU). Empty until then.
  const std::string& display_name() const { return node_name_.empty() ? auto_name_ : node_name_; }
  void AssignAutomaticName();
  // This node or the first node below it (through every child) named `name`, or nullptr.
  BlockDriverState* FindNodeNamed(absl::string_view name);
  const OpenFlags& flags() const { return flags_; }
  // QEMU's limits on a new length, checked before any driver sees it: at most INT64_MAX
  // ("Image size cannot be negative" past it, as QEMU reads it signed) and at most that
  // rounded down to 1 GiB ("offset(N) exceeds maximum(M)").
  static absl::Status CheckNewLength(uint64_t length);
  bool read_only() const { return flags_.read_only; }
  uint32_t request_alignment() const { return alignment_; }

 private:
  // A VM state request at [pos, pos + bytes): range-checked, gated on every node it
  // passes, run by `at_owner` on the first instance down the primary children that keeps
  // a VM state area. EPERM for a write to a read-only node; ENOTSUP if none keeps one.
  absl::Status VmStateRequest(uint64_t pos, uint64_t bytes, bool write,
                              absl::FunctionRef<absl::Status(DriverInstance&)> at_owner);
  absl::Status CheckWritable() const;
  // The requests' bodies, entered with the gate held (the public methods and the
  // coroutine paths hold it; these never take it again, so a request cannot wait for a
  // quiescer that waits for it).
  absl::Status DoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov, uint32_t flags);
  absl::Status DoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                         uint32_t flags);
  absl::Status DoPwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags);
  absl::Status DoZeroesByBuffer(uint64_t offset, uint64_t bytes, uint32_t flags);
  absl::Status DoPdiscard(uint64_t offset, uint64_t bytes);
  absl::Status DoFlush();
  // Largest zero buffer the write-zeroes fallback writes at once.
  static constexpr uint64_t kZeroBufferBytes = 1 << 20;
  // The coroutine twins of DoPwritev and DoZeroesByBuffer (gate already entered).
  aio::Task<absl::Status> CoDoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                      uint32_t flags);
  aio::Task<absl::Status> CoDoZeroesByBuffer(uint64_t offset, uint64_t bytes, uint32_t flags);
  // An aligned zero write at the driver, zero buffers where it has no cheaper way.
  aio::Task<absl::Status> CoDoAlignedZeroes(uint64_t offset, uint64_t bytes, uint32_t flags);
  // CoFlush's body once it runs (not covered by a flush that ran while it waited).
  aio::Task<absl::Status> CoDoFlush();
  absl::StatusOr<BlockStatus> DoGetBlockStatus(uint64_t offset, uint64_t bytes,
                                               bool want_zero);
  // Quiesces, runs `op` (a hook call), resumes; EPERM first if `writes` and read-only.
  template <typename Op>
  auto Controlled(bool writes, Op op) -> decltype(op());
  // Block-layer events about this node's own requests (QEMU bdrv_debug_event(bs, ...)).
  void NotifySelf(DebugEvent event) {
    if (ABSL_PREDICT_FALSE(wants_events_)) instance_->HandleDebugEvent(event);
  }
  absl::Status AlignedPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                              uint32_t flags);
  absl::Status PaddedPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                             uint32_t flags);
  absl::Status PaddedPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov);
  // The whole-block write of a padded request: the head block's bytes before `offset`,
  // the request, the tail block's bytes after it (`head` and `tail` hold those blocks as
  // read; with one block, the request is copied into `head`, which is all of it).
  IoVector PaddedVector(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                        AlignedBuffer& head, AlignedBuffer& tail) const;
  // Waits until no tracked write overlaps [offset, offset+bytes) widened to whole blocks
  // of the request alignment, then tracks this one (serialised_ranges.h).
  void BeginSerialised(uint64_t offset, uint64_t bytes);
  // The same for a coroutine: on a loop it parks rather than block its thread.
  aio::Task<absl::Status> CoBeginSerialised(uint64_t offset, uint64_t bytes);
  void EndSerialised(uint64_t offset, uint64_t bytes);
  // PaddedPreadv and PaddedPwritev as coroutines (no debug events: the native paths run
  // only at nodes that want none); CoPaddedPwritev's caller holds the serialised range.
  aio::Task<absl::Status> CoPaddedPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov);
  aio::Task<absl::Status> CoPaddedPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                          uint32_t flags);

  const BlockDriver& driver_;
  std::string filename_;
  std::string full_options_;
  std::string node_name_;
  std::string auto_name_;
  const OpenFlags flags_;
  std::unique_ptr<DriverInstance> instance_;
  uint32_t alignment_ = 1;  // Constant after SetInstance.
  bool wants_events_ = false;  // Constant after SetInstance.
  std::vector<std::unique_ptr<BdrvChild>> children_;
  bool closed_ = false;

  // Write generation: bumped when a write (or zero write, discard, truncate) completes,
  // never when it starts, so that a flush reading generation G has seen every write
  // counted in G finish before its disk flush; the disk flush is skipped when nothing
  // completed since the last one. Failed writes count too (part may have landed).
  void NoteWriteCompleted() { write_generation_.fetch_add(1, std::memory_order_release); }
  // Records that every write counted up to `gen` is stable. Concurrent flushes may finish
  // out of order: the mark never moves backwards.
  void MarkFlushed(uint64_t gen) {
    uint64_t seen = flushed_generation_.load(std::memory_order_relaxed);
    while (seen < gen && !flushed_generation_.compare_exchange_weak(seen, gen)) {
    }
  }
  std::atomic<uint64_t> write_generation_{0};
  std::atomic<uint64_t> flushed_generation_{0};
  // The coroutine flushes run one at a time; one that waited is skipped when a flush that
  // began after its writes completed has succeeded meanwhile (flush_coalescer.h).
  FlushCoalescer flush_turns_;

  // Every request on this node holds it; control operations quiesce it.
  mutable RequestGate gate_;

  // The (block-widened) ranges of the writes running at a node with a request alignment.
  SerialisedRanges serialised_;
};

}  // namespace strata

#endif  // STRATA_BLOCK_NODE_H_
