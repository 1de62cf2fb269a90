// strata-img rebase: change an image's backing file. Safe mode first copies into the
// image every range it does not allocate itself whose contents differ between the old
// and the new backing file, so the guest-visible contents stay the same; -u only
// rewrites the header.
#include <getopt.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "strata/formats.h"
#include "strata/image.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

// qemu-img's rebase buffer: at most this much is looked at per step (and per -p step).
constexpr uint64_t kChunkBytes = 2 * 1024 * 1024;
constexpr uint64_t kSector = 512;

// Whether the first 512-byte sector of `a` and `b` differ, and in *run the length of
// the run of sectors (the last may be short) that share that answer.
bool SectorsDiffer(const uint8_t* a, const uint8_t* b, uint64_t bytes, uint64_t* run) {
  uint64_t i = std::min(bytes, kSector);
  const bool differ = std::memcmp(a, b, i) != 0;
  while (i < bytes) {
    const uint64_t n = std::min(bytes - i, kSector);
    if ((std::memcmp(a + i, b + i, n) != 0) != differ) break;
    i += n;
  }
  *run = i;
  return differ;
}

// qemu-img's is_allocated_above: whether [offset, offset + *bytes) is allocated in any
// node from `top` down to (not including) `base`, and in *bytes how far that answer
// holds (an allocating layer's own run; else the shortest unallocated run).
absl::StatusOr<bool> IsAllocatedAbove(Node top, Node base, uint64_t offset, uint64_t* bytes) {
  uint64_t n = *bytes;
  for (Node layer = top; layer && layer != base; layer = layer.backing()) {
    bool allocated = false;
    absl::StatusOr<uint64_t> run = layer.IsAllocated(offset, *bytes, &allocated);
    if (!run.ok()) return run.status();
    if (allocated) {
      *bytes = *run;
      return true;
    }
    const uint64_t layer_len = layer.GetLength().value_or(0);
    if (n > *run && (layer == top || offset + *run < layer_len)) n = *run;
  }
  *bytes = n;
  return false;
}

// The node of `top`'s backing chain (below top) whose file is `path`, or none.
Node FindInBackingChain(Node top, const std::string& path) {
  char* wanted = ::realpath(path.c_str(), nullptr);
  if (wanted == nullptr) return Node();
  Node found;
  for (Node layer = top.backing(); layer && !found; layer = layer.backing()) {
    char* have = ::realpath(layer.filename().c_str(), nullptr);
    if (have != nullptr && std::strcmp(have, wanted) == 0) found = layer;
    std::free(have);
  }
  std::free(wanted);
  return found;
}

}  // namespace

