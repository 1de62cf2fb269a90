// strata-img create: makes an image with a format driver and prints QEMU's
// "Formatting '<file>', fmt=<fmt> <opt>=<val>..." line (options in the driver's order).
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "strata/image.h"
#include "strata/options.h"
#include "strata/formats.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

void PrintOptionHelp(const DriverDescription& driver) {
  std::printf("Supported %s options:\n", driver.name.c_str());
  PrintOptionList(driver.create_options);
  std::printf("\nThe protocol level may support further options.\n"
              "Specify the target filename to include those options.\n");
}

}  // namespace

int CreateMain(const Args& args) {
  std::string fmt = "raw", backing, backing_fmt;
  std::vector<std::pair<std::string, std::string>> options;
  bool quiet = false, unsafe = false;
  GetoptArgs argv(args);
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, 'O'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":F:b:f:ho:qu", kLong, nullptr)) !=
         -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'b': backing = optarg; break;
      case 'F': backing_fmt = optarg; break;
      case 'q': quiet = true; break;
      case 'u': unsafe = true; break;
      case 'o': {
        auto split = SplitOptions(optarg);
        if (!split.ok()) {
          tools::ErrorReport(split.status().message());
          return 1;
        }
        options.insert(options.end(), split->begin(), split->end());
        break;
      }
      case 'O':
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case ':':
        tools::ErrorReport(absl::StrCat("option requires an argument -- '", std::string(1, static_cast<char>(optopt)), "'"));
        return 1;
      default:
        tools::ErrorReport(absl::StrCat("unrecognized option '", argv.argv()[optind - 1], "'"));
        return TryHelp(1);
    }
  }
  (void)unsafe;
  const std::optional<DriverDescription> driver = FindDriver(fmt);
  for (const auto& [k, v] : options) {
    if (k == "help" || k == "?") {
      if (!driver) {
        tools::ErrorReport(absl::StrCat("Unknown file format '", fmt, "'"));
        return 1;
      }
      PrintOptionHelp(*driver);
      return 0;
    }
  }
  if (optind >= static_cast<int>(args.size())) {
    tools::ErrorReport("Expecting image file name");
    return 1;
  }
  std::string filename = argv[optind++];
  std::optional<std::string> size_text;
  if (optind < static_cast<int>(args.size())) size_text = argv[optind++];
  if (optind < static_cast<int>(args.size())) {
    tools::ErrorReport(absl::StrCat("Unexpected argument: ", argv[optind]));
    return 1;
  }
  if (!driver || driver->kind != DriverKind::kFormat) {
    if (!driver || driver->kind != DriverKind::kProtocol) {
      tools::ErrorReport(absl::StrCat("Unknown file format '", fmt, "'"));
      return 1;
    }
  }
  CreateRequest request;
  request.filename = filename;
  for (const auto& [k, v] : options) request.options[k] = v;
  if (!backing.empty()) request.options["backing_file"] = backing;
  if (!backing_fmt.empty()) request.options["backing_fmt"] = backing_fmt;
  std::string size_printed;
  if (!backing.empty() && !unsafe) {
    // The backing image must open; it also gives the size when none was given.
    const std::string path = ResolveBackingPath(filename, backing);
    ImageSpec r;
    r.filename = path;
    r.format = backing_fmt;
    r.options.read_only = true;
    r.options.force_share = true;
    absl::StatusOr<std::unique_ptr<Image>> b = Image::Open(r);
    if (!b.ok()) {
      tools::ErrorReport(absl::StrCat(filename, ": ", b.status().message(),
                                      "\nCould not open backing image."));
      return 1;
    }
    if (backing_fmt.empty()) {
      // qemu-img prints this hint without a final newline; so do we.
      std::fprintf(stderr,
                   "%s: %s: Backing file specified without backing format\n"
                   "Detected format of %s.",
                   tools::ProgramName().c_str(), filename.c_str(),
                   (*b)->root().driver_name().c_str());
      return 1;
    }
    if (!size_text.has_value() && !request.options.count("size")) {
      request.size_bytes = (*b)->root().GetLength().value_or(0);
      size_printed = absl::StrCat(request.size_bytes);
    }
  }
  if (size_text.has_value()) {
    std::optional<uint64_t> size = ParseSizeArg(*size_text);
    if (!size) return 1;
    request.size_bytes = *size;
    size_printed = absl::StrCat(*size);
  } else if (request.options.count("size")) {
    std::optional<uint64_t> size = ParseSizeArg(request.options["size"]);
    if (!size) return 1;
    request.size_bytes = *size;
    size_printed = absl::StrCat(*size);
  }
  std::vector<CreateOptionSpec> specs = driver->create_options;
  for (const auto& [k, v] : request.options) {
    bool known = false;
    for (const auto& s : specs) known |= s.name == k;
    if (!known) {
      tools::ErrorReport(absl::StrCat(filename, ": Invalid parameter '", k, "'"));
      return 1;
    }
  }
  if (size_printed.empty()) {
    tools::ErrorReport(absl::StrCat(filename, ": Image creation needs a size parameter"));
    return 1;
  }
  if (!quiet) {
    std::string line = absl::StrCat("Formatting '", filename, "', fmt=", fmt);
    for (const auto& s : specs) {
      std::string value;
      if (s.name == "size") {
        value = size_printed;
      } else if (auto it = request.options.find(s.name); it != request.options.end()) {
        value = s.type == "size" ? absl::StrCat(ParseSize(it->second).value_or(0))
                                 : absl::StrReplaceAll(it->second, {{",", ",,"}});
      } else {
        value = s.default_value;
      }
      if (!value.empty()) absl::StrAppend(&line, " ", s.name, "=", value);
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  absl::Status st = CreateImage(fmt, request);
  if (!st.ok()) {
    tools::ErrorReport(absl::StrCat(filename, ": ", st.message()));
    return 1;
  }
  return 0;
}

}  // namespace strata::img
