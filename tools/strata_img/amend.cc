// strata-img amend: changes format options of an existing image (-o, repeatable; later
// ones win), silently on success, with qemu-img's messages on failure.
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/formats.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int AmendMain(const Args& args) {
  FormatArg fmt;
  std::string cache = "writeback";
  std::vector<std::pair<std::string, std::string>> options;
  bool quiet = false, progress = false, image_opts = false, any_options = false;
  GetoptArgs argv(args);
  enum { kObject = 256, kImageOpts, kForce };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force", no_argument, nullptr, kForce},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":ho:f:t:pq", kLong, nullptr)) != -1) {
    switch (c) {
      case 'o': {
        absl::StatusOr<std::vector<std::pair<std::string, std::string>>> split =
            SplitOptions(optarg);
        if (!split.ok()) {
          tools::ErrorReport(split.status().message());
          return 1;
        }
        options.insert(options.end(), split->begin(), split->end());
        any_options = true;
        break;
      }
      case 'f': fmt = optarg; break;
      case 't': cache = optarg; break;
      case 'p': progress = true; break;
      case 'q': quiet = true; break;
      case kForce: break;
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
  if (!any_options) {
    tools::ErrorReport("Must specify options (-o)");
    return TryHelp(1);
  }
  if (quiet) progress = false;
  const bool wants_help = std::any_of(options.begin(), options.end(), [](const auto& o) {
    return o.first == "help" || o.first == "?";
  });
  if (wants_help && fmt.has_value() && !fmt->empty()) {
    std::optional<DriverDescription> driver = FindDriver(*fmt);
    if (!driver) {
      tools::ErrorReport(absl::StrCat("Unknown file format '", *fmt, "'"));
      return 1;
    }
    std::printf("Amend options for '%s':\n", fmt->c_str());
    PrintOptionList(driver->amend_options);
    return 0;
  }
  if (optind != static_cast<int>(args.size()) - 1) {
    tools::ErrorReport("Expecting one image file name");  // no usage hint, as qemu-img
    return 1;
  }
  const std::string filename = argv[optind];
  std::unique_ptr<Image> blk = OpenForTool(filename, fmt, !wants_help, image_opts, cache);
  if (!blk) return 1;
  const DriverDescription driver = *FindDriver(blk->root().driver_name());
  if (wants_help) {
    std::printf("Amend options for '%s':\n", driver.name.c_str());
    PrintOptionList(driver.amend_options);
    return 0;
  }
  if (driver.amend_options.empty()) {
    tools::ErrorReport(absl::StrCat("Format driver '", driver.name,
                                    "' does not support option amendment"));
    return 1;
  }
  // As qemu-img: the option list is checked before progress starts (a bad name or value
  // prints no progress line); then 0, the driver's own steps, and 100.
  const bool show = progress && ValidateCreateOptions(driver.amend_options, options).ok();
  ProgressPrinter printer(1.0);
  if (show) printer.Report(0);
  AmendProgress steps;
  if (show) {
    steps = [&printer](uint64_t done, uint64_t total) {
      printer.Report(100.f * static_cast<float>(done) / static_cast<float>(total));
    };
  }
  absl::Status s = blk->root().Amend(options, steps);
  if (show) printer.Report(100);  // failed or not, as qemu-img
  absl::Status closed = blk->Close();
  if (s.ok()) s = closed;
  if (!s.ok()) tools::ErrorReport(s.message());
  if (progress) std::printf("\n");  // ends the progress line, after any error
  return s.ok() ? 0 : 1;
}

}  // namespace strata::img
