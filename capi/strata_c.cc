// strata: the C API (include/strata/strata.h), a layer over the C++ public API
// (strata/image.h, strata/queue.h): it uses nothing else.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "strata/diagnostics.h"
#include "strata/errors.h"
#include "strata/image.h"
#include "strata/queue.h"
#include "strata/strata.h"

// An open image: the backend owns the graph; `queues` counts the queues still using it
// (strata_close refuses while any exists).
struct strata_image {
  std::unique_ptr<strata::Image> backend;
  std::atomic<int> queues{0};
};

// One queue: a loop thread that runs the requests, and the completions it produced that
// wait (under `mu`) for strata_queue_complete on the embedder's thread; `event_fd` is
// readable while any wait.
struct strata_queue {
  strata_image* image = nullptr;
  std::unique_ptr<strata::Queue> loop;
  int event_fd = -1;
  // Completed requests waiting for strata_queue_complete.
  struct Done {
    strata_completion_fn cb;
    void* opaque;
    int result;
  };
  absl::Mutex mu;
  std::vector<Done> done ABSL_GUARDED_BY(mu);
  std::atomic<int> pending{0};  // submitted, callback not run yet
};

namespace {

// The calling thread's last failure, and the image it was about (nullptr: strata_open).
thread_local std::string t_last_error;
thread_local const strata_image* t_last_image = nullptr;

int Fail(const strata_image* image, const absl::Status& status) {
  t_last_error = std::string(status.message());
  if (t_last_error.empty()) t_last_error = strata::StrError(strata::ErrnoOf(status));
  t_last_image = image;
  int err = strata::ErrnoOf(status);
  return -(err > 0 ? err : EIO);
}

int Result(const strata_image* image, const absl::Status& status) {
  return status.ok() ? 0 : Fail(image, status);
}

int Errno(const absl::Status& status) {
  if (status.ok()) return 0;
  int err = strata::ErrnoOf(status);
  return -(err > 0 ? err : EIO);
}

int Submit(strata_queue* q, strata::IoRequest request, strata_completion_fn cb,
           void* opaque) {
  if (q == nullptr || cb == nullptr) return -EINVAL;
  ++q->pending;
  q->image->backend->Submit(*q->loop, std::move(request),
                            [q, cb, opaque](absl::Status s) {
                              {
                                absl::MutexLock lock(&q->mu);
                                q->done.push_back({cb, opaque, Errno(s)});
                              }
                              uint64_t one = 1;
                              ssize_t w = ::write(q->event_fd, &one, sizeof(one));
                              (void)w;
                            });
  return 0;
}

}  // namespace

extern "C" {

int strata_open(const char* json_options, unsigned flags, strata_image** out) {
  if (json_options == nullptr || out == nullptr) {
    return Fail(nullptr, strata::ErrnoError(EINVAL, "No options given"));
  }
  strata::OpenOptions options;
  options.read_only = !(flags & STRATA_OPEN_RDWR);
  options.cache.direct = (flags & STRATA_OPEN_DIRECT) != 0;
  options.cache.writethrough = (flags & STRATA_OPEN_WRITETHROUGH) != 0;
  absl::StatusOr<std::unique_ptr<strata::Image>> opened =
      strata::Image::OpenJson(json_options, options);
  if (!opened.ok()) return Fail(nullptr, opened.status());
  auto image = std::make_unique<strata_image>();
  image->backend = *std::move(opened);
  *out = image.release();  // owned by the caller until strata_close
  return 0;
}

int64_t strata_get_size(strata_image* img) {
  if (img == nullptr) return -EINVAL;
  absl::StatusOr<uint64_t> size = img->backend->GetLength();
  if (!size.ok()) return Fail(img, size.status());
  return static_cast<int64_t>(*size);
}

int strata_pread(strata_image* img, void* buf, size_t len, uint64_t offset) {
  if (img == nullptr || (buf == nullptr && len > 0)) return -EINVAL;
  return Result(img, img->backend->Pread(offset, len, buf));
}

int strata_pwrite(strata_image* img, const void* buf, size_t len, uint64_t offset,
                  unsigned flags) {
  if (img == nullptr || (buf == nullptr && len > 0)) return -EINVAL;
  uint32_t req = (flags & STRATA_REQ_FUA) ? strata::kReqFua : strata::kReqNone;
  return Result(img, img->backend->Pwrite(offset, len, buf, req));
}

int strata_flush(strata_image* img) {
  if (img == nullptr) return -EINVAL;
  return Result(img, img->backend->Flush());
}

const char* strata_last_error(strata_image* img) {
  if (t_last_image != img) return "";
  return t_last_error.c_str();
}

int strata_close(strata_image* img) {
  if (img == nullptr) return -EINVAL;
  std::unique_ptr<strata_image> owned(img);
  if (owned->queues.load() != 0) {
    owned.release();  // still in use: not freed
    return Fail(img, strata::ErrnoError(EBUSY, "The image still has queues"));
  }
  absl::Status s = owned->backend->Close();
  int r = Errno(s);
  if (r < 0) Fail(nullptr, s);  // the handle is gone: report as an open-level error
  return r;
}

int strata_bitmap_runs(strata_image* img, const char* name, uint64_t offset, uint64_t len,
                       strata_dirty_run_fn fn, void* opaque) {
  if (img == nullptr || name == nullptr || fn == nullptr) return -EINVAL;
  const strata::Node image = img->backend->root();
  // In slices, so that a huge range never builds a huge list.
  constexpr size_t kRunsPerCall = 4096;
  const uint64_t end = offset + std::min(len, UINT64_MAX - offset);
  while (offset < end) {
    absl::StatusOr<std::vector<strata::DirtyRun>> runs =
        image.GetDirtyRuns(name, offset, end - offset, kRunsPerCall);
    if (!runs.ok()) return Fail(img, runs.status());
    if (runs->empty()) break;  // past the disk's end
    for (const auto& r : *runs) {
      fn(opaque, offset, r.bytes, r.dirty ? 1 : 0);
      offset += r.bytes;
    }
  }
  return 0;
}

void strata_set_diagnostic_callback(strata_diagnostic_fn fn, void* opaque) {
  if (fn == nullptr) {
    strata::SetDiagnosticSink(nullptr);
    return;
  }
  strata::SetDiagnosticSink([fn, opaque](strata::DiagnosticKind kind, absl::string_view line) {
    const std::string text(line);
    int k = STRATA_DIAG_WARNING;
    switch (kind) {
      case strata::DiagnosticKind::kCheckFinding: k = STRATA_DIAG_CHECK; break;
      case strata::DiagnosticKind::kCorruption: k = STRATA_DIAG_CORRUPTION; break;
      case strata::DiagnosticKind::kBreakpoint: k = STRATA_DIAG_BREAKPOINT; break;
      case strata::DiagnosticKind::kNegotiation:
      case strata::DiagnosticKind::kConnection: k = STRATA_DIAG_NBD; break;
      case strata::DiagnosticKind::kError:
      case strata::DiagnosticKind::kWarning:
      case strata::DiagnosticKind::kContinuation: k = STRATA_DIAG_WARNING; break;
    }
    fn(opaque, k, text.c_str());
  });
}

int strata_queue_create(strata_image* img, strata_queue** out) {
  if (img == nullptr || out == nullptr) return -EINVAL;
  auto q = std::make_unique<strata_queue>();
  q->image = img;
  q->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->event_fd < 0) return Fail(img, strata::ErrnoError(errno));
  absl::StatusOr<std::unique_ptr<strata::Queue>> loop = strata::Queue::Start({});
  if (!loop.ok()) {
    ::close(q->event_fd);
    return Fail(img, loop.status());
  }
  q->loop = *std::move(loop);
  ++img->queues;
  *out = q.release();  // owned by the caller until strata_queue_destroy
  return 0;
}

