// strata/node.h (public API): Node, a handle on one node of an open image's graph.
//
//   std::unique_ptr<strata::Image> image = ...;       // strata/image.h
//   strata::Node top = image->root();
//   for (strata::Node n = top; n; n = n.backing()) {
//     std::printf("%s (%s)\n", n.filename().c_str(), n.driver_name().c_str());
//   }
//   absl::Status s = top.CreateSnapshot("before-upgrade");   // quiesces the node
//
// A Node is a non-owning handle (copy it freely): it is valid while the Image that owns
// the graph is open. An empty Node (default-constructed, or "no backing") is false.
//
// Requests on a node skip the guest-facing rules of strata::Image (bounds, writethrough):
// use the Image for guest I/O, a Node for work on one layer (a backing file, a data file).
//
// Thread safety: I/O, block status and reports may be called from any thread,
// concurrently. Control operations (snapshots, amend, make_empty, backing change, check,
// bitmap changes) check that the node is writable (EPERM otherwise), then quiesce it:
// requests arriving meanwhile wait (a coroutine request parks on its queue, a synchronous
// one blocks), the ones in flight finish, the operation runs alone, and the waiting ones
// go on. They block the calling thread: do not call them from a completion callback of
// the same image; a request of the node held at a blkdebug breakpoint holds them until
// it is resumed (from another thread).
// On failure, what the image holds is stated per operation below.
#ifndef STRATA_STRATA_NODE_H_
#define STRATA_STRATA_NODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "strata/debug_breakpoints.h"
#include "strata/io_vector.h"
#include "strata/types.h"

namespace strata {

class BlockDriverState;  // The node itself: internal.
class Node;

// The block status of a run starting at the queried offset (QEMU's BDRV_BLOCK_* bits).
struct RangeStatus;

class Node {
 public:
  Node() = default;
  explicit operator bool() const { return bs_ != nullptr; }
  bool operator==(const Node& other) const { return bs_ == other.bs_; }
  bool operator!=(const Node& other) const { return bs_ != other.bs_; }

  // --- Facts (constant while the image is open) ---
  // The driver's name ("qcow2", "file", "blkdebug") and kind.
  std::string driver_name() const;
  DriverKind driver_kind() const;
  // True for a driver that names its own filenames ("nbd:", "blkdebug:").
  bool has_protocol_prefix() const;
  // True for a format that can have a backing file (qcow2): where it has none, a range
  // it does not allocate reads as zeroes.
  bool supports_backing() const;
  // Whether option `key` (relative to this node) may change at a reopen (QEMU's mutable
  // options: qemu-io reopen -o refuses the others unless their value stays the same).
  bool CanChangeAtReopen(absl::string_view key) const;
  // What the node is called ("a.qcow2", "json:{...}", a URL).
  const std::string& filename() const;
  // `backing`, a backing file name stored in this node's image, as it is opened: absolute
  // and protocol names as they are, others relative to the directory of the node's file
  // (through format and filter nodes). Fails where there is no such directory (an image
  // served over NBD, a node named by its options with no file below it).
  absl::StatusOr<std::string> FullBackingFilename(const std::string& backing) const;
  bool read_only() const;
  uint32_t request_alignment() const;
  // Whether writes may carry kReqWriteCompressed.
  bool supports_compressed_writes() const;

  // --- The graph below ---
  Node backing() const;
  Node file() const;
  // The child that holds this node's data (file, or the filtered image), or empty.
  Node primary_child() const;
  // Child `name` ("file", "backing", "data-file", "image"...), or empty.
  Node child(absl::string_view name) const;

