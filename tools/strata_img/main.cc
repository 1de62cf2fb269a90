// strata-img: a drop-in replacement for qemu-img (subcommand dispatch).
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "strata/diagnostics.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(const strata::img::Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"amend", strata::img::AmendMain},     {"bench", strata::img::BenchMain},     {"bitmap", strata::img::BitmapMain},     {"check", strata::img::CheckMain},
    {"commit", strata::img::CommitMain},   {"compare", strata::img::CompareMain},
    {"convert", strata::img::ConvertMain}, {"create", strata::img::CreateMain},
    {"dd", strata::img::DdMain},
    {"info", strata::img::InfoMain},       {"map", strata::img::MapMain},
    {"measure", strata::img::MeasureMain},
    {"rebase", strata::img::RebaseMain},   {"resize", strata::img::ResizeMain},
    {"snapshot", strata::img::SnapshotMain},
};

}  // namespace

int main(int argc, char** argv) {
  strata::tools::SetProgramName(argv[0]);
  // Check findings, corruption reports and breakpoint messages, printed as QEMU does.
  strata::SetDiagnosticSink(strata::PrintingDiagnosticSink(strata::tools::ProgramName()));
  strata::tools::SetQemuStdioBuffering();
  if (argc < 2) {
    strata::tools::ErrorReport("Not enough arguments");
    std::fprintf(stderr, "Try '%s --help' for more information\n",
                 strata::tools::ProgramName().c_str());
    return 1;
  }
  // qemu-img's standard options come before the command: -h, -V, and -T (tracing:
  // strata has no trace events, so it warns as QEMU does for names that match none).
  int first = 1;
  for (; first < argc && argv[first][0] == '-'; ++first) {
    const std::string opt = argv[first];
    if (opt == "-h" || opt == "--help") return strata::img::PrintHelp();
    if (opt == "-V" || opt == "--version") {
      strata::img::PrintVersion();
      return 0;
    }
    std::optional<std::string> trace;  // -T VALUE, -TVALUE, --trace VALUE, --trace=VALUE
    if (opt == "-T" || opt == "--trace") {
      if (++first == argc) {
        strata::tools::ErrorReport(
            absl::StrCat("missing argument for option '", opt, "'"));
        return strata::img::TryHelp(1);
      }
      trace = argv[first];
    } else if (absl::StartsWith(opt, "--trace=")) {
      trace = opt.substr(8);
    } else if (absl::StartsWith(opt, "-T")) {
      trace = opt.substr(2);
    }
    if (trace.has_value()) {
      if (!strata::tools::HandleTraceOption(*trace)) return 1;
      continue;
    }
    strata::tools::ErrorReport(absl::StrCat("unrecognized option '", opt, "'"));
    return strata::img::TryHelp(1);
  }
  if (first == argc) {
    strata::tools::ErrorReport("Not enough arguments");
    return strata::img::TryHelp(1);
  }
  std::string cmd = argv[first];
  for (const Subcommand& s : kSubcommands) {
    if (cmd == s.name) {
      strata::img::Args args(argv + first, argv + argc);
      int rc = s.run(args);
      std::fflush(stdout);
      return rc;
    }
  }
  strata::tools::ErrorReport("Command not found: " + cmd);
  return 1;
}
