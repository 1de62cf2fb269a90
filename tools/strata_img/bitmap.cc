// strata-img bitmap: add, remove, clear, enable, disable and merge persistent dirty
// bitmaps (qemu-img bitmap), in command-line order, silently on success. An operation
// that fails stops the run; those before it stay applied (the image is closed cleanly, so
// they are stored), as with qemu-img.
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/options.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

enum class BitmapOp { kAdd, kRemove, kClear, kEnable, kDisable, kMerge };

struct Action {
  BitmapOp op;
  std::string source;  // --merge: the source bitmap
};

const char* OpName(BitmapOp op) {
  switch (op) {
    case BitmapOp::kAdd: return "add";
    case BitmapOp::kRemove: return "remove";
    case BitmapOp::kClear: return "clear";
    case BitmapOp::kEnable: return "enable";
    case BitmapOp::kDisable: return "disable";
    case BitmapOp::kMerge: return "merge";
  }
  return "";
}

// QEMU's default granularity: the cluster size, at least 4 KiB, at most 64 KiB.
uint64_t DefaultGranularity(Node image) {
  const uint64_t cluster = image.GetInfo().cluster_size_bytes;
  return std::min<uint64_t>(65536, std::max<uint64_t>(4096, cluster));
}

}  // namespace

int BitmapMain(const Args& args) {
  std::vector<Action> actions;
  FormatArg fmt;
  std::string source_file, source_fmt;
  bool image_opts = false, add = false, merge = false;
  uint64_t granularity = 0;
  GetoptArgs argv(args);
  enum { kObject = 256, kImageOpts, kAdd, kRemove, kClear, kEnable, kDisable, kMerge };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"add", no_argument, nullptr, kAdd},
                                        {"remove", no_argument, nullptr, kRemove},
                                        {"clear", no_argument, nullptr, kClear},
                                        {"enable", no_argument, nullptr, kEnable},
                                        {"disable", no_argument, nullptr, kDisable},
                                        {"merge", required_argument, nullptr, kMerge},
                                        {"granularity", required_argument, nullptr, 'g'},
                                        {"source-file", required_argument, nullptr, 'b'},
                                        {"source-format", required_argument, nullptr, 'F'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":b:f:F:g:h", kLong, nullptr)) != -1) {
    switch (c) {
      case 'h': return PrintHelp();
      case 'b': source_file = optarg; break;
      case 'f': fmt = optarg; break;
      case 'F': source_fmt = optarg; break;
      case 'g': {
        std::optional<uint64_t> g = ParseSizeArg(optarg, "granularity");
        if (!g) return 1;
        // QEMU hands the value on as a 32-bit number; 0 means "the default".
        granularity = *g & 0xffffffffu;
        if (*g != 0 && granularity == 0) granularity = 1;  // refused below as QEMU does
        break;
      }
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case kImageOpts: image_opts = true; break;
      case kAdd: actions.push_back({BitmapOp::kAdd, ""}); add = true; break;
      case kRemove: actions.push_back({BitmapOp::kRemove, ""}); break;
      case kClear: actions.push_back({BitmapOp::kClear, ""}); break;
      case kEnable: actions.push_back({BitmapOp::kEnable, ""}); break;
      case kDisable: actions.push_back({BitmapOp::kDisable, ""}); break;
      case kMerge: actions.push_back({BitmapOp::kMerge, optarg}); merge = true; break;
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default: return TryHelp(1);
    }
  }
  if (actions.empty()) {
    tools::ErrorReport("Need at least one of --add, --remove, --clear, --enable, --disable, "
                       "or --merge");
    return 1;
  }
  if (granularity != 0 && !add) {
    tools::ErrorReport("granularity only supported with --add");
    return 1;
  }
  if (!source_fmt.empty() && source_file.empty()) {
    tools::ErrorReport("-F only supported with -b");
    return 1;
  }
  if (!source_file.empty() && !merge) {
    tools::ErrorReport("Merge bitmap source file only supported with --merge");
    return 1;
  }
  if (optind != argv.argc() - 2) {
    tools::ErrorReport("Expecting filename and bitmap name");
    return 1;
  }
  const std::string filename = argv[optind], name = argv[optind + 1];
  // Without its backing chain, as qemu-img opens it: bitmaps belong to this image alone,
  // and a missing or unusable backing file must not stop their management.
  std::unique_ptr<Image> blk = OpenForTool(filename, fmt, true, image_opts, "writeback",
                                                  /*force_share=*/false, /*no_backing=*/true);
  if (!blk) return 1;
  Node image = blk->root();
  // The merge source: another image's bitmap (opened read-only), or this image's.
  std::unique_ptr<Image> source_blk;
  if (!source_file.empty()) {
    source_blk = OpenForTool(source_file, ProbeIfEmpty(source_fmt), false, false);
    if (!source_blk) {
      (void)blk->Close();
      return 1;
    }
  }
  Node source = source_blk ? source_blk->root() : image;
  int status = 0;
  for (const Action& a : actions) {
    absl::Status s;
    switch (a.op) {
      case BitmapOp::kAdd: {
        const uint64_t g = granularity != 0 ? granularity : DefaultGranularity(image);
        if (name.empty()) {
          s = ErrnoError(EINVAL, "Bitmap name cannot be empty");
        } else if (g < 512 || (g & (g - 1)) != 0) {
          s = ErrnoError(EINVAL, "Granularity must be power of 2 and at least 512");
        } else {
          s = image.AddDirtyBitmap(name, g, true, tools::AutomaticNodeName(/*counter=*/1));
          if (absl::IsUnimplemented(s) || ErrnoOf(s) == ENOTSUP) {
            s = ErrnoError(ENOTSUP, absl::StrCat(s.message(), ": Operation not supported"));
          }
        }
        break;
      }
      case BitmapOp::kRemove: s = image.RemoveDirtyBitmap(name); break;
      case BitmapOp::kClear: s = image.ClearDirtyBitmap(name); break;
      case BitmapOp::kEnable: s = image.SetDirtyBitmapEnabled(name, true); break;
      case BitmapOp::kDisable: s = image.SetDirtyBitmapEnabled(name, false); break;
      case BitmapOp::kMerge: {
        // QEMU's order of errors: the target, then the source, must exist; then the
        // target, then the source, must be consistent; then the sizes must agree.
        auto probe = [](Node node, const std::string& bitmap) {
          return node.GetDirtyRuns(bitmap, 0, 0, 1).status();
        };
        const absl::Status target = probe(image, name), from = probe(source, a.source);
        if (ErrnoOf(target) == ENOENT) {
          s = target;
        } else if (ErrnoOf(from) == ENOENT) {
          s = from;
        } else if (!target.ok()) {
          s = target;
        } else if (!from.ok()) {
          s = from;
        } else {
          s = image.MergeDirtyBitmap(name, source, a.source);
        }
        break;
      }
    }
    if (!s.ok()) {
      tools::ErrorReport(absl::StrCat("Operation ", OpName(a.op), " on bitmap ", name,
                                      " failed: ", s.message()));
      status = 1;
      break;
    }
  }
  if (source_blk) (void)source_blk->Close();
  absl::Status closed = blk->Close();
  if (status == 0 && !closed.ok()) {
    tools::ErrorReport(closed.message());
    return 1;
  }
  return status;
}

}  // namespace strata::img
