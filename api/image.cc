// strata api: strata::Image over the internal BlockBackend and the graph builder.
#include "strata/image.h"

#include <utility>

#include "api/access.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/options_json.h"
#include "block/status.h"
#include "strata/queue.h"

namespace strata {
namespace {

OpenFlags ToOpenFlags(const OpenOptions& o) {
  OpenFlags f;
  f.read_only = o.read_only;
  f.cache = o.cache;
  f.force_share = o.force_share;
  f.no_backing = o.no_backing;
  f.no_io = o.no_io;
  f.check_mode = o.check_mode;
  f.discard_unmap = o.discard_unmap;
  f.snapshot = o.snapshot;
  f.aio = o.aio;
  return f;
}

}  // namespace

Image::Image(std::unique_ptr<BlockBackend> backend, bool probed_raw)
    : backend_(std::move(backend)), probed_raw_(probed_raw) {}

Image::~Image() = default;

absl::StatusOr<std::unique_ptr<Image>> Image::Open(const ImageSpec& spec) {
  ImageOpenRequest request;
  request.filename = spec.filename;
  request.image_opts = spec.image_opts;
  request.format = spec.format;
  STRATA_ASSIGN_OR_RETURN(request.overlay, MergedKeyvals(spec.overlay));
  request.flags = ToOpenFlags(spec.options);
  STRATA_ASSIGN_OR_RETURN(OpenedImage opened, OpenImage(request));
  auto backend =
      std::make_unique<BlockBackend>(std::move(opened.root), spec.options.cache.writethrough);
  if (spec.options.copy_on_read) {
    // QEMU refuses it after opening (so an open error comes first).
    if (spec.options.read_only) {
      return absl::InvalidArgumentError("Can't use copy-on-read on read-only device");
    }
    backend->EnableCopyOnRead();
  }
  return std::unique_ptr<Image>(new Image(std::move(backend), opened.probed_raw));
}

absl::StatusOr<std::unique_ptr<Image>> Image::OpenJson(const std::string& json,
                                                       const OpenOptions& options) {
  ImageSpec spec;
  spec.filename = "json:" + json;
  spec.options = options;
  return Open(spec);
}

absl::Status Image::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                           uint32_t flags) {
  return backend_->Preadv(offset, bytes, qiov, flags);
}
absl::Status Image::Pread(uint64_t offset, uint64_t bytes, void* buf) {
  return backend_->Pread(offset, bytes, buf);
}
absl::Status Image::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                            uint32_t flags) {
  return backend_->Pwritev(offset, bytes, qiov, flags);
}
absl::Status Image::Pwrite(uint64_t offset, uint64_t bytes, const void* buf, uint32_t flags) {
  return backend_->Pwrite(offset, bytes, buf, flags);
}
absl::Status Image::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  return backend_->PwriteZeroes(offset, bytes, flags);
}
absl::Status Image::Pdiscard(uint64_t offset, uint64_t bytes) {
  return backend_->Pdiscard(offset, bytes);
}
absl::Status Image::Flush() { return backend_->Flush(); }
absl::Status Image::Truncate(uint64_t length, bool exact, PreallocMode prealloc) {
  return backend_->Truncate(length, exact, prealloc);
}
absl::StatusOr<uint64_t> Image::GetLength() { return backend_->GetLength(); }

void Image::Submit(Queue& queue, IoRequest request, IoCompletion done) {
  backend_->Submit(ApiAccess::ContextOf(queue), std::move(request), std::move(done));
}

absl::Status Image::Close() { return backend_->Close(); }

Node Image::root() const { return ApiAccess::MakeNode(&backend_->root()); }
bool Image::writethrough() const { return backend_->writethrough(); }
std::string Image::ProbedRawName() const { return strata::ProbedRawName(backend_->root()); }

}  // namespace strata
