// strata/debug_breakpoints.h (public API): breakpoint controls of a fault-injection node (qemu-io's break/resume commands).
//
//   strata::DebugBreakpoints* bp = image->root().FindDebugBreakpoints();  // blkdebug below
//   bp->AddBreakpoint("write_aio", "A");   // the next data write parks
//   ...; bp->Resume("A");
//
// A request that raises a debug event with a breakpoint on it is suspended (its thread
// blocks) until another thread resumes it by tag. Implemented by the blkdebug driver;
// tools find it with BlockDriverState::FindDebugBreakpoints().
#ifndef STRATA_STRATA_DEBUG_BREAKPOINTS_H_
#define STRATA_STRATA_DEBUG_BREAKPOINTS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace strata {

// Thread-safe: every method may be called while other threads are suspended.
class DebugBreakpoints {
 public:
  virtual ~DebugBreakpoints() = default;
  // Adds a one-shot breakpoint on the event named `event`. ENOENT: unknown event.
  virtual absl::Status AddBreakpoint(absl::string_view event, absl::string_view tag) = 0;
  // Deletes the breakpoints tagged `tag` and resumes every request suspended with it.
  // ENOENT when there was neither.
  virtual absl::Status RemoveBreakpoint(absl::string_view tag) = 0;
  // Resumes the oldest request suspended with `tag`. ENOENT: none. Returns after the
  // request has been released (not necessarily after it completed).
  virtual absl::Status Resume(absl::string_view tag) = 0;
  // Resumes every suspended request.
  virtual void ResumeAll() = 0;
  // True if a request is suspended with `tag`.
  virtual bool IsSuspended(absl::string_view tag) = 0;
  // How many requests are suspended right now.
  virtual int SuspendedCount() = 0;
};

}  // namespace strata

#endif  // STRATA_STRATA_DEBUG_BREAKPOINTS_H_
