// strata/diagnostics.h (public API): where the library's messages for people go (the library never prints).
//
//   strata::SetDiagnosticSink([](strata::DiagnosticKind kind, absl::string_view line) {
//     my_log(kind, line);              // any thread, concurrently
//   });
//
// Some findings are meant for a person, not for the caller's control flow: the per-cluster
// findings of a qcow2 check, "Marking image as corrupt", blkdebug's breakpoint messages.
// QEMU prints them; strata hands each line to the process's diagnostic sink. The default
// sink drops them; the tools install PrintingDiagnosticSink() so their output is QEMU's, and
// an embedder installs its own (its log, its monitor).
//
// Thread safety: Diagnose may be called from any thread, concurrently; the sink must be
// thread-safe. SetDiagnosticSink may be called at any time.
#ifndef STRATA_STRATA_DIAGNOSTICS_H_
#define STRATA_STRATA_DIAGNOSTICS_H_

#include <functional>

#include "absl/strings/string_view.h"

namespace strata {

enum class DiagnosticKind {
  kCheckFinding,  // qcow2 check: one finding or repair step (QEMU prints to stderr)
  kCorruption,    // metadata found corrupt while serving I/O (stderr)
  kBreakpoint,    // blkdebug: a request suspended or resumed at a breakpoint (stdout)
  kNegotiation,   // an NBD client failed to negotiate, and why (stderr, as qemu-nbd)
  kConnection,    // a negotiated NBD client was dropped for an error, and why (stderr)
  kError,         // an error the operation survived (QEMU error_report: "<program>: ...")
  kWarning,       // a warning about an image (QEMU warn_report: "<program>: warning: ...")
  kContinuation,  // text that follows a warning as is, without a newline (error_printf)
};

// One line, without its newline.
using DiagnosticSink = std::function<void(DiagnosticKind kind, absl::string_view line)>;

// Replaces the process's sink; an empty function drops every message (the default).
void SetDiagnosticSink(DiagnosticSink sink);

// Hands `line` to the sink.
void Diagnose(DiagnosticKind kind, absl::string_view line);

// The tools' sink: each line as QEMU prints it (breakpoint messages on stdout, flushed;
// the rest on stderr; warnings prefixed "<program>: warning: ").
DiagnosticSink PrintingDiagnosticSink(absl::string_view program = "");

}  // namespace strata

#endif  // STRATA_STRATA_DIAGNOSTICS_H_
