// strata-io: commands about the open image rather than its data: open, close, info,
// length, map, alloc, flush, truncate, and the process commands abort, sigraise, sleep,
// quit, help.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/time/clock.h"
#include "strata/queue.h"
#include "strata/types.h"
#include "strata/options.h"
#include "strata/errors.h"
#include "absl/strings/str_cat.h"
#include "tools/common/format_specific.h"
#include "tools/common/human_size.h"
#include "tools/common/program.h"
#include "tools/strata_io/arg_parser.h"
#include "tools/strata_io/io_commands.h"

namespace strata::io {

using tools::QemuIoSizeString;

bool OpenCommand(IoSession& s, const Args& argv) {
  if (s.is_open()) {
    tools::ErrorReport("file open already, try 'help close'");
    return false;
  }
  ArgParser p(argv, "snCrkUi:t:d:o:");
  ImageSpec request;
  request.options = s.default_flags;
  request.format = s.default_format;
  request.image_opts = s.image_opts;
  bool writethrough = s.writethrough;
  while (auto c = p.Next()) {
    switch (*c) {
      case 's': request.options.snapshot = true; break;
      case 'C': request.options.copy_on_read = true; break;
      case 'k': request.options.aio = "native"; break;
      case 'i':
        if (!ParseQueueEngine(p.value()).ok()) {
          tools::ErrorReport(absl::StrCat("Invalid aio option: ", p.value()));
          return false;
        }
        request.options.aio = p.value();
        break;
      case 'n': request.options.cache.direct = true; writethrough = false; break;
      case 'r': request.options.read_only = true; break;
      case 'U': request.options.force_share = true; break;
      case 't': {
        std::optional<CacheMode> mode = ParseCacheArg(p.value());
        if (!mode) return false;
        request.options.cache = *mode;
        writethrough = mode->writethrough;
        break;
      }
      case 'd': {
        std::optional<bool> unmap = ParseDiscardArg(p.value());
        if (!unmap) return false;
        request.options.discard_unmap = *unmap;
        break;
      }
      case 'o': {
        absl::StatusOr<std::string> opts = KeyvalsToJson({p.value()}, /*warn_short_forms=*/true);
        if (!opts.ok()) {
          tools::ErrorReport(opts.status().message());
          return false;
        }
        request.overlay.push_back(p.value());
        break;
      }
      default: PrintUsage("open"); return false;
    }
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() > 1) {
    PrintUsage("open");
    return false;
  }
  if (!rest.empty()) request.filename = rest[0];
  // "open -o driver=raw,file.filename=x" names the image by options only.
  if (rest.empty()) {
    request.image_opts = false;
    absl::StatusOr<std::string> json = KeyvalsToJson(request.overlay);
    if (!json.ok()) return false;
    request.filename = "json:" + *json;
    request.overlay.clear();
  }
  s.writethrough = writethrough;
  s.last_open = request;
  absl::Status st = s.Open(request);
  if (!st.ok()) {
    // Images named by options (--image-opts, open -o) have no device name to print.
    bool named = !rest.empty() && !request.image_opts;
    tools::ErrorReport(absl::StrCat("can't open", named ? " device " : "",
                                    named ? rest[0] : "", ": ", st.message()));
    return false;
  }
  return true;
}

bool CloseCommand(IoSession& s, const Args&) {
  s.Close();
  return true;
}

bool InfoCommand(IoSession& s, const Args&) {
  Node root = s.backend().root();
  DriverInfo info = root.GetInfo();
  // qemu-io prints the driver's format name, then its protocol name when it has one
  // (protocol drivers and blkdebug: the same name twice), then fails (no message) if the
  // driver has no info to give.
  const std::string name(root.driver_name());
  std::printf("format name: %s\n", name.c_str());
  if (root.driver_kind() == DriverKind::kProtocol || root.has_protocol_prefix()) {
    std::printf("format name: %s\n", name.c_str());
  }
  if (!info.available) return false;
  std::printf("cluster size: %s\n", QemuIoSizeString(info.cluster_size_bytes).c_str());
  std::printf("vm state offset: %s\n", QemuIoSizeString(info.vm_state_offset_bytes).c_str());
  FormatSpecificInfo fs = root.GetFormatSpecificInfo();
  if (!fs.type.empty()) {
    std::printf("Format specific information:\n");
    tools::PrintFormatSpecificHuman(fs);
  }
  return true;
}

bool LengthCommand(IoSession& s, const Args&) {
  absl::StatusOr<uint64_t> len = s.backend().GetLength();
  if (!len.ok()) {
    std::printf("getlength: %s\n", StrError(ErrnoOf(len.status())).c_str());
    return false;
  }
  std::printf("%s\n", QemuIoSizeString(*len).c_str());
  return true;
}

// qemu-io 7.2's map reports allocation in the top image only (checked against the real
// binary on a backing chain: a range inherited from the backing file is "not allocated").
bool MapCommand(IoSession& s, const Args&) {
  Node root = s.backend().root();
  absl::StatusOr<uint64_t> len = s.backend().GetLength();
  if (!len.ok()) return false;
  uint64_t offset = 0;
  while (offset < *len) {
    bool allocated = false;
    absl::StatusOr<uint64_t> n = root.IsAllocated(offset, *len - offset, &allocated);
    if (!n.ok() || *n == 0) {
      std::printf("Failed to get allocation status: %s\n",
                  StrError(n.ok() ? EIO : ErrnoOf(n.status())).c_str());
      return false;
    }
    // Merge following runs with the same status.
    uint64_t run = *n;
    while (offset + run < *len) {
      bool next_alloc = false;
      absl::StatusOr<uint64_t> m =
          root.IsAllocated(offset + run, *len - offset - run, &next_alloc);
      if (!m.ok() || *m == 0 || next_alloc != allocated) break;
      run += *m;
    }
    std::printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
                QemuIoSizeString(run).c_str(), run,
                allocated ? "    allocated" : "not allocated",
                QemuIoSizeString(offset).c_str(), offset);
    offset += run;
  }
  return true;
}

