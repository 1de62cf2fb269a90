// strata-img check: runs the format driver's consistency check and reports it in
// qemu-img's words. Exit: 0 clean, 2 corruptions, 3 leaks only, 1 the check could not
// complete, 63 the format has no check.
#include <getopt.h>

#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/common/qdict_json.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

void PrintHuman(const CheckResult& r) {
  if (r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0) {
    std::printf("No errors were found on the image.\n");
  } else {
    if (r.corruptions) {
      std::printf("\n%" PRId64 " errors were found on the image.\n"
                  "Data may be corrupted, or further writes to the image may corrupt it.\n",
                  r.corruptions);
    }
    if (r.leaks) {
      std::printf("\n%" PRId64 " leaked clusters were found on the image.\n"
                  "This means waste of disk space, but no harm to data.\n",
                  r.leaks);
    }
    if (r.check_errors) {
      std::printf("\n%" PRId64 " internal errors have occurred during the check.\n",
                  r.check_errors);
    }
  }
  if (r.total_clusters != 0 && r.allocated_clusters != 0) {
    std::printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
                "%0.2f%% compressed clusters\n",
                r.allocated_clusters, r.total_clusters,
                r.allocated_clusters * 100.0 / r.total_clusters,
                r.fragmented_clusters * 100.0 / r.allocated_clusters,
                r.compressed_clusters * 100.0 / r.allocated_clusters);
  }
  if (r.image_end_offset != 0) {
    std::printf("Image end offset: %" PRIu64 "\n", r.image_end_offset);
  }
}

void PrintJson(const CheckResult& r, const std::string& filename, const std::string& format) {
  using tools::JsonValue;
  JsonValue v = JsonValue::Object();
  // QAPI ImageCheck field order; zero-valued optional fields are omitted.
  v.Set("filename", JsonValue::String(filename));
  v.Set("format", JsonValue::String(format));
  v.Set("check-errors", JsonValue::Int(r.check_errors));
  auto opt = [&](const char* key, int64_t value) {
    if (value != 0) v.Set(key, JsonValue::Int(value));
  };
  opt("image-end-offset", r.image_end_offset);
  opt("corruptions", r.corruptions);
  opt("leaks", r.leaks);
  opt("corruptions-fixed", r.corruptions_fixed);
  opt("leaks-fixed", r.leaks_fixed);
  opt("total-clusters", r.total_clusters);
  opt("allocated-clusters", r.allocated_clusters);
  opt("fragmented-clusters", r.fragmented_clusters);
  opt("compressed-clusters", r.compressed_clusters);
  std::printf("%s\n", v.Pretty().c_str());
}

int ExitCode(const CheckResult& r) {
  if (r.check_errors) return 1;
  if (r.corruptions) return 2;
  if (r.leaks) return 3;
  return 0;
}

}  // namespace

int CheckMain(const Args& args) {
  FormatArg fmt;
  std::string output = "human", cache = "writeback";
  uint32_t fix = 0;
  bool quiet = false, image_opts = false, force_share = false;
  GetoptArgs argv(args);
  enum { kOutput = 256, kImageOpts, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"format", required_argument, nullptr, 'f'},
                                        {"repair", required_argument, nullptr, 'r'},
                                        {"output", required_argument, nullptr, kOutput},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:r:T:qU", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'r':
        if (std::string(optarg) == "leaks") {
          fix = kCheckFixLeaks;
        } else if (std::string(optarg) == "all") {
          fix = kCheckFixLeaks | kCheckFixErrors;
        } else {
          tools::ErrorReport(
              "Unknown option value for -r (expecting 'leaks' or 'all'): " + std::string(optarg));
          return 1;
        }
        break;
      case 'T': cache = optarg; break;
      case 'q': quiet = true; break;
      case 'U': force_share = true; break;
      case kOutput: output = optarg; break;
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
  if (!CheckOutputFormat(output)) return 1;
  if (!ExpectOneFilename(argv)) return 1;
  if (!CheckCacheArg(cache, "source cache option")) return 1;
  const std::string& filename = argv[optind];
  ImageSpec spec;
  spec.filename = filename;
  if (image_opts && fmt.has_value()) {  // as OpenForTool
    tools::ErrorReport("--image-opts and --format are mutually exclusive");
    return 1;
  }
  if (absl::Status st = image_opts ? CheckImageOptsFirstItem(filename) : absl::OkStatus();
      !st.ok()) {
    tools::ErrorReport(absl::StrCat("Could not open '", filename, "': ", st.message()));
    return 1;
  }
  if (fmt.has_value() && fmt->empty()) {
    tools::ErrorReport(absl::StrCat("Could not open '", filename, "': Unknown driver ''"));
    return 1;
  }
  spec.format = fmt.value_or("");
  spec.image_opts = image_opts;
  spec.options.read_only = fix == 0;
  spec.options.check_mode = true;
  spec.options.force_share = force_share;
  // The backing chain is opened too (as qemu-img does): a missing or unknown backing file
  // fails the check.
  absl::StatusOr<std::unique_ptr<Image>> image = Image::Open(spec);
  if (!image.ok()) {
    tools::ErrorReport(absl::StrCat("Could not open '", filename, "': ", image.status().message()));
    return 1;
  }
  Node root = (*image)->root();
  std::string format(root.driver_name());
  absl::StatusOr<CheckResult> result = root.Check(fix);
  if (!result.ok()) {
    if (ErrnoOf(result.status()) == ENOTSUP) {
      tools::ErrorReport("This image format does not support checks");
      return 63;
    }
    tools::ErrorReport(absl::StrCat("Check failed: ", StrError(ErrnoOf(result.status()))));
    return 1;
  }
  CheckResult r = *result;
  if (fix != 0 && (r.corruptions_fixed || r.leaks_fixed)) {
    if (!quiet && output == "human") {
      std::printf("The following inconsistencies were found and repaired:\n\n"
                  "    %" PRId64 " leaked clusters\n    %" PRId64 " corruptions\n\n"
                  "Double checking the fixed image now...\n",
                  r.leaks_fixed, r.corruptions_fixed);
    }
    absl::StatusOr<CheckResult> again = root.Check(0);
    if (!again.ok()) {
      tools::ErrorReport(absl::StrCat("Check failed: ", StrError(ErrnoOf(again.status()))));
      return 1;
    }
    again->leaks_fixed = r.leaks_fixed;
    again->corruptions_fixed = r.corruptions_fixed;
    r = *again;
  }
  if (r.check_errors && output == "human" && r.corruptions == 0 && r.leaks == 0) {
    tools::ErrorReport("Check failed: Input/output error");
    return 1;
  }
  if (!quiet) {
    if (output == "json") PrintJson(r, filename, format);
    else PrintHuman(r);
  }
  return ExitCode(r);
}

}  // namespace strata::img
