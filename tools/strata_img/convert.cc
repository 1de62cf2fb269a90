// strata-img convert: copies one or more images (concatenated) into a new image of any
// format. Zero runs are skipped on a freshly created target and written as zeroes with -n.
#include <getopt.h>

#include <cstdio>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "block/registry.h"
#include "block/status.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

constexpr uint64_t kChunkBytes = 2 << 20;

}  // namespace

int ConvertMain(const Args& args) {
  std::string src_fmt, out_fmt = "raw", cache = "unsafe", src_cache = "writeback";
  std::string snapshot_param;
  std::vector<std::pair<std::string, std::string>> options;
  bool quiet = false, progress = false, no_create = false, image_opts = false;
  uint64_t sparse_bytes = 4096;
  GetoptArgs argv(args);
  enum { kImageOpts = 256, kObject, kTargetImageOpts, kTargetIsZero, kSalvage, kBitmaps };
  static const struct option kLong[] = {
      {"help", no_argument, nullptr, 'h'},
      {"object", required_argument, nullptr, kObject},
      {"image-opts", no_argument, nullptr, kImageOpts},
      {"target-image-opts", no_argument, nullptr, kTargetImageOpts},
      {"target-is-zero", no_argument, nullptr, kTargetIsZero},
      {"salvage", no_argument, nullptr, kSalvage},
      {"bitmaps", no_argument, nullptr, kBitmaps},
      {"force-share", no_argument, nullptr, 'U'},
      {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), "hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:",
                          kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': src_fmt = optarg; break;
      case 'O': out_fmt = optarg; break;
      case 'o': {
        auto split = SplitOptions(optarg);
        if (!split.ok()) {
          tools::ErrorReport(split.status().message());
          return 1;
        }
        options.insert(options.end(), split->begin(), split->end());
        break;
      }
      case 'S': {
        std::optional<uint64_t> v = ParseSizeArg(optarg);
        if (!v) return 1;
        sparse_bytes = *v;
        break;
      }
      case 'p': progress = true; break;
      case 'q': quiet = true; break;
      case 'n': no_create = true; break;
      case 't': cache = optarg; break;
      case 'T': src_cache = optarg; break;
      case kImageOpts: image_opts = true; break;
      case 'm': case 'W': case 'U': case 'C': case 'r': case kObject: case kTargetIsZero:
      case kSalvage: case kBitmaps: case kTargetImageOpts:
        break;
      case 'l': snapshot_param = optarg; break;
      case 'c': case 'B': case 'F':
        tools::ErrorReport(absl::StrCat("option -", std::string(1, static_cast<char>(c)), " is not supported yet"));
        return 1;
      default:
        return TryHelp(1);
    }
  }
  if (quiet) progress = false;
  if (static_cast<int>(args.size()) - optind < 2) {
    tools::ErrorReport("Expecting image file name");
    return 1;
  }
  std::string out_name = args.back();
  std::vector<std::unique_ptr<BlockBackend>> sources;
  uint64_t total = 0;
  for (int i = optind; i < static_cast<int>(args.size()) - 1; ++i) {
    auto src = OpenForTool(args[i], src_fmt, false, image_opts, src_cache);
    if (!src) return 1;
    if (!snapshot_param.empty()) {
      // "-l NAME" (an ID or a name) or "-l snapshot.id=ID,snapshot.name=NAME".
      std::string id = snapshot_param, name;
      if (absl::StartsWith(snapshot_param, "snapshot.")) {
        id.clear();
        for (absl::string_view kv : absl::StrSplit(snapshot_param, ',')) {
          if (absl::ConsumePrefix(&kv, "snapshot.id=")) id = std::string(kv);
          else if (absl::ConsumePrefix(&kv, "snapshot.name=")) name = std::string(kv);
        }
      }
      absl::Status loaded = src->root().instance().LoadSnapshotForReading(id, name);
      if (!loaded.ok()) {
        tools::ErrorReport(absl::StrCat("Failed to load snapshot: ", loaded.message()));
        return 1;
      }
    }
    total += src->GetLength().value_or(0);
    sources.push_back(std::move(src));
  }
  const BlockDriver* driver = DriverRegistry::Global().Find(out_fmt);
  if (driver == nullptr) {
    tools::ErrorReport(absl::StrCat("Unknown file format '", out_fmt, "'"));
    return 1;
  }
  if (!no_create) {
    CreateRequest request;
    request.filename = out_name;
    request.size_bytes = total;
    for (const auto& [k, v] : options) request.options[k] = v;
    absl::Status st = driver->Create(request);
    if (!st.ok()) {
      tools::ErrorReport(absl::StrCat(out_name, ": ", st.message()));
      return 1;
    }
  }
  std::unique_ptr<BlockBackend> out = OpenForTool(out_name, out_fmt, true, false, cache);
  if (!out) return 1;
  std::vector<uint8_t> buf(kChunkBytes);
  uint64_t out_off = 0;
  if (progress) PrintProgress(0);
  for (auto& src : sources) {
    uint64_t len = src->GetLength().value_or(0);
    for (uint64_t off = 0; off < len; off += kChunkBytes) {
      uint64_t n = std::min(kChunkBytes, len - off);
      absl::Status st = src->Pread(off, n, buf.data());
      if (!st.ok()) {
        tools::ErrorReport(absl::StrCat("error while reading at byte ", out_off + off, ": ",
                                        StrError(ErrnoOf(st))));
        return 1;
      }
      // Write non-zero runs of sparse_bytes granularity; zero runs are holes.
      uint64_t gran = sparse_bytes == 0 ? n : sparse_bytes;
      for (uint64_t pos = 0; pos < n;) {
        uint64_t piece = std::min(gran - (out_off + off + pos) % gran, n - pos);
        bool zero = sparse_bytes != 0 && BufferIsZero(buf.data() + pos, piece);
        uint64_t run = piece;
        while (pos + run < n) {
          uint64_t next = std::min(gran, n - pos - run);
          bool next_zero = sparse_bytes != 0 && BufferIsZero(buf.data() + pos + run, next);
          if (next_zero != zero) break;
          run += next;
        }
        absl::Status ws;
        if (!zero) {
          ws = out->Pwrite(out_off + off + pos, run, buf.data() + pos);
        } else if (no_create) {
          ws = out->PwriteZeroes(out_off + off + pos, run, kReqMayUnmap);
        }
        if (!ws.ok()) {
          tools::ErrorReport(absl::StrCat("error while writing at byte ", out_off + off + pos,
                                          ": ", StrError(ErrnoOf(ws))));
          return 1;
        }
        pos += run;
      }
      if (progress && total > 0) PrintProgress(100.0 * (out_off + off + n) / total);
    }
    out_off += len;
  }
  absl::Status st = out->Flush();
  if (st.ok()) st = out->Close();
  if (!st.ok()) {
    tools::ErrorReport(absl::StrCat("error while closing the target: ", st.message()));
    return 1;
  }
  if (progress) {
    PrintProgress(100);
    std::printf("\n");
  }
  return 0;
}

}  // namespace strata::img