bool AllocCommand(IoSession& s, const Args& argv) {
  std::optional<int64_t> offset = ParseNumberArg(argv[1]);
  if (!offset) return false;
  int64_t count = 512;
  if (argv.size() == 3) {
    std::optional<int64_t> c = ParseNumberArg(argv[2]);
    if (!c) return false;
    count = *c;
  }
  // As qemu-io: the walk stops at the image end, and the count printed is the part of
  // the range walked (0 past the end).
  absl::StatusOr<uint64_t> image_length = s.backend().GetLength();
  if (!image_length.ok()) {
    std::printf("is_allocated failed: %s\n", StrError(ErrnoOf(image_length.status())).c_str());
    return false;
  }
  const uint64_t length = *image_length;
  uint64_t remaining = count, pos = *offset, allocated_bytes = 0;
  while (remaining > 0) {
    bool allocated = false;
    absl::StatusOr<uint64_t> n = pos >= length ? absl::StatusOr<uint64_t>(0)
        : s.backend().root().IsAllocated(pos, std::min(remaining, length - pos), &allocated);
    if (!n.ok()) {
      std::printf("is_allocated failed: %s\n", StrError(ErrnoOf(n.status())).c_str());
      return false;
    }
    if (*n == 0) {
      count -= remaining;
      break;
    }
    if (allocated) allocated_bytes += *n;
    pos += *n;
    remaining -= *n;
  }
  std::printf("%" PRIu64 "/%" PRId64 " bytes allocated at offset %s\n", allocated_bytes, count,
              QemuIoSizeString(*offset).c_str());
  return true;
}

