// strata nbd: Export, one image the server offers under a name.
//
// It holds the backend (not owned: the owner keeps it open for the server's lifetime) and
// what the handshake tells clients about it. Thread safety: immutable after construction;
// the backend takes concurrent requests from every connection.
#ifndef STRATA_NBD_EXPORT_H_
#define STRATA_NBD_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aio/task.h"
#include "block/block_backend.h"

namespace strata::nbd {

struct ExportOptions {
  std::string name;         // "" is the default export
  std::string description;  // -D
  bool read_only = false;
  // Offer the qemu:allocation-depth metadata context (qemu-nbd -A).
  bool allocation_depth = false;
  // Persistent dirty bitmaps offered as qemu:dirty-bitmap:NAME contexts (qemu-nbd -B),
  // read live from the image (or its backing chain) at each query.
  std::vector<std::string> bitmaps;
  // Tell clients several connections see each other's writes (NBD_FLAG_CAN_MULTI_CONN):
  // true when the export may be shared by more than one client (qemu-nbd -e N > 1).
  bool multi_conn = false;
  // Where the export starts in the image (qemu-nbd -o); size() is what lies after it.
  uint64_t offset = 0;
  // Writes of all-zero data become write-zeroes requests (QEMU detect-zeroes=on); with
  // unmap they may deallocate too (detect-zeroes=unmap).
  enum class DetectZeroes { kOff, kOn, kUnmap };
  DetectZeroes detect_zeroes = DetectZeroes::kOff;
};

// One run of a metadata context answer: `length` bytes with `flags` (base:allocation:
// kStateHole/kStateZero; qemu:allocation-depth: the depth, 0 = unallocated).
struct Extent {
  uint32_t length = 0;
  uint32_t flags = 0;
};

class Export {
 public:
  // `size` is the export's length in bytes (the image's, less options.offset).
  Export(ExportOptions options, BlockBackend* backend, uint64_t size);

  const ExportOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  BlockBackend& backend() const { return *backend_; }
  uint64_t size() const { return size_; }
  // The transmission flags of this export (protocol.h), as qemu-nbd sets them. NBD_FLAG_
  // SEND_DF only for clients that negotiated structured replies (it means nothing else).
  uint16_t transmission_flags(bool structured) const;
  // Block size constraints sent in NBD_INFO_BLOCK_SIZE.
  uint32_t min_block() const { return 1; }
  uint32_t preferred_block() const { return 4096; }
  uint32_t max_block() const;

  // The metadata contexts this export offers, in id order (the id is the index).
  const std::vector<std::string>& contexts() const { return contexts_; }
  // The node holding persistent bitmap `name`: the image or the first of its backing
  // chain that has it (qemu-nbd's search). An error saying why if none can serve it
  // ("Bitmap 'x' is not found", or inconsistent).
  absl::StatusOr<BlockDriverState*> BitmapNode(const std::string& name) const;

  // Extents of context `context_id` from `offset` covering at most `length` bytes (at
  // least one extent unless an error; `one`: exactly one). Runs the synchronous block
  // status walk on the blocking pool. `offset + length` must lie inside the export.
  aio::Task<absl::StatusOr<std::vector<Extent>>> CoExtents(uint32_t context_id,
                                                           uint64_t offset, uint64_t length,
                                                           bool one) const;
  // The same, synchronously (tests, and the coroutine underneath).
  absl::StatusOr<std::vector<Extent>> Extents(uint32_t context_id, uint64_t offset,
                                              uint64_t length, bool one) const;

 private:
  absl::StatusOr<std::vector<Extent>> AllocationExtents(uint64_t offset, uint64_t length,
                                                        bool one) const;
  absl::StatusOr<std::vector<Extent>> DepthExtents(uint64_t offset, uint64_t length,
                                                   bool one) const;
  // qemu:dirty-bitmap:NAME: flag 1 for dirty runs.
  absl::StatusOr<std::vector<Extent>> BitmapExtents(const std::string& bitmap, uint64_t offset,
                                                    uint64_t length, bool one) const;

  const ExportOptions options_;
  BlockBackend* const backend_;
  const uint64_t size_;
  std::vector<std::string> contexts_;
};

}  // namespace strata::nbd

#endif  // STRATA_NBD_EXPORT_H_
