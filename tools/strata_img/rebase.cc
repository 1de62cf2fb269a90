// strata-img rebase: change an image's backing file. Safe mode first copies into the
// image every range it does not allocate itself whose contents differ between the old
// and the new backing file, so the guest-visible contents stay the same; -u only
// rewrites the header.
#include <getopt.h>

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

constexpr uint64_t kChunkBytes = 64 * 1024;

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
  (void)quiet;
  (void)progress;
  if (!ExpectOneFilename(argv)) return 1;
  if (!have_backing && !unsafe) {
    tools::ErrorReport("Must specify backing file (-b) or use unsafe mode (-u)");
    return TryHelp(1);
  }
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
    if (!backing.empty()) {
      std::string path = backing;
      size_t slash = filename.rfind('/');
      if (backing[0] != '/' && slash != std::string::npos) {
        path = filename.substr(0, slash + 1) + backing;
      }
      ImageSpec spec;
      spec.filename = path;
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
    uint64_t length = blk->GetLength().value_or(0);
    uint64_t new_len = new_backing ? new_backing->GetLength().value_or(0) : 0;
    std::vector<uint8_t> old_buf(kChunkBytes), new_buf(kChunkBytes);
    for (uint64_t off = 0; off < length;) {
      bool allocated = false;
      absl::StatusOr<uint64_t> n = root.IsAllocated(off, std::min(kChunkBytes, length - off),
                                                    &allocated);
      if (!n.ok() || *n == 0) {
        tools::ErrorReport(absl::StrCat("error while reading image metadata: ",
                                        StrError(n.ok() ? EIO : ErrnoOf(n.status()))));
        return 1;
      }
      if (!allocated) {
        absl::Status s = blk->Pread(off, *n, old_buf.data());
        std::memset(new_buf.data(), 0, *n);
        if (s.ok() && new_backing && off < new_len) {
          s = new_backing->Pread(off, std::min(*n, new_len - off), new_buf.data());
        }
        if (!s.ok()) {
          tools::ErrorReport(absl::StrCat("error while reading from old backing file"));
          return 1;
        }
        if (std::memcmp(old_buf.data(), new_buf.data(), *n) != 0) {
          s = blk->Pwrite(off, *n, old_buf.data());
          if (!s.ok()) {
            tools::ErrorReport(absl::StrCat("Error while writing to COW image: ",
                                            StrError(ErrnoOf(s))));
            return 1;
          }
        }
      }
      off += *n;
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
  st = blk->Close();
  if (!st.ok()) {
    tools::ErrorReport(st.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::img
