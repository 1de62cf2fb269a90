// strata-img measure: how large a new image would be (qemu-img measure), for a virtual
// size (--size) or for the contents of an existing image.
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/formats.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/common/qdict_json.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int MeasureMain(const Args& args) {
  FormatArg fmt;
  std::string out_fmt = "raw", output = "human", size_arg, snapshot_param;
  std::vector<std::pair<std::string, std::string>> options;
  bool image_opts = false, force_share = false;
  GetoptArgs argv(args);
  enum { kOutput = 256, kSize, kObject, kImageOpts };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"output", required_argument, nullptr, kOutput},
                                        {"size", required_argument, nullptr, kSize},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  // qemu-img's measure alone leaves option errors to getopt (no leading ':'): getopt
  // prints them under the subcommand's name, then the help follows, with status 0.
  opterr = 1;
  while ((c = getopt_long(argv.argc(), argv.argv(), "hf:O:o:l:U", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'O': out_fmt = optarg; break;
      case 'o': {
        absl::StatusOr<std::vector<std::pair<std::string, std::string>>> parsed =
            SplitOptions(optarg);
        if (!parsed.ok()) {
          tools::ErrorReport(parsed.status().message());
          return 1;
        }
        options.insert(options.end(), parsed->begin(), parsed->end());
        break;
      }
      case 'l': snapshot_param = optarg; break;
      case 'U': force_share = true; break;
      case kOutput: output = optarg; break;
      case kSize: size_arg = optarg; break;
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case kImageOpts: image_opts = true; break;
      case 'h':
      case '?':  // getopt named the bad option itself, as "measure: ..."
        return PrintHelp();
      default: return TryHelp(1);
    }
  }
  if (!CheckOutputFormat(output)) return 1;
  const int files = static_cast<int>(args.size()) - optind;
  if (files > 1) {
    tools::ErrorReport("At most one filename argument is allowed.");
    return 1;
  }
  if (!size_arg.empty() && files > 0) {
    tools::ErrorReport("--size N cannot be used together with a filename.");
    return 1;
  }
  if (size_arg.empty() && files != 1) {
    tools::ErrorReport("Either --size N or one filename must be specified.");
    return 1;
  }
  const std::optional<DriverDescription> driver = FindDriver(out_fmt);
  if (!driver) {
    tools::ErrorReport(absl::StrCat("Unknown file format '", out_fmt, "'"));
    return 1;
  }
  MeasureSpec request;
  if (!size_arg.empty()) {
    std::optional<uint64_t> size = ParseSizeArg(size_arg);
    if (!size) return 1;
    request.size_bytes = *size;
  }
  if (absl::Status st = ValidateCreateOptions(MergedCreateOptions(*driver, ""), options);
      !st.ok()) {
    tools::ErrorReport(st.message());
    tools::ErrorReport(absl::StrCat("Invalid options for file format '", out_fmt, "'"));
    return 1;
  }
  for (auto& [k, v] : options) request.options[k] = v;
  std::unique_ptr<Image> input;
  if (size_arg.empty()) {
    input = OpenForTool(argv[optind], fmt, false, image_opts, "writeback", force_share);
    if (!input) return 1;
    if (!snapshot_param.empty()) {
      absl::Status loaded =
          input->root().LoadSnapshotForReading(snapshot_param, "");
      if (!loaded.ok()) {
        tools::ErrorReport(absl::StrCat("Failed to load snapshot: ", loaded.message()));
        return 1;
      }
    }
    request.input = input->root();
  }
  absl::StatusOr<MeasureResult> r = MeasureImage(out_fmt, request);
  if (!r.ok()) {
    tools::ErrorReport(r.status().message());
    return 1;
  }
  if (output == "json") {
    using tools::JsonValue;
    JsonValue v = JsonValue::Object();
    if (r->has_bitmaps) v.Set("bitmaps", JsonValue::Int(static_cast<int64_t>(r->bitmaps)));
    v.Set("required", JsonValue::Int(static_cast<int64_t>(r->required)));
    v.Set("fully-allocated", JsonValue::Int(static_cast<int64_t>(r->fully_allocated)));
    std::printf("%s\n", v.Pretty().c_str());
  } else {
    std::printf("required size: %llu\n", static_cast<unsigned long long>(r->required));
    std::printf("fully allocated size: %llu\n",
                static_cast<unsigned long long>(r->fully_allocated));
    if (r->has_bitmaps) {
      std::printf("bitmaps size: %llu\n", static_cast<unsigned long long>(r->bitmaps));
    }
  }
  return 0;
}

}  // namespace strata::img
