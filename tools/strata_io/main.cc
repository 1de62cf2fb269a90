// strata-io: a drop-in replacement for qemu-io. Runs the qemu-io command language on an
// image: commands from -c (in order), or read from standard input with a prompt.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "strata/queue.h"
#include "strata/types.h"
#include "strata/diagnostics.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_io/io_session.h"

namespace {

void Usage() {
  std::printf(
      "Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
      "QEMU Disk exerciser\n"
      "\n"
      "  --object OBJECTDEF   define an object such as 'secret' for\n"
      "                       passwords and/or encryption keys\n"
      "  --image-opts         treat file as option string\n"
      "  -c, --cmd STRING     execute command with its arguments\n"
      "                       from the given string\n"
      "  -f, --format FMT     specifies the block driver to use\n"
      "  -r, --read-only      export read-only\n"
      "  -s, --snapshot       use snapshot file\n"
      "  -n, --nocache        disable host cache, short for -t none\n"
      "  -C, --copy-on-read   enable copy-on-read\n"
      "  -m, --misalign       misalign allocations for O_DIRECT\n"
      "  -k, --native-aio     use kernel AIO implementation\n"
      "                       (Linux only, prefer use of -i)\n"
      "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
      "  -t, --cache=MODE     use the given cache mode for the image\n"
      "  -d, --discard=MODE   use the given discard mode for the image\n"
      "  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
      "                       specify tracing options\n"
      "                       see qemu-img(1) man page for full description\n"
      "  -U, --force-share    force shared permissions\n"
      "  -h, --help           display this help and exit\n"
      "  -V, --version        output version information and exit\n"
      "\n"
      "See '%s -c help' for information on available commands.\n"
      "\n"
      "Report bugs to the strata project; this is not QEMU's qemu-io.\n",
      strata::tools::ProgramName().c_str(), strata::tools::ProgramName().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  strata::tools::SetProgramName(argv[0]);
  // Check findings, corruption reports and breakpoint messages, printed as QEMU does.
  strata::SetDiagnosticSink(strata::PrintingDiagnosticSink(strata::tools::ProgramName()));
  strata::tools::SetQemuStdioBuffering();
  strata::io::IoSession session;
  std::vector<std::string> commands;
  bool read_only = false;
  enum { kOptObject = 256, kOptImageOpts };
  static const struct option kLongOptions[] = {
      {"help", no_argument, nullptr, 'h'},       {"version", no_argument, nullptr, 'V'},
      {"cmd", required_argument, nullptr, 'c'},  {"format", required_argument, nullptr, 'f'},
      {"read-only", no_argument, nullptr, 'r'},  {"snapshot", no_argument, nullptr, 's'},
      {"nocache", no_argument, nullptr, 'n'},    {"copy-on-read", no_argument, nullptr, 'C'},
      {"misalign", no_argument, nullptr, 'm'},   {"native-aio", no_argument, nullptr, 'k'},
      {"aio", required_argument, nullptr, 'i'},  {"discard", required_argument, nullptr, 'd'},
      {"cache", required_argument, nullptr, 't'}, {"trace", required_argument, nullptr, 'T'},
      {"object", required_argument, nullptr, kOptObject},
      {"image-opts", no_argument, nullptr, kOptImageOpts},
      {"force-share", no_argument, nullptr, 'U'}, {nullptr, 0, nullptr, 0}};
  int c;
  // GNU getopt permutes: the file may come before the options, as with qemu-io.
  while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmkt:T:Ui:", kLongOptions, nullptr)) != -1) {
    switch (c) {
      case 'h': Usage(); return 0;
      case 'V':
        std::printf("%s version 7.2.0 (strata)\nCopyright (c) 2026 the strata developers\n",
                    strata::tools::ProgramName().c_str());
        return 0;
      case 'c': commands.push_back(optarg); break;
      case 'f': session.default_format = optarg; break;
      case 'r': read_only = true; break;
      case 'n': session.default_flags.cache.direct = true; session.writethrough = false; break;
      case 't': {
        std::optional<strata::CacheMode> mode = strata::io::ParseCacheArg(optarg);
        if (!mode) return 1;
        session.default_flags.cache = *mode;
        session.writethrough = mode->writethrough;
        break;
      }
      case 'd': {
        std::optional<bool> unmap = strata::io::ParseDiscardArg(optarg);
        if (!unmap) return 1;
        session.default_flags.discard_unmap = *unmap;
        break;
      }
      case 'U': session.default_flags.force_share = true; break;
      case kOptImageOpts: session.image_opts = true; break;
      case 's': session.default_flags.snapshot = true; break;
      case 'k': session.default_flags.aio = "native"; break;
      case 'i':
        if (!strata::ParseQueueEngine(optarg).ok()) {
          strata::tools::ErrorReport(absl::StrCat("Invalid aio option: ", optarg));
          return 1;
        }
        session.default_flags.aio = optarg;
        break;
      case kOptObject:
        if (!strata::tools::DefineObject(optarg)) return 1;
        break;
      case 'C': session.default_flags.copy_on_read = true; break;
      case 'm': session.misalign = true; break;
      case 'T':
        if (!strata::tools::HandleTraceOption(optarg)) return 1;
        break;
      default:  // getopt printed what was wrong; qemu-io then prints its usage
        Usage();
        return 1;
    }
  }
  // qemu-io's order: more than one file prints the usage; then a format given with
  // --image-opts (which names the driver itself) is refused.
  if (argc - optind > 1) {
    Usage();
    return 1;
  }
  if (session.image_opts && !session.default_format.empty()) {
    strata::tools::ErrorReport("--image-opts and -f are mutually exclusive");
    return 1;
  }
  bool failed = false;
  if (optind < argc) {
    std::vector<std::string> open_argv = {"open"};
    if (read_only) open_argv.push_back("-r");
    open_argv.push_back(argv[optind]);
    if (!session.Run(open_argv)) return 1;
  } else {
    session.default_flags.read_only = read_only;
  }
  if (!commands.empty()) {
    for (const std::string& cmd : commands) {
      if (!session.RunLine(cmd)) failed = true;
      if (session.quit_requested) break;
    }
  } else {
    std::string line;
    while (true) {
      std::printf("%s> ", strata::tools::ProgramName().c_str());
      std::fflush(stdout);
      if (!std::getline(std::cin, line)) break;
      if (!session.RunLine(line)) failed = true;
      if (session.quit_requested) break;
    }
  }
  session.Close();
  return failed ? 1 : 0;
}
