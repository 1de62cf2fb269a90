// Fuzz target: the qemu-io command language (strata-io's parser and commands). Each
// input is a script, one command per line (at most 64), run against a fresh 1 MiB qcow2
// image over a blkdebug node (so break/wait_break/resume have events to stop at).
// Commands that end the process or wait on purpose (abort, sigraise, sleep, quit), that
// open other files (open), and lines naming paths (a '/') are skipped: the harness, not
// the input, decides which files exist. Output goes to stdout/stderr like the tool's.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "block/registry.h"
#include "tests/fuzz/fuzz_sandbox.h"
#include "tools/strata_io/io_session.h"

namespace {

const char* const kSkipped[] = {"abort", "sigraise", "sleep", "quit", "q", "open", "o"};

// Synchronous commands that wait for overlapping or all in-flight requests. Once a
// breakpoint was set, a request may be parked at it, and qemu-io itself then waits
// forever in them (checked with qemu-io 7.2: break write_aio A; aio_write 5 4k;
// read 4k 3k never returns, the unaligned write being a serialising request), so the
// harness skips them after a `break`: a hang there is QEMU's semantics, not a finding.
// Status queries (alloc, map) and the breakpoint commands themselves still run.
const char* const kWaitingCommands[] = {"read",  "r", "write", "w",        "readv",    "writev",
                                        "discard", "d", "flush", "f",      "truncate", "t",
                                        "aio_flush", "close", "c", "reopen"};

bool Skipped(const std::string& line, bool* breakpoints_set) {
  if (line.find('/') != std::string::npos) return true;
  std::vector<std::string> argv = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (argv.empty()) return true;
  for (const char* s : kSkipped) {
    if (argv[0] == s) return true;
  }
  if (argv[0] == "break") *breakpoints_set = true;
  if (*breakpoints_set) {
    for (const char* s : kWaitingCommands) {
      if (argv[0] == s) return true;
    }
  }
  return false;
}

const std::string& TemplateImage() {
  static const std::string path = [] {
    std::string p = strata::fuzz::ScratchDir() + "/template.qcow2";
    strata::CreateRequest create{p, 1 << 20, {{"cluster_size", "4096"}}};
    if (!strata::DriverRegistry::Global().Find("qcow2")->Create(create).ok()) std::abort();
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string image = strata::fuzz::ScratchDir() + "/io.qcow2";
  std::filesystem::copy_file(TemplateImage(), image,
                             std::filesystem::copy_options::overwrite_existing);
  strata::io::IoSession session;
  strata::ImageSpec request;
  request.options.read_only = false;
  request.filename = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"blkdebug\",\"image\":"
                     "{\"driver\":\"file\",\"filename\":\"" + image + "\"}}}";
  session.last_open = request;  // what reopen starts from, as the open command records it
  if (!session.Open(request).ok()) std::abort();  // the harness's own image must open
  const std::string text(reinterpret_cast<const char*>(data), size);
  int lines = 0;
  bool breakpoints_set = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (++lines > 64) break;
    std::string l(line);
    if (Skipped(l, &breakpoints_set)) continue;
    (void)session.RunLine(l);
    session.PrintFinishedAio();
  }
  session.Close();
  return 0;
}
