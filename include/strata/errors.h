// strata/errors.h: errno-carrying status helpers (public API).
//
//   absl::Status s = strata::ErrnoError(ENOSPC, "No space left on device");
//   if (strata::ErrnoOf(s) == ENOSPC) ...
//
// Every error in strata is an absl::Status whose message is the human sentence a tool prints
// (QEMU's wording) and whose payload carries the errno-class meaning (EIO, ENOSPC, EINVAL...),
// so that callers can branch on the errno without parsing text.
#ifndef STRATA_STRATA_ERRORS_H_
#define STRATA_STRATA_ERRORS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata {

// Returns a status with the absl code that best matches `errnum`, the message `message`
// and `errnum` attached as payload. `errnum` must be positive.
absl::Status ErrnoError(int errnum, absl::string_view message);

// Same, with the message `strerror(errnum)` ("Input/output error").
absl::Status ErrnoError(int errnum);

// The errno carried by `status`; for a status made elsewhere, a best guess from its code.
// Returns 0 for OK.
int ErrnoOf(const absl::Status& status);

// strerror(3) as a std::string, thread-safe.
std::string StrError(int errnum);

// Returns `status` with `prefix` prepended to its message, errno payload kept:
// Prefixed("Could not open 'x'", s) -> "Could not open 'x': <s.message()>".
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status);

}  // namespace strata

#define STRATA_STATUS_CONCAT_INNER_(a, b) a##b
#define STRATA_STATUS_CONCAT_(a, b) STRATA_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define STRATA_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::absl::Status strata_status_ = (expr);       \
    if (!strata_status_.ok()) return strata_status_; \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its error.
#define STRATA_ASSIGN_OR_RETURN(lhs, expr)                                         \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(strata_statusor_, __LINE__), \
                                lhs, expr)
#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// The same two for coroutines (co_return instead of return).
#define STRATA_CO_RETURN_IF_ERROR(expr)                 \
  do {                                                  \
    ::absl::Status strata_status_ = (expr);             \
    if (!strata_status_.ok()) co_return strata_status_; \
  } while (0)
#define STRATA_CO_ASSIGN_OR_RETURN(lhs, expr)                                         \
  STRATA_CO_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(strata_statusor_, __LINE__), \
                                   lhs, expr)
#define STRATA_CO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) co_return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // STRATA_STRATA_ERRORS_H_
