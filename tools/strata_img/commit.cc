// strata-img commit: copy the top image's data into its backing file (or, with -b, into
// an image further down the chain), then empty the top image (unless -d, or -b).
//
// Each image of the chain is opened on its own: the ones above the base without their
// backing files (the job reads each range from the topmost image that holds it), the base
// writable. Messages and exit codes are qemu-img's.
#include <getopt.h>
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/commit.h"
#include "strata/image.h"
#include "strata/options.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

// True if `name` (as the user gave it with -b) names the image at `path`, which the
// chain names `as_written`.
bool NamesImage(const std::string& name, const std::string& path, const std::string& as_written) {
  return name == path || name == as_written || CanonicalPath(name) == CanonicalPath(path);
}

}  // namespace

int CommitMain(const Args& args) {
  FormatArg fmt;
  std::string cache = "writeback", base_name;
  bool progress = false, quiet = false, keep = false, image_opts = false;
  uint64_t rate = 0;
  GetoptArgs argv(args);
  enum { kObject = 256, kImageOpts };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:t:b:dpqr:", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 't': cache = optarg; break;
      case 'b': base_name = optarg; keep = true; break;  // -b implies -d
      case 'd': keep = true; break;
      case 'p': progress = true; break;
      case 'q': quiet = true; break;
      case 'r': {
        std::optional<uint64_t> r = ParseSizeArg(optarg, "rate limit");
        if (!r) return 1;
        rate = *r;
        break;
      }
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case kImageOpts: image_opts = true; break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default: return TryHelp(1);
    }
  }
  if (quiet) progress = false;
  if (!ExpectOneFilename(argv)) return 1;
  const std::string filename = argv[optind];

  // The chain above the base, each image without its backing file.
  std::vector<std::unique_ptr<Image>> above;
  above.push_back(OpenForTool(filename, fmt, /*writable=*/true, image_opts, cache,
                              /*force_share=*/false, /*no_backing=*/true));
  if (!above.back()) return 1;
  std::string base_path, base_format;
  std::vector<std::string> seen = {CanonicalPath(filename)};
  for (;;) {
    Image& image = *above.back();
    DriverInfo info = image.root().GetInfo();
    if (info.backing_filename.empty()) {
      if (base_name.empty()) {
        tools::ErrorReport("Image does not have a backing file");
      } else {
        tools::ErrorReport(absl::StrCat("Did not find '", base_name,
                                        "' in the backing chain of '", filename, "'"));
      }
      return 1;
    }
    absl::StatusOr<std::string> full = image.root().FullBackingFilename(info.backing_filename);
    if (!full.ok()) {
      // QEMU fails here while opening the chain.
      tools::ErrorReport(
          absl::StrCat("Could not open '", filename, "': ", full.status().message()));
      return 1;
    }
    const std::string path = *full;
    const std::string key = CanonicalPath(path);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      tools::ErrorReport(absl::StrCat("Backing chain of '", filename, "' has a loop at '",
                                      path, "'"));
      return 1;
    }
    seen.push_back(key);
    if (base_name.empty() || NamesImage(base_name, path, info.backing_filename)) {
      base_path = path;
      base_format = info.backing_format;
      break;
    }
    std::unique_ptr<Image> next =
        OpenForTool(path, ProbeIfEmpty(info.backing_format), false, false, cache, false, true);
    if (!next) return 1;
    above.push_back(std::move(next));
  }
  std::unique_ptr<Image> base = OpenForTool(base_path, ProbeIfEmpty(base_format), true, false, cache);
  if (!base) return 1;

  CommitSpec request;
  for (auto& image : above) request.above.push_back(image->root());
  request.base = base->root();
  request.rate_limit = rate;
  if (progress) {
    PrintProgress(0);
    request.progress = [](uint64_t done, uint64_t total) {
      PrintProgress(total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / total);
    };
  }
  absl::Status s = Commit(request);
  if (progress) std::printf("\n");
  if (!s.ok()) {
    // qemu-img runs the commit as a block job and reports its end like this.
    tools::ErrorReport(absl::StrCat("Block job failed: ", StrError(ErrnoOf(s))));
    return 1;
  }
  if (!keep) {
    absl::Status empty = above.front()->root().MakeEmpty();
    if (!empty.ok() && ErrnoOf(empty) != ENOTSUP) {
      tools::ErrorReport(absl::StrCat("Failed to empty ", filename, ": ",
                                      StrError(ErrnoOf(empty))));
      return 1;
    }
  }
  for (auto& image : above) {
    absl::Status closed = image->Close();
    if (!closed.ok()) {
      tools::ErrorReport(closed.message());
      return 1;
    }
  }
  absl::Status closed = base->Close();
  if (!closed.ok()) {
    tools::ErrorReport(closed.message());
    return 1;
  }
  if (!quiet) std::printf("Image committed.\n");
  return 0;
}

}  // namespace strata::img
