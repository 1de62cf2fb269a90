// strata: the diagnostic sink (see diagnostics.h).
#include "block/diagnostics.h"

#include <cstdio>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"

namespace strata {
namespace {

absl::Mutex g_mu;
std::shared_ptr<const DiagnosticSink>& SinkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static std::shared_ptr<const DiagnosticSink>& sink =
      *std::make_unique<std::shared_ptr<const DiagnosticSink>>().release();  // never destroyed
  return sink;
}

}  // namespace

void SetDiagnosticSink(DiagnosticSink sink) {
  auto next = sink ? std::make_shared<const DiagnosticSink>(std::move(sink)) : nullptr;
  absl::MutexLock lock(&g_mu);
  SinkLocked() = std::move(next);
}

void Diagnose(DiagnosticKind kind, absl::string_view line) {
  std::shared_ptr<const DiagnosticSink> sink;
  {
    absl::MutexLock lock(&g_mu);
    sink = SinkLocked();
  }
  if (sink) (*sink)(kind, line);
}

DiagnosticSink PrintingDiagnosticSink(absl::string_view program) {
  return [program = std::string(program)](DiagnosticKind kind, absl::string_view line) {
    FILE* out = kind == DiagnosticKind::kBreakpoint ? stdout : stderr;
    if (kind == DiagnosticKind::kWarning) std::fprintf(out, "%s: warning: ", program.c_str());
    if (kind == DiagnosticKind::kError) std::fprintf(out, "%s: ", program.c_str());
    std::fprintf(out, kind == DiagnosticKind::kContinuation ? "%.*s" : "%.*s\n",
                 static_cast<int>(line.size()), line.data());
    std::fflush(out);
  };
}

}  // namespace strata