bool FlushCommand(IoSession& s, const Args&) {
  absl::Status st = s.backend().Flush();
  if (!st.ok()) {
    std::printf("flush failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  return true;
}

bool TruncateCommand(IoSession& s, const Args& argv) {
  ArgParser p(argv, "m:");
  PreallocMode prealloc = PreallocMode::kOff;
  while (auto c = p.Next()) {
    if (*c != 'm') {
      PrintUsage("truncate");
      return false;
    }
    const std::string& m = p.value();
    if (m == "off") prealloc = PreallocMode::kOff;
    else if (m == "metadata") prealloc = PreallocMode::kMetadata;
    else if (m == "falloc") prealloc = PreallocMode::kFalloc;
    else if (m == "full") prealloc = PreallocMode::kFull;
    else {
      tools::ErrorReport(absl::StrCat("Invalid preallocation mode '", m, "'"));
      return false;
    }
  }
  // qemu-io takes up to three words and truncates at the first operand; the rest are
  // ignored.
  std::vector<std::string> rest = p.Rest();
  if (rest.empty()) {
    PrintUsage("truncate");
    return false;
  }
  std::optional<int64_t> offset = ParseNumberArg(rest[0]);
  if (!offset) return false;
  absl::Status st = s.backend().Truncate(*offset, false, prealloc);
  if (!st.ok()) {
    tools::ErrorReport(st.message());
    return false;
  }
  return true;
}

bool AbortCommand(IoSession&, const Args&) {
  std::abort();
}

bool SigraiseCommand(IoSession&, const Args& argv) {
  // As qemu-io: 0 raises nothing (raise(0) is a no-op); only the upper bound is checked.
  std::optional<int64_t> sig = ParseNumberArg(argv[1]);
  if (!sig) return false;
  if (*sig > NSIG) {
    std::printf("signal argument '%s' is too large to be a valid signal\n", argv[1].c_str());
    return false;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  raise(static_cast<int>(*sig));
  return true;
}

bool SleepCommand(IoSession&, const Args& argv) {
  char* end = nullptr;
  long ms = std::strtol(argv[1].c_str(), &end, 10);
  if (ms < 0 || *end != '\0') {
    std::printf("%s is not a valid number\n", argv[1].c_str());
    return false;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return true;
}

bool QuitCommand(IoSession& s, const Args&) {
  s.quit_requested = true;
  return true;
}

bool HelpCommand(IoSession&, const Args& argv) {
  if (argv.size() == 1) {
    for (const Command& c : Commands()) PrintUsage(c.name);
    std::printf("\nUse 'help commandname' for extended help.\n");
    return true;
  }
  for (const Command& c : Commands()) {
    if (argv[1] == c.name || (c.alias != nullptr && argv[1] == c.alias)) {
      PrintUsage(c.name);
      if (c.help != nullptr) std::printf("%s", c.help);
      return true;
    }
  }
  std::printf("command %s not found\n", argv[1].c_str());
  return false;
}

}  // namespace strata::io

namespace strata::io {

namespace {

// QEMU's rule for reopen -o: an option the node's driver cannot change at runtime is
// refused ("Cannot change the option 'KEY'", KEY relative to its node) unless it keeps
// its current value. Keys under a child's name ("file.cache.direct") go to that child.
using OptionLeaves = std::vector<std::pair<std::string, std::string>>;

absl::Status CheckReopenOptions(Node root, const OptionLeaves& leaves) {
  for (const auto& [key, value] : leaves) {
    Node node = root;
    absl::string_view rel = key;
    for (;;) {
      const size_t dot = rel.find('.');
      if (dot == absl::string_view::npos) break;
      Node child = node.child(rel.substr(0, dot));
      if (!child) break;
      node = child;
      rel.remove_prefix(dot + 1);
    }
    // Values are checked before mutability (QEMU parses the new options first); the
    // on/off options are the ones a value error can reach before the refusal.
    if ((rel == "force-share" || rel == "read-only" || rel == "auto-read-only") &&
        value != "on" && value != "off") {
      return absl::InvalidArgumentError(
          absl::StrCat("Parameter '", rel, "' expects 'on' or 'off'"));
    }
    if (node.CanChangeAtReopen(rel)) continue;
    if (rel == "driver" && value == node.driver_name()) continue;
    if (rel == "filename" && value == node.filename()) continue;
    return absl::InvalidArgumentError(absl::StrCat("Cannot change the option '", rel, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

bool ReopenCommand(IoSession& s, const Args& argv) {
  ArgParser p(argv, "c:o:rw");
  ImageSpec request = s.last_open;
  bool writethrough = s.writethrough;
  int rw_options = 0;
  std::vector<OptionLeaves> option_leaves;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'r': request.options.read_only = true; ++rw_options; break;
      case 'w': request.options.read_only = false; ++rw_options; break;
      case 'c': {
        std::optional<CacheMode> mode = ParseCacheArg(p.value());
        if (!mode) return false;
        request.options.cache = *mode;
        writethrough = mode->writethrough;
        break;
      }
      case 'o': {
        if (!s.is_open()) break;  // checked below, with QEMU's message
        // Parsed now (syntax errors and short-form warnings come first, as in qemu-io),
        // checked once every argument is read.
        absl::StatusOr<OptionLeaves> leaves = KeyvalLeaves(p.value(), /*warn_short_forms=*/true);
        if (!leaves.ok()) {
          tools::ErrorReport(leaves.status().message());
          return false;
        }
        option_leaves.push_back(*std::move(leaves));
        request.overlay.push_back(p.value());
        break;
      }
      default: PrintUsage("reopen"); return false;
    }
  }
  if (rw_options > 1) {
    tools::ErrorReport("Only one -r/-w option may be given");
    return false;
  }
  if (!p.Rest().empty()) {
    PrintUsage("reopen");
    return false;
  }
  for (const OptionLeaves& leaves : option_leaves) {
    const bool sets_read_only = std::any_of(leaves.begin(), leaves.end(),
                                            [](const auto& kv) { return kv.first == "read-only"; });
    if (rw_options > 0 && sets_read_only) {
      tools::ErrorReport("Cannot set both -r/-w and 'read-only'");
      return false;
    }
    absl::Status changeable = CheckReopenOptions(s.backend().root(), leaves);
    if (!changeable.ok()) {
      tools::ErrorReport(changeable.message());
      return false;
    }
  }
  // Reopen = drain, close, open again with the new flags (metadata is flushed on close).
  // QEMU's reopen is a transaction: when the new options fail to open, the image stays
  // open as it was, so the old options are opened again.
  const ImageSpec before = s.last_open;
  s.Close();
  absl::Status st = s.Open(request);
  if (!st.ok()) {
    if (!request.options.read_only && ErrnoOf(st) == EACCES &&
        st.message() == "Block node is read-only") {
      // -o read-only=on under qemu-io's writable user: QEMU's permission check names the
      // (format) node, the second one named when the image was opened.
      tools::ErrorReport(absl::StrCat("Read-only block node '", tools::AutomaticNodeName(1),
                                      "' cannot support read-write users"));
    } else {
      tools::ErrorReport(st.message());
    }
    absl::Status again = s.Open(before);
    if (!again.ok()) tools::ErrorReport(again.message());
    return false;
  }
  s.writethrough = writethrough;
  s.last_open = request;
  return true;
}

// Breakpoints live in a blkdebug node of the graph (qemu-io looks down the primary-child
// chain). Without one, each command fails with ENOTSUP as qemu-io's do.
bool BreakCommand(IoSession& s, const Args& argv) {
  DebugBreakpoints* bp = s.breakpoints();
  absl::Status st = bp ? bp->AddBreakpoint(argv[1], argv[2]) : ErrnoError(ENOTSUP);
  if (!st.ok()) {
    std::printf("Could not set breakpoint: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  return true;
}

bool RemoveBreakCommand(IoSession& s, const Args& argv) {
  DebugBreakpoints* bp = s.breakpoints();
  absl::Status st = bp ? bp->RemoveBreakpoint(argv[1]) : ErrnoError(ENOTSUP);
  if (!st.ok()) {
    std::printf("Could not remove breakpoint %s: %s\n", argv[1].c_str(),
                StrError(ErrnoOf(st)).c_str());
    return false;
  }
  return true;
}

bool ResumeCommand(IoSession& s, const Args& argv) {
  DebugBreakpoints* bp = s.breakpoints();
  s.NoteResume();
  absl::Status st = bp ? bp->Resume(argv[1]) : ErrnoError(ENOTSUP);
  if (!st.ok()) {
    std::printf("Could not resume request: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  return true;
}

// Waits until a request tagged `tag` is suspended. qemu-io waits forever when none will
// be; strata-io gives up once no aio request is left that could reach the breakpoint.
bool WaitBreakCommand(IoSession& s, const Args& argv) {
  DebugBreakpoints* bp = s.breakpoints();
  if (bp == nullptr) {
    std::printf("Could not wait for a breakpoint: %s\n", StrError(ENOTSUP).c_str());
    return false;
  }
  while (!bp->IsSuspended(argv[1])) {
    if (s.RunningAio() == bp->SuspendedCount()) {
      std::printf("Could not wait for breakpoint %s: no request in flight can reach it\n",
                  argv[1].c_str());
      return false;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace strata::io
