// strata-img convert: copies one or more images (concatenated) into a new image of any
// format. Zero runs are skipped on a freshly created target and written as zeroes with -n.
#include <getopt.h>

#include <algorithm>
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
  std::string snapshot_param, backing, backing_fmt;
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
      case 'B': backing = optarg; break;
      case 'F': backing_fmt = optarg; break;
      case 'c':
        tools::ErrorReport("option -c is not supported yet");
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
  if (!backing.empty() && static_cast<int>(args.size()) - optind > 2) {
    tools::ErrorReport("Having a backing file for the target makes no sense when "
                       "concatenating multiple input images");
    return 1;
  }
  if (!backing.empty() && backing_fmt.empty()) {
    tools::ErrorReport("Use of backing file requires explicit backing format");
    return 1;
  }
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
  const std::vector<CreateOptionSpec> create_options = driver->create_options();
  if (!backing.empty() && !no_create &&
      std::none_of(create_options.begin(), create_options.end(),
                   [](const CreateOptionSpec& o) { return o.name == "backing_file"; })) {
    tools::ErrorReport(absl::StrCat("Backing file not supported for file format '", out_fmt,
                                    "'"));
    return 1;
  }
  if (!no_create) {
    CreateRequest request;
    request.filename = out_name;
    request.size_bytes = total;
    for (const auto& [k, v] : options) request.options[k] = v;
    if (!backing.empty()) request.options["backing_file"] = backing;
    if (!backing_fmt.empty()) request.options["backing_fmt"] = backing_fmt;
    absl::Status st = driver->Create(request);
    if (!st.ok()) {
      tools::ErrorReport(absl::StrCat(out_name, ": error while converting ", out_fmt, ": ",
                                      st.message()));
      return 1;
    }
  }
  // With a backing file the target starts out reading the backing file's data: only what
  // the source's top image holds is copied, and its zeroes must be written as zeroes.
  const bool target_has_backing = !backing.empty();
  std::unique_ptr<BlockBackend> out = OpenForTool(out_name, out_fmt, true, false, cache);
  if (!out) return 1;
  std::vector<uint8_t> buf(kChunkBytes);
  uint64_t out_off = 0;
  if (progress) PrintProgress(0);
  // Copies source bytes [src_off, src_off + n) (n <= kChunkBytes) to the target at
  // dst_off: non-zero runs of sparse_bytes granularity are written; zero runs are left as
  // holes on a fresh target and written as zeroes where the target may hold other data.
  const bool write_zero_runs = no_create || target_has_backing;
  auto copy = [&](BlockBackend& src, uint64_t src_off, uint64_t dst_off, uint64_t n) {
    absl::Status st = src.Pread(src_off, n, buf.data());
    if (!st.ok()) {
      tools::ErrorReport(absl::StrCat("error while reading at byte ", dst_off, ": ",
                                      StrError(ErrnoOf(st))));
      return false;
    }
    const uint64_t gran = sparse_bytes == 0 ? n : sparse_bytes;
    for (uint64_t pos = 0; pos < n;) {
      uint64_t piece = std::min(gran - (dst_off + pos) % gran, n - pos);
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
        ws = out->Pwrite(dst_off + pos, run, buf.data() + pos);
      } else if (write_zero_runs) {
        ws = out->PwriteZeroes(dst_off + pos, run, kReqMayUnmap);
      }
      if (!ws.ok()) {
        tools::ErrorReport(absl::StrCat("error while writing at byte ", dst_off + pos, ": ",
                                        StrError(ErrnoOf(ws))));
        return false;
      }
      pos += run;
    }
    return true;
  };
  for (auto& src : sources) {
    uint64_t len = src->GetLength().value_or(0);
    BlockDriverState& top = src->root();
    for (uint64_t off = 0; off < len; off += kChunkBytes) {
      const uint64_t n = std::min(kChunkBytes, len - off);
      if (!target_has_backing) {
        if (!copy(*src, off, out_off + off, n)) return 1;
      } else {
        // Only what the top image decides itself; the rest stays with the backing file.
        for (uint64_t pos = off; pos < off + n;) {
          absl::StatusOr<BlockStatus> status = top.GetBlockStatus(pos, off + n - pos);
          if (!status.ok()) {
            tools::ErrorReport(absl::StrCat("error while reading block status at offset ",
                                            pos, ": ", StrError(ErrnoOf(status.status()))));
            return 1;
          }
          const uint64_t run = std::min(std::max<uint64_t>(status->bytes, 1), off + n - pos);
          const bool decided_here = status->allocated || top.backing() == nullptr;
          absl::Status ws;
          if (decided_here && status->zero) {
            ws = out->PwriteZeroes(out_off + pos, run, kReqMayUnmap);
          } else if (decided_here && !copy(*src, pos, out_off + pos, run)) {
            return 1;
          }
          if (!ws.ok()) {
            tools::ErrorReport(absl::StrCat("error while writing at byte ", out_off + pos,
                                            ": ", StrError(ErrnoOf(ws))));
            return 1;
          }
          pos += run;
        }
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
