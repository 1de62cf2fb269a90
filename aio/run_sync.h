// strata aio: RunSync, a task run to completion by a synchronous caller.
//
// The task runs on the calling thread with no current IoContext, so every awaitable of
// this package completes inline and the task has returned when RunSync returns. Safe on
// a loop thread too (the loop does not run meanwhile). If a task suspends anyway (an
// awaitable another thread completes), RunSync waits for it.
#ifndef STRATA_AIO_RUN_SYNC_H_
#define STRATA_AIO_RUN_SYNC_H_

#include <optional>
#include <utility>

#include "absl/synchronization/notification.h"
#include "aio/io_context.h"
#include "aio/task.h"

namespace strata::aio {

template <typename T>
T RunSync(Task<T> task) {
  ScopedNoContext no_context;
  std::optional<T> result;
  absl::Notification done;
  Start(std::move(task), [&](T value) {
    result.emplace(std::move(value));
    done.Notify();
  });
  done.WaitForNotification();
  return std::move(*result);
}

}  // namespace strata::aio

#endif  // STRATA_AIO_RUN_SYNC_H_
