// strata aio: the engine interface an IoContext drives (internal to //aio).
#ifndef STRATA_AIO_BACKEND_H_
#define STRATA_AIO_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "aio/file_op.h"

namespace strata::aio {

class Backend {
 public:
  virtual ~Backend() = default;
  // Loop thread only. Starts `op`; when it completes, the backend sets op->result and
  // resumes op->waiter on the loop thread (from Poll, or through IoContext::Post).
  virtual void Submit(FileOp* op) = 0;
  // Loop thread only. Submits what Submit queued; if `block`, waits until at least one
  // operation completed or Wake was called. Resumes the waiters of completed operations.
  virtual void Poll(bool block) = 0;
  // Any thread: makes a blocked Poll return soon.
  virtual void Wake() = 0;
  // Operations submitted and not yet completed.
  virtual int in_flight() const = 0;
};

// io_uring through liburing, `entries` submission slots. Fails if the kernel refuses.
absl::StatusOr<std::unique_ptr<Backend>> NewUringBackend(IoContext* context, unsigned entries);
// Every operation runs on the shared blocking pool (QEMU's aio=threads).
absl::StatusOr<std::unique_ptr<Backend>> NewThreadBackend(IoContext* context);

}  // namespace strata::aio

#endif  // STRATA_AIO_BACKEND_H_