int RebaseMain(const Args& args) {
  FormatArg fmt;
  std::string backing, cache = "writeback", src_cache = "writeback";
  std::optional<std::string> backing_fmt;
  bool unsafe = false, quiet = false, progress = false, image_opts = false;
  bool have_backing = false;
  GetoptArgs argv(args);
  enum { kImageOpts = 256, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:F:b:upt:T:qU", kLong, nullptr)) !=
         -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'F': backing_fmt = optarg; break;
      case 'b': backing = optarg; have_backing = true; break;
      case 'u': unsafe = true; break;
      case 'p': progress = true; break;
      case 't': cache = optarg; break;
      case 'T': src_cache = optarg; break;
      case 'q': quiet = true; break;
      case 'U': break;
      case kImageOpts: image_opts = true; break;
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
  if (quiet) progress = false;
  if (!ExpectOneFilename(argv)) return 1;
  if (!have_backing && !unsafe) {
    tools::ErrorReport("Must specify backing file (-b) or use unsafe mode (-u)");
    return TryHelp(1);
  }
  // -p as qemu-img prints it: 0 now, a line per step that moved it by over 2%, 100 once
  // the backing file is changed, and a newline however the command ends from here on.
  ProgressPrinter printer(/*min_skip=*/2);
  struct EndProgressLine {
    bool on;
    ~EndProgressLine() {
      if (on) std::printf("\n");
    }
  } end_progress_line{progress};
  if (progress) PrintProgress(0);
  if (!CheckCacheArg(cache, "cache option") || !CheckCacheArg(src_cache, "source cache option")) {
    return 1;
  }
  const std::string& filename = argv[optind];
  std::unique_ptr<Image> blk = OpenForTool(filename, fmt, true, image_opts, cache,
                                                  false, /*no_backing=*/unsafe);
  if (!blk) return 1;
  if (backing_fmt.has_value() && !FindDriver(*backing_fmt).has_value()) {
    tools::ErrorReport(absl::StrCat("Invalid format name: '", *backing_fmt, "'"));
    return 1;
  }
  Node root = blk->root();
  if (!unsafe) {
    std::unique_ptr<Image> new_backing;
    std::string path_of_backing = backing;
    if (!backing.empty()) {
      size_t slash = filename.rfind('/');
      if (backing[0] != '/' && slash != std::string::npos) {
        path_of_backing = filename.substr(0, slash + 1) + backing;
      }
      ImageSpec spec;
      spec.filename = path_of_backing;
      spec.format = backing_fmt.value_or("");
      spec.options.read_only = true;
      spec.options.cache = *ParseCacheMode(src_cache);
      absl::StatusOr<std::unique_ptr<Image>> opened = Image::Open(spec);
      if (!opened.ok()) {
        tools::ErrorReport(absl::StrCat("Could not open new backing file '", backing, "': ",
                                        opened.status().message()));
        return 1;
      }
      new_backing = *std::move(opened);
    }
    // qemu-img's loop, step for step (so that what it writes, and each -p line, are the
    // same): ranges the image allocates itself are skipped, and so (when the new backing
    // file is in the old chain) are ranges no layer above the new backing allocates; of
    // the rest, the runs of sectors that differ between the old and the new backing are
    // written (as zeroes past the old backing's end).
    const uint64_t length = blk->GetLength().value_or(0);
    const Node old_backing = root.backing();
    const Node prefix = backing.empty() ? Node() : FindInBackingChain(root, path_of_backing);
    const uint64_t old_len = old_backing ? old_backing.GetLength().value_or(0) : 0;
    const uint64_t new_len = new_backing ? new_backing->GetLength().value_or(0) : 0;
    const float step_progress =
        length == 0 ? 0 : 100.0f / static_cast<float>(length / std::min(length, kChunkBytes));
    float done_progress = 0;
    std::vector<uint8_t> old_buf(kChunkBytes), new_buf(kChunkBytes);
    for (uint64_t off = 0, n = 0; off < length; off += n) {
      n = std::min(kChunkBytes, length - off);
      bool allocated = false;
      absl::StatusOr<uint64_t> run = root.IsAllocated(off, n, &allocated);
      if (!run.ok() || *run == 0) {
        tools::ErrorReport(absl::StrCat("error while reading image metadata: ",
                                        StrError(run.ok() ? EIO : ErrnoOf(run.status()))));
        return 1;
      }
      n = *run;
      if (allocated) continue;
      if (prefix) {
        absl::StatusOr<bool> above = IsAllocatedAbove(old_backing, prefix, off, &n);
        if (!above.ok()) {
          tools::ErrorReport(absl::StrCat("error while reading image metadata: ",
                                          StrError(ErrnoOf(above.status()))));
          return 1;
        }
        if (!*above && n > 0) continue;
      }
      const bool old_is_zero = off >= old_len;
      absl::Status s;
      if (old_is_zero) {
        std::memset(old_buf.data(), 0, n);
      } else {
        n = std::min(n, old_len - off);
        s = blk->Pread(off, n, old_buf.data());
        if (!s.ok()) {
          tools::ErrorReport(absl::StrCat("error while reading from old backing file"));
          return 1;
        }
      }
      if (!new_backing || off >= new_len) {
        std::memset(new_buf.data(), 0, n);
      } else {
        n = std::min(n, new_len - off);
        s = new_backing->Pread(off, n, new_buf.data());
        if (!s.ok()) {
          tools::ErrorReport(absl::StrCat("error while reading from new backing file"));
          return 1;
        }
      }
      for (uint64_t written = 0, same = 0; written < n; written += same) {
        if (SectorsDiffer(old_buf.data() + written, new_buf.data() + written, n - written,
                          &same)) {
          s = old_is_zero ? blk->PwriteZeroes(off + written, same)
                          : blk->Pwrite(off + written, same, old_buf.data() + written);
          if (!s.ok()) {
            tools::ErrorReport(absl::StrCat("Error while writing to COW image: ",
                                            StrError(ErrnoOf(s))));
            return 1;
          }
        }
      }
      if (progress) {
        done_progress = std::min(done_progress + step_progress, 100.0f);
        printer.Report(done_progress);
      }
    }
  }
  // qemu-img 7.2 names no backing file without its format (after the copy above, which
  // leaves the image's contents as they were).
  if (!backing.empty() && !backing_fmt.has_value()) {
    tools::ErrorReport(absl::StrCat("Could not change the backing file to '", backing,
                                    "': backing format must be specified"));
    return 1;
  }
  absl::Status st = root.ChangeBackingFile(backing, backing_fmt.value_or(""));
  if (!st.ok()) {
    tools::ErrorReport(absl::StrCat("Could not change the backing file to '", backing, "': ",
                                    StrError(ErrnoOf(st))));
    return 1;
  }
  if (progress) printer.Report(100);
  st = blk->Close();
  if (!st.ok()) {
    tools::ErrorReport(st.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::img
