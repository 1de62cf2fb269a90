// strata-img: a drop-in replacement for qemu-img (subcommand dispatch).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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

void Usage() {
  std::printf("%s version 7.2.0 (strata)\n"
              "usage: %s [standard options] command [command options]\n"
              "Commands: amend bench bitmap check commit compare convert create dd info map measure rebase resize snapshot\n",
              strata::tools::ProgramName().c_str(), strata::tools::ProgramName().c_str());
}

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
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    Usage();
    return 0;
  }
  if (cmd == "-V" || cmd == "--version") {
    std::printf("%s version 7.2.0 (strata)\n", strata::tools::ProgramName().c_str());
    return 0;
  }
  for (const Subcommand& s : kSubcommands) {
    if (cmd == s.name) {
      strata::img::Args args(argv + 1, argv + argc);
      int rc = s.run(args);
      std::fflush(stdout);
      return rc;
    }
  }
  strata::tools::ErrorReport("Command not found: " + cmd);
  return 1;
}
