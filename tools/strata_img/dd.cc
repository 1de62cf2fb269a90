// strata-img dd: copies an image, or a part of one, into a new image, with dd(1)'s
// operands (if=, of=, bs=, count=, skip=).
//
// As qemu-img 7.2 does: the copy covers the input up to count * bs bytes (or its end),
// starting skip * bs bytes in; the output is created (any old file replaced) with exactly
// that size and every block is written, zeros too. A skip past the end makes an empty
// output and a warning, and still exits 0.
#include <getopt.h>

#include <algorithm>
#include <climits>
#include <cstdint>
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

// The operands, as given; the last of each key wins.
struct DdOperands {
  std::optional<std::string> in, out;
  uint64_t block_size = 512;
  std::optional<uint64_t> count, skip;
};

// Reads the key=value operands from argv[optind] on; false after reporting an error.
bool ParseOperands(const GetoptArgs& argv, DdOperands* ops) {
  for (int i = optind; i < argv.argc(); ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (eq == std::string::npos ||
        (key != "bs" && key != "count" && key != "skip" && key != "if" && key != "of")) {
      tools::ErrorReport(absl::StrCat("unrecognized operand ", key));
      return false;
    }
    if (key == "if") {
      ops->in = value;
    } else if (key == "of") {
      ops->out = value;
    } else if (key == "bs") {
      std::optional<uint64_t> bs = ParseSizeArg(value, "bs", INT_MAX, /*min=*/1);
      if (!bs) return false;
      ops->block_size = *bs;
    } else {
      std::optional<uint64_t> n = ParseSizeArg(value, key);
      if (!n) return false;
      (key == "count" ? ops->count : ops->skip) = *n;
    }
  }
  return true;
}

}  // namespace

int DdMain(const Args& args) {
  FormatArg fmt;
  std::string out_fmt = "raw";
  bool image_opts = false, force_share = false;
  GetoptArgs argv(args);
  enum { kImageOpts = 256, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"object", required_argument, nullptr, kObject},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:O:U", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'O': out_fmt = optarg; break;
      case 'U': force_share = true; break;
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
  DdOperands ops;
  if (!ParseOperands(argv, &ops)) return 1;
  if (!ops.in.has_value() || !ops.out.has_value()) {
    tools::ErrorReport("Must specify both input and output files");
    return 1;
  }
  std::unique_ptr<Image> in =
      OpenForTool(*ops.in, fmt, /*writable=*/false, image_opts, "writeback", force_share);
  if (!in) return 1;
  const std::optional<DriverDescription> driver = FindDriver(out_fmt);
  if (!driver) {
    tools::ErrorReport("Unknown file format");
    return 1;
  }
  absl::StatusOr<uint64_t> length = in->GetLength();
  if (!length.ok()) {
    tools::ErrorReport(absl::StrCat("Failed to get size for '", *ops.in, "'"));
    return 1;
  }
  const uint64_t bs = ops.block_size;
  uint64_t end = *length;
  if (ops.count.has_value() && *ops.count <= INT64_MAX / bs && *ops.count * bs < end) {
    end = *ops.count * bs;
  }
  const bool skip_past_end =
      ops.skip.has_value() && (*ops.skip > INT64_MAX / bs || *ops.skip * bs > end);
  const uint64_t start = ops.skip.has_value() && !skip_past_end ? *ops.skip * bs : 0;

  CreateRequest request;
  request.filename = *ops.out;
  request.size_bytes = skip_past_end ? 0 : end - start;
  if (absl::Status st = CreateImage(out_fmt, request); !st.ok()) {
    tools::ErrorReport(absl::StrCat(*ops.out, ": error while creating output image: ",
                                    st.message()));
    return 1;
  }
  std::unique_ptr<Image> out = OpenForTool(*ops.out, FormatArg(out_fmt), /*writable=*/true,
                                           /*image_opts=*/false);
  if (!out) return 1;
  uint64_t in_pos = start;
  if (skip_past_end) {
    tools::ErrorReport(absl::StrCat(*ops.in, ": cannot skip to specified offset"));
    in_pos = end;
  }
  std::vector<uint8_t> buffer(bs);
  for (uint64_t out_pos = 0; in_pos < end;) {
    const uint64_t n = std::min<uint64_t>(bs, end - in_pos);
    if (absl::Status st = in->Pread(in_pos, n, buffer.data()); !st.ok()) {
      tools::ErrorReport(absl::StrCat("error while reading from input image file: ",
                                      StrError(ErrnoOf(st))));
      return 1;
    }
    if (absl::Status st = out->Pwrite(out_pos, n, buffer.data()); !st.ok()) {
      tools::ErrorReport(absl::StrCat("error while writing to output image file: ",
                                      StrError(ErrnoOf(st))));
      return 1;
    }
    in_pos += n;
    out_pos += n;
  }
  if (absl::Status st = out->Close(); !st.ok()) {
    tools::ErrorReport(st.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::img
