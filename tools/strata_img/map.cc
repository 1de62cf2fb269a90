// strata-img map: where each guest range comes from, in qemu-img's human and JSON forms.
#include <getopt.h>

#include <cinttypes>
#include <optional>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

struct MapEntry {
  uint64_t start = 0, length = 0;
  int depth = 0;
  bool present = false, zero = false, data = false, has_offset = false;
  uint64_t offset = 0;
  std::string file;

  bool Continues(const MapEntry& next) const {
    return depth == next.depth && present == next.present && zero == next.zero &&
           data == next.data && has_offset == next.has_offset && file == next.file &&
           (!has_offset || offset + length == next.offset) && start + length == next.start;
  }
};

// The answer for the run at `offset`, walking down the backing chain.
absl::StatusOr<MapEntry> Lookup(Node top, uint64_t offset, uint64_t bytes) {
  Node node = top;
  MapEntry e;
  e.start = offset;
  for (int depth = 0;; ++depth) {
    STRATA_ASSIGN_OR_RETURN(RangeStatus s, node.GetBlockStatus(offset, bytes));
    if (s.bytes == 0) {  // Beyond this backing node's end: zeroes.
      e.length = bytes;
      e.depth = depth;
      e.zero = true;
      return e;
    }
    e.length = s.bytes;
    e.depth = depth;
    bool last = !node.backing();
    if (s.allocated || s.zero || s.data || last) {
      e.present = s.allocated;
      e.zero = s.zero;
      e.data = s.data;
      e.has_offset = s.offset_valid;
      e.offset = s.host_offset;
      e.file = s.file ? s.file.filename() : node.filename();
      if (!s.allocated && last && !s.data && node.supports_backing()) e.zero = true;
      return e;
    }
    bytes = s.bytes;
    node = node.backing();
  }
}

}  // namespace

int MapMain(const Args& args) {
  FormatArg fmt;
  std::string output = "human";
  bool image_opts = false;
  uint64_t start = 0;
  std::optional<uint64_t> max_length;
  GetoptArgs argv(args);
  enum { kOutput = 256, kImageOpts, kStart, kMaxLen, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"format", required_argument, nullptr, 'f'},
                                        {"output", required_argument, nullptr, kOutput},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"start-offset", required_argument, nullptr, kStart},
                                        {"max-length", required_argument, nullptr, kMaxLen},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":f:hU", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'U': break;
      case kOutput: output = optarg; break;
      case kImageOpts: image_opts = true; break;
      case kStart: {
        std::optional<uint64_t> v = ParseSizeArg(optarg, "start offset");
        if (!v) return 1;
        start = *v;
        break;
      }
      case kMaxLen: {
        std::optional<uint64_t> v = ParseSizeArg(optarg, "max length");
        if (!v) return 1;
        max_length = *v;
        break;
      }
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default:
        return TryHelp(1);
    }
  }
  if (!CheckOutputFormat(output)) return 1;
  if (!ExpectOneFilename(argv)) return 1;
  std::unique_ptr<Image> blk = OpenForTool(argv[optind], fmt, false, image_opts);
  if (!blk) return 1;
  uint64_t length = blk->GetLength().value_or(0);
  uint64_t end = max_length ? std::min(length, start + *max_length) : length;
  // As qemu-img does: the header (or "[") first, each entry once the next one starts, so
  // that a failure part way leaves what was mapped before it on stdout.
  const bool json = output == "json";
  if (json) {
    std::printf("[");
  } else {
    std::printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
  }
  bool first = true;
  auto dump = [&](const MapEntry& e) -> bool {
    if (json) {
      std::printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
                  "\"present\": %s, \"zero\": %s, \"data\": %s",
                  first ? "" : ",\n", e.start, e.length, e.depth, e.present ? "true" : "false",
                  e.zero ? "true" : "false", e.data ? "true" : "false");
      if (e.has_offset) std::printf(", \"offset\": %" PRIu64, e.offset);
      std::printf("}");
      first = false;
      return true;
    }
    if (!e.data || e.zero) return true;
    if (!e.has_offset) {
      std::fflush(stdout);
      tools::ErrorReport("File contains external, encrypted or compressed clusters.");
      return false;
    }
    std::printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e.start, e.length, e.offset,
                e.file.c_str());
    return true;
  };
  std::optional<MapEntry> pending;
  for (uint64_t off = start; off < end;) {
    absl::StatusOr<MapEntry> e = Lookup(blk->root(), off, end - off);
    if (!e.ok() || e->length == 0) {
      std::fflush(stdout);
      tools::ErrorReport(absl::StrCat("Could not read file metadata: ",
                                      e.ok() ? "Input/output error"
                                             : StrError(ErrnoOf(e.status()))));
      return 1;
    }
    if (pending && pending->Continues(*e)) {
      pending->length += e->length;
    } else {
      if (pending && !dump(*pending)) return 1;
      pending = *e;
    }
    off += e->length;
  }
  if (pending && !dump(*pending)) return 1;
  if (json) std::printf("]\n");
  return 0;
}

}  // namespace strata::img
