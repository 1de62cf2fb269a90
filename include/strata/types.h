// strata/types.h (public API): the value types requests and reports are made of.
//
//   strata::CheckResult r = ...;            // what a consistency check found
//   if (r.corruptions > 0) ...
//   uint32_t flags = strata::kReqFua;      // a write that is stable when it completes
//
// Plain values: copyable, no hidden state, safe to pass between threads.
#ifndef STRATA_STRATA_TYPES_H_
#define STRATA_STRATA_TYPES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace strata {

// Per-request flags (QEMU BDRV_REQ_*).
enum RequestFlags : uint32_t {
  kReqNone = 0,
  kReqFua = 1u << 0,         // Write must be on stable storage when it completes.
  kReqMayUnmap = 1u << 1,    // Write-zeroes may deallocate the range.
  kReqNoFallback = 1u << 2,  // Write-zeroes must not fall back to writing a zero buffer.
  // Store the data compressed (whole clusters; drivers whose BlockDriver says
  // supports_compressed_writes()). Other nodes fail such writes with ENOTSUP. An empty one
  // ends a compressed copy: the file's end is rounded up to a 512-byte sector.
  kReqWriteCompressed = 1u << 3,
};

// Preallocation for truncate/create (QEMU PreallocMode).
enum class PreallocMode { kOff, kMetadata, kFalloc, kFull };

// The three independent switches a cache mode name stands for.
// Progress of a long operation: (work done, total work), both in the operation's own
// units; called on the thread doing the work.
using AmendProgress = std::function<void(uint64_t done, uint64_t total)>;

struct CacheMode {
  // O_DIRECT on file nodes (bypass the host page cache). Default: false.
  bool direct = false;
  // Flushes are not passed to the disk. Default: false.
  bool no_flush = false;
  // Every write is followed by a flush before it completes (writethrough). Default: false.
  bool writethrough = false;
};

// Parses a QEMU cache mode name. Unknown names: EINVAL "Invalid cache option".
absl::StatusOr<CacheMode> ParseCacheMode(absl::string_view name);

// One key/value line a driver adds to `info` ("Format specific information"), in print
// order. Tools format the typed value: human output prints bools as true/false, JSON keeps
// the type.
struct FormatSpecificEntry;
// A nested dictionary (one element of a list value, such as one bitmap).
using FormatSpecificDict = std::vector<FormatSpecificEntry>;
// A dictionary as one value (qcow2's "encrypt").
struct FormatSpecificNested {
  FormatSpecificDict entries;
};
struct FormatSpecificEntry {
  std::string key;  // QEMU's key with dashes ("lazy-refcounts").
  // Scalars, a list of strings (a bitmap's flags), a list of dictionaries (bitmaps), or
  // a dictionary.
  std::variant<bool, int64_t, std::string, std::vector<std::string>,
               std::vector<FormatSpecificDict>, FormatSpecificNested>
      value;

  // A scalar as qemu-img's human output prints it ("false", "16", "1.1"); "" for lists.
  std::string HumanValue() const {
    if (const bool* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
    if (const int64_t* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
    if (const std::string* s = std::get_if<std::string>(&value)) return *s;
    return "";
  }
};
struct FormatSpecificInfo {
  std::string type;  // "qcow2"; empty when the driver has none.
  std::vector<FormatSpecificEntry> entries;
};

// Static facts a driver reports for `info` and for qemu-io's `info` command.
struct DriverInfo {
  // False when the driver has no such facts to give (QEMU: bdrv_get_info fails, as for
  // nbd and null-co); `info` then leaves out what depends on them (dirty-flag).
  bool available = true;
  uint64_t cluster_size_bytes = 0;
  uint64_t vm_state_offset_bytes = 0;
  bool is_dirty = false;
  bool encrypted = false;  // info's "encrypted: yes"
  // The backing file as the image names it, and its format (empty: none / unknown).
  std::string backing_filename;
  std::string backing_format;
};

// A persistent dirty bitmap as the image records it (QEMU Qcow2BitmapInfo).
struct DirtyBitmapInfo {
  std::string name;
  uint64_t granularity = 0;
  bool in_use = false;        // flagged in use on disk (by this open, or by a crash)
  bool enabled = false;       // the `auto` flag: tracks writes
  bool inconsistent = false;  // found in use at open: never used, only removable
};

// One internal snapshot as `snapshot -l` and `info` list it (QEMU QEMUSnapshotInfo).
struct SnapshotInfo {
  std::string id;
  std::string name;
  uint64_t vm_state_size = 0;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  int64_t icount = -1;  // -1: not recorded
};

// What a consistency check found (QEMU BdrvCheckResult).
struct CheckResult {
  int64_t corruptions = 0;
  int64_t leaks = 0;
  int64_t check_errors = 0;
  int64_t corruptions_fixed = 0;
  int64_t leaks_fixed = 0;
  uint64_t image_end_offset = 0;
  uint64_t total_clusters = 0;
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;
};
enum CheckFix : uint32_t { kCheckFixLeaks = 1, kCheckFixErrors = 2 };

// One create option as `-o help` lists it and `Formatting ...` prints it.
struct CreateOptionSpec {
  std::string name;          // "cluster_size"
  std::string type;          // "size", "bool", "str", "num"
  std::string help;          // "qcow2 cluster size"
  std::string default_value;  // printed when not given; empty = not printed
};

// What a driver is: an image format (qcow2, raw), a protocol (file, nbd, rbd) or a filter
// (blkdebug).
enum class DriverKind { kProtocol, kFormat, kFilter };

// Parsed `qemu-img create` request.
struct CreateRequest {
  std::string filename;
  uint64_t size_bytes = 0;
  // Options given with -o (and -b/-F), already split, in the order given. Values as typed.
  std::map<std::string, std::string> options;
};

// What `qemu-img measure` computes for a new image.
struct MeasureResult {
  uint64_t required = 0;
  uint64_t fully_allocated = 0;
  bool has_bitmaps = false;  // qcow2 v3 from an input image: "bitmaps size: 0"
  uint64_t bitmaps = 0;
};

// One run of a dirty bitmap: `bytes` long, all dirty or all clean.
struct DirtyRun {
  uint64_t bytes;
  bool dirty;
};

}  // namespace strata

#endif  // STRATA_STRATA_TYPES_H_
