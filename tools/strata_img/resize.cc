// strata-img resize: grow or (with --shrink) shrink an image's virtual size.
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/options.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int ResizeMain(const Args& args) {
  FormatArg fmt;
  std::string prealloc = "off";
  bool quiet = false, shrink = false, image_opts = false;
  // "-1G" would look like an option to getopt; take the size off the end first.
  Args rest = args;
  if (rest.size() < 3) {
    tools::ErrorReport("Not enough arguments");
    return TryHelp(1);
  }
  std::string size_arg = rest.back();
  rest.pop_back();
  GetoptArgs argv(rest);
  enum { kShrink = 256, kPrealloc, kImageOpts, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"shrink", no_argument, nullptr, kShrink},
                                        {"preallocation", required_argument, nullptr, kPrealloc},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"object", required_argument, nullptr, kObject},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:q", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'q': quiet = true; break;
      case kShrink: shrink = true; break;
      case kPrealloc: prealloc = optarg; break;
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
  if (optind != static_cast<int>(rest.size()) - 1) {
    tools::ErrorReport("Expecting image file name and size");
    return TryHelp(1);
  }
  const std::string& filename = argv[optind];
  int sign = 0;
  std::string number = size_arg;
  if (!number.empty() && (number[0] == '+' || number[0] == '-')) {
    sign = number[0] == '+' ? 1 : -1;
    number = number.substr(1);
  }
  // qemu-img sets the rest (one sign taken off) as its 'size' option: the option
  // parser's checks and messages.
  if (absl::Status valid = CheckOptionValue(CreateOptionSpec{.name = "size", .type = "size"},
                                            number);
      !valid.ok()) {
    tools::ErrorReport(valid.message());
    return 1;
  }
  absl::StatusOr<uint64_t> parsed = ParseSize(number);
  if (!parsed.ok()) return 1;  // (CheckOptionValue refuses what ParseSize cannot parse)
  PreallocMode mode = PreallocMode::kOff;
  if (prealloc == "metadata") mode = PreallocMode::kMetadata;
  else if (prealloc == "falloc") mode = PreallocMode::kFalloc;
  else if (prealloc == "full") mode = PreallocMode::kFull;
  else if (prealloc != "off") {
    tools::ErrorReport(absl::StrCat("Invalid preallocation mode: '", prealloc, "'"));
    return 1;
  }
  std::unique_ptr<Image> blk = OpenForTool(filename, fmt, true, image_opts);
  if (!blk) return 1;
  uint64_t current = blk->GetLength().value_or(0);
  int64_t target = sign == 0 ? static_cast<int64_t>(*parsed)
                             : static_cast<int64_t>(current) + sign * static_cast<int64_t>(*parsed);
  if (target < 0) {
    tools::ErrorReport("New image size must be positive");
    return 1;
  }
  if (static_cast<uint64_t>(target) < current && mode != PreallocMode::kOff) {
    tools::ErrorReport("Preallocation can only be used for growing images");
    return 1;
  }
  if (static_cast<uint64_t>(target) < current) {
    // qemu-img 7.2 warns only when it refuses (the warning explains the refusal).
    if (!shrink) {
      tools::ErrorReport("Use the --shrink option to perform a shrink operation.");
      tools::WarnReport("Shrinking an image will delete all data beyond the shrunken image's "
                        "end. Before performing such an operation, make sure there is no "
                        "important data there.");
      return 1;
    }
  }
  absl::Status st = blk->Truncate(target, true, mode);
  if (st.ok()) st = blk->Close();
  if (!st.ok()) {
    tools::ErrorReport(st.message());
    return 1;
  }
  if (!quiet) std::printf("Image resized.\n");
  return 0;
}

}  // namespace strata::img
