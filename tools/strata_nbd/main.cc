// strata-nbd: a drop-in for qemu-nbd 7.2 (serve an image over NBD, or list a server's
// exports with -L).
#include <csignal>
#include <cstdio>

#include "strata/diagnostics.h"
#include "tools/common/program.h"
#include "tools/strata_nbd/list_exports.h"
#include "tools/strata_nbd/nbd_options.h"
#include "tools/strata_nbd/serve.h"
#include "tools/strata_nbd/tls_objects.h"

int main(int argc, char** argv) {
  strata::tools::SetProgramName(argv[0]);
  strata::SetDiagnosticSink(strata::PrintingDiagnosticSink(strata::tools::ProgramName()));
  int exit_code = 0;
  std::optional<strata::nbd_tool::NbdOptions> options =
      strata::nbd_tool::ParseNbdOptions(argc, argv, &exit_code);
  if (!options) return exit_code;
  // Dropped clients are reported only with -v (qemu-nbd's output stays quiet otherwise).
  strata::SetDiagnosticSink([printing = strata::PrintingDiagnosticSink(strata::tools::ProgramName()),
                             verbose = options->verbose](strata::DiagnosticKind kind,
                                                         absl::string_view line) {
    if (kind != strata::DiagnosticKind::kConnection || verbose) printing(kind, line);
  });
  // A peer that closes while we write must not kill the process (TLS writes use send).
  ::signal(SIGPIPE, SIG_IGN);
  strata::nbd_tool::TlsSetup tls;
  if (!strata::nbd_tool::SetUpTls(*options, &tls)) return 1;
  if (options->list) return strata::nbd_tool::ListExports(*options, tls.client.get());
  return strata::nbd_tool::Serve(*options, tls.server);
}
