// strata/image.h (public API): Image, an open graph and the guest-facing I/O path.
//
//   strata::ImageSpec spec;
//   spec.filename = "disk.qcow2";                 // or "json:{...}", "nbd://...", ...
//   spec.options.read_only = false;
//   absl::StatusOr<std::unique_ptr<strata::Image>> image = strata::Image::Open(spec);
//   if (!image.ok()) { /* image.status().message(): "No such file or directory"... */ }
//   char buf[4096];
//   absl::Status s = (*image)->Pread(0, sizeof buf, buf);
//   s = (*image)->Pwrite(4096, sizeof buf, buf, strata::kReqFua);
//   s = (*image)->Close();                         // flushes; errors reported here
//
// Asynchronous requests run on a strata::Queue (strata/queue.h): Submit starts one there
// and its completion runs on the queue's thread. A VMM gives each virtqueue a queue of
// its own; one image serves any number of queues and synchronous callers at once.
//
// Thread safety: every method may be called from any thread, concurrently, except Close
// (no request may be in flight or start during it) and the destructor (the same).
// Errors: an absl::Status whose message is QEMU's sentence and whose errno is ErrnoOf().
#ifndef STRATA_STRATA_IMAGE_H_
#define STRATA_STRATA_IMAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/io_vector.h"
#include "strata/node.h"
#include "strata/request.h"
#include "strata/types.h"

namespace strata {

class BlockBackend;  // internal
class Queue;         // strata/queue.h

// How the graph is opened (QEMU's open flags and the tools' switches).
struct OpenOptions {
  bool read_only = true;
  CacheMode cache;          // ParseCacheMode("none") etc.; writethrough applies per Image
  bool force_share = false;  // -U: take no image locks, check none
  bool no_backing = false;   // do not open backing files
  bool no_io = false;        // metadata only (qemu-img info)
  bool check_mode = false;   // corrupt images may be opened (qemu-img check)
  bool discard_unmap = true;  // pass discards down
  bool snapshot = false;      // -s: writes go to a temporary overlay, never to the image
  std::string aio;            // "threads", "native", "io_uring" or "" (default)
  // -C: reads copy what lies below the top image into it (needs a writable open).
  bool copy_on_read = false;
};

// An image as a user names it.
struct ImageSpec {
  // A filename ("a.qcow2", "json:{...}", "nbd+unix:///x?socket=s", "blkdebug:conf:img"),
  // or with image_opts a key=value list ("driver=raw,file.filename=a.img").
  std::string filename;
  bool image_opts = false;
  // Format driver name; empty = probe the header.
  std::string format;
  // key=value lists laid over the parsed filename, later ones winning (qemu-io open -o).
  std::vector<std::string> overlay;
  OpenOptions options;
};


// QEMU's BDRV_REQUEST_MAX_BYTES: the largest request an Image accepts.
inline constexpr uint64_t kMaxImageRequestBytes = 2147483136;

class Image {
 public:
  // Opens the graph `spec` names (probing the format if none is given). Errors are the
  // reason in QEMU's words; QEMU's tools print them after "Could not open '<name>': ".
  // Opening writes nothing (a read-write open of a dirty qcow2 repairs it, as QEMU does).
  static absl::StatusOr<std::unique_ptr<Image>> Open(const ImageSpec& spec);
  // The same, from the options `json:{...}` takes (a JSON object).
  static absl::StatusOr<std::unique_ptr<Image>> OpenJson(const std::string& json,
                                                         const OpenOptions& options);
  // Closes (errors dropped; call Close to see them).
  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  // --- Guest I/O: requests must lie inside the image (EIO) and be at most
  // kMaxImageRequestBytes; with cache writethrough every write is flushed before it
  // completes. A failed write leaves each sector with its old or its new data.
  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags = kReqNone);
  absl::Status Pread(uint64_t offset, uint64_t bytes, void* buf);
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags = kReqNone);
  absl::Status Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                      uint32_t flags = kReqNone);
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags = kReqNone);
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes);
  // Makes every write completed before the call stable (unless cache.no_flush).
  absl::Status Flush();
  absl::Status Truncate(uint64_t length, bool exact = true,
                        PreallocMode prealloc = PreallocMode::kOff);
  absl::StatusOr<uint64_t> GetLength();

  // Starts `request` on `queue` (posted there unless called on its thread); `done` runs on
  // the queue's thread with the result, never inside Submit. The image and the queue must
  // outlive every request submitted.
  void Submit(Queue& queue, IoRequest request, IoCompletion done);

  // Flushes and closes the graph; the image is unusable afterwards. Idempotent.
  absl::Status Close();

  // The top node of the graph (for layer-level work and control operations).
  Node root() const;
  bool writethrough() const;
  // The format was probed and came out raw (tools warn before writing to such an image).
  bool probed_raw() const { return probed_raw_; }
  // The name QEMU's probed-raw warning uses for this image.
  std::string ProbedRawName() const;

 private:
  friend class ApiAccess;  // The library's own way to the backend.
  Image(std::unique_ptr<BlockBackend> backend, bool probed_raw);
  std::unique_ptr<BlockBackend> backend_;
  bool probed_raw_ = false;
};

// --- Names of images ---
// A backing file name as an image records it, resolved against the image's directory
// (unless absolute or a protocol filename such as "json:..." or "nbd:...").
std::string ResolveBackingPath(const std::string& image, const std::string& backing);
// `path` with symlinks and relative parts resolved; itself when it does not resolve.
std::string CanonicalPath(const std::string& path);
// The protocol a filename names ("nbd+unix" in "nbd+unix:///x"; "" for a plain path).
absl::string_view ProtocolOf(absl::string_view filename);

}  // namespace strata

#endif  // STRATA_STRATA_IMAGE_H_