  // --- I/O: byte granular (the node pads to its alignment). Same rules as strata::Image,
  // without its bounds check and writethrough. A failed write leaves each sector of the
  // range holding the old or the new data.
  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags = kReqNone) const;
  absl::Status Pread(uint64_t offset, uint64_t bytes, void* buf) const;
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags = kReqNone) const;
  absl::Status Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                      uint32_t flags = kReqNone) const;
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags = kReqNone) const;
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) const;
  absl::Status Flush() const;
  absl::Status Truncate(uint64_t length, bool exact = true,
                        PreallocMode prealloc = PreallocMode::kOff) const;
  // The VM state area beside the guest's data (a hypervisor's savevm RAM image; qcow2
  // keeps it past the virtual size, in QEMU's layout): ENOTSUP for formats without one.
  absl::Status ReadVmState(uint64_t pos, uint64_t bytes, void* buf) const;
  absl::Status WriteVmState(uint64_t pos, uint64_t bytes, const void* buf) const;
  // The virtual length in bytes (a multiple of 512).
  absl::StatusOr<uint64_t> GetLength() const;
  // Host bytes used by this node and its non-backing children (qemu-img "disk size").
  absl::StatusOr<uint64_t> AllocatedFileSize() const;

  // --- Block status ---
  // The run at `offset` (at most `bytes`) as this node sees it; pass-through drivers are
  // resolved. With want_zero, allocated data whose host range reads as zero is zero.
  absl::StatusOr<RangeStatus> GetBlockStatus(uint64_t offset, uint64_t bytes,
                                             bool want_zero = true) const;
  // Through the backing chain: the answer of the first node that decides the run.
  absl::StatusOr<RangeStatus> GetBlockStatusAbove(uint64_t offset, uint64_t bytes) const;
  // Length of the run at `offset` (<= bytes); *allocated: decided by this node itself.
  absl::StatusOr<uint64_t> IsAllocated(uint64_t offset, uint64_t bytes, bool* allocated) const;

  // --- Reports (no quiesce) ---
  DriverInfo GetInfo() const;
  FormatSpecificInfo GetFormatSpecificInfo() const;
  absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() const;
  bool SupportsDirtyBitmaps() const;
  std::vector<DirtyBitmapInfo> ListDirtyBitmaps() const;
  // Runs of bitmap `name` over [offset, offset + length), at most `max_runs`.
  absl::StatusOr<std::vector<DirtyRun>> GetDirtyRuns(const std::string& name, uint64_t offset,
                                                     uint64_t length, size_t max_runs) const;
  // The breakpoint controls of the first blkdebug node down the primary-child chain
  // (this one first), or nullptr. Owned by that node.
  DebugBreakpoints* FindDebugBreakpoints() const;

  // --- Control operations (writable node; quiesce; see the header comment) ---
  // Changes format options (qemu-img amend -o), in command-line order. All are checked
  // before anything changes; each step leaves a consistent image.
  // `progress`, if set, hears (done, total) as the driver works through a long change (a
  // qcow2 upgrade or downgrade), on the calling thread; nothing for quick changes.
  absl::Status Amend(const std::vector<std::pair<std::string, std::string>>& options,
                     const AmendProgress& progress = nullptr) const;
  // Internal snapshots; `name` matches an ID first, then a name. ENOENT: no such snapshot.
  // A failure leaves the snapshot table as it was (or the image marked dirty, repaired at
  // the next read-write open).
  absl::Status CreateSnapshot(const std::string& name) const;
  absl::Status ApplySnapshot(const std::string& name) const;
  absl::Status DeleteSnapshot(const std::string& name) const;
  // Read-only nodes: reads see snapshot `id`/`name` from now on (qemu-img convert -l).
  absl::Status LoadSnapshotForReading(const std::string& id, const std::string& name) const;
  // Drops every cluster, so the image reads through to its backing file (after a commit).
  // On failure the image is consistent, or dirty and repaired at the next open.
  absl::Status MakeEmpty() const;
  // Rewrites the recorded backing file name and format ("" = none); opens nothing.
  absl::Status ChangeBackingFile(const std::string& name, const std::string& format) const;
  // Consistency check; `fix` is a mask of kCheckFix* (then the node must be writable).
  // Findings go to the diagnostics sink (strata/diagnostics.h).
  absl::StatusOr<CheckResult> Check(uint32_t fix) const;
  // Persistent dirty bitmaps. Nothing changes on failure.
  absl::Status AddDirtyBitmap(const std::string& name, uint64_t granularity, bool enabled,
                              absl::string_view node_label) const;
  absl::Status RemoveDirtyBitmap(const std::string& name) const;
  absl::Status ClearDirtyBitmap(const std::string& name) const;
  absl::Status SetDirtyBitmapEnabled(const std::string& name, bool enabled) const;
  // ORs bitmap `source_name` of `source` (this node or another) into bitmap `target`.
  absl::Status MergeDirtyBitmap(const std::string& target, const Node& source,
                                const std::string& source_name) const;

 private:
  friend class ApiAccess;  // The library's own way between Node and its node.
  explicit Node(BlockDriverState* bs) : bs_(bs) {}
  BlockDriverState* bs_ = nullptr;
};

struct RangeStatus {
  uint64_t bytes = 0;         // length of the run this answer covers (0: at the end)
  bool data = false;          // reads come from stored data
  bool zero = false;          // reads return zeroes
  bool allocated = false;     // decided by this node, not by a backing node
  bool offset_valid = false;  // `host_offset` in `file` holds the data
  uint64_t host_offset = 0;
  Node file;                  // the node `host_offset` refers to
};

}  // namespace strata

#endif  // STRATA_STRATA_NODE_H_