int strata_queue_fd(strata_queue* q) { return q == nullptr ? -EINVAL : q->event_fd; }

int strata_queue_complete(strata_queue* q) {
  if (q == nullptr) return -EINVAL;
  uint64_t value;
  ssize_t r = ::read(q->event_fd, &value, sizeof(value));  // clear before taking the list
  (void)r;
  std::vector<strata_queue::Done> batch;
  {
    absl::MutexLock lock(&q->mu);
    batch.swap(q->done);
  }
  for (const strata_queue::Done& d : batch) {
    --q->pending;
    d.cb(d.opaque, d.result);
  }
  return static_cast<int>(batch.size());
}

int strata_aio_pread(strata_queue* q, void* buf, size_t len, uint64_t offset,
                     strata_completion_fn cb, void* opaque) {
  if (buf == nullptr && len > 0) return -EINVAL;
  strata::IoRequest r;
  r.op = strata::IoOp::kRead;
  r.offset = offset;
  r.bytes = len;
  if (len > 0) r.qiov = strata::IoVector(buf, len);
  return Submit(q, std::move(r), cb, opaque);
}

int strata_aio_pwrite(strata_queue* q, const void* buf, size_t len, uint64_t offset,
                      unsigned flags, strata_completion_fn cb, void* opaque) {
  if (buf == nullptr && len > 0) return -EINVAL;
  strata::IoRequest r;
  r.op = strata::IoOp::kWrite;
  r.offset = offset;
  r.bytes = len;
  r.flags = (flags & STRATA_REQ_FUA) ? strata::kReqFua : strata::kReqNone;
  if (len > 0) r.qiov = strata::IoVector(const_cast<void*>(buf), len);
  return Submit(q, std::move(r), cb, opaque);
}

int strata_aio_flush(strata_queue* q, strata_completion_fn cb, void* opaque) {
  strata::IoRequest r;
  r.op = strata::IoOp::kFlush;
  return Submit(q, std::move(r), cb, opaque);
}

int strata_queue_pending(strata_queue* q) { return q == nullptr ? -EINVAL : q->pending.load(); }

int strata_queue_destroy(strata_queue* q) {
  if (q == nullptr) return -EINVAL;
  std::unique_ptr<strata_queue> owned(q);
  // Collect until every submitted request has run its callback (callbacks may submit
  // more; those are waited for too).
  while (owned->pending.load() > 0) {
    pollfd p{owned->event_fd, POLLIN, 0};
    ::poll(&p, 1, 100);
    strata_queue_complete(owned.get());
  }
  owned->loop.reset();
  ::close(owned->event_fd);
  --owned->image->queues;
  return 0;
}

}  // extern "C"
