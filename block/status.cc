// strata: errno-carrying status helpers (see status.h).
#include "block/status.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace strata {
namespace {

constexpr absl::string_view kErrnoPayloadUrl = "strata/errno";

absl::StatusCode CodeForErrno(int errnum) {
  switch (errnum) {
    case ENOENT: return absl::StatusCode::kNotFound;
    case EINVAL: case E2BIG: case ERANGE: return absl::StatusCode::kInvalidArgument;
    case ENOSPC: case ENOMEM: case EFBIG: return absl::StatusCode::kResourceExhausted;
    case ENOTSUP: return absl::StatusCode::kUnimplemented;
    case EACCES: case EPERM: case EROFS: return absl::StatusCode::kPermissionDenied;
    case EAGAIN: case EBUSY: return absl::StatusCode::kUnavailable;
    case EEXIST: return absl::StatusCode::kAlreadyExists;
    case ECANCELED: return absl::StatusCode::kCancelled;
    case ENOMEDIUM: return absl::StatusCode::kFailedPrecondition;
    default: return absl::StatusCode::kInternal;
  }
}

int ErrnoForCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 0;
    case absl::StatusCode::kNotFound: return ENOENT;
    case absl::StatusCode::kInvalidArgument: return EINVAL;
    case absl::StatusCode::kResourceExhausted: return ENOSPC;
    case absl::StatusCode::kUnimplemented: return ENOTSUP;
    case absl::StatusCode::kPermissionDenied: return EACCES;
    case absl::StatusCode::kUnavailable: return EAGAIN;
    case absl::StatusCode::kAlreadyExists: return EEXIST;
    case absl::StatusCode::kCancelled: return ECANCELED;
    case absl::StatusCode::kOutOfRange: return EINVAL;
    default: return EIO;
  }
}

}  // namespace

std::string StrError(int errnum) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  return std::string(strerror_r(errnum, buf, sizeof(buf)));
}

absl::Status ErrnoError(int errnum, absl::string_view message) {
  absl::Status status(CodeForErrno(errnum), message);
  status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::StrCat(errnum)));
  return status;
}

absl::Status ErrnoError(int errnum) { return ErrnoError(errnum, StrError(errnum)); }

int ErrnoOf(const absl::Status& status) {
  if (status.ok()) return 0;
  absl::optional<absl::Cord> payload = status.GetPayload(kErrnoPayloadUrl);
  int errnum = 0;
  if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &errnum) && errnum > 0) {
    return errnum;
  }
  return ErrnoForCode(status.code());
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return ErrnoError(ErrnoOf(status), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace strata
