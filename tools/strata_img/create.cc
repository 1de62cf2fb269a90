// strata-img create: makes an image with a format driver and prints QEMU's
// "Formatting '<file>', fmt=<fmt> <opt>=<val>..." line (options in the driver's order).
//
// The checks run in qemu-img 7.2's order, which decides the message a user sees when a
// command line has several faults: the command line itself (option lists, operands, the
// size operand), then the format, the -o values one by one, the size given twice, -b/-F
// against the format, the backing file (opened unless -u), a missing size; only then the
// "Formatting" line and the driver's own checks.
#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "strata/errors.h"
#include "strata/formats.h"
#include "strata/image.h"
#include "strata/options.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

// The "Formatting '<file>', fmt=..." line: every option of the driver that has a value,
// in the driver's order, sizes as numbers, commas doubled.
std::string FormattingLine(const std::string& filename, const std::string& fmt,
                           const std::vector<CreateOptionSpec>& specs,
                           const CreateRequest& request) {
  std::string line = absl::StrCat("Formatting '", filename, "', fmt=", fmt);
  for (const auto& s : specs) {
    std::string value;
    // Sizes print as QEMU's signed 64-bit numbers ("-o size=8E": -9223372036854775808).
    if (s.name == "size") {
      value = absl::StrCat(static_cast<int64_t>(request.size_bytes));
    } else if (auto it = request.options.find(s.name); it != request.options.end()) {
      value = s.type == "size"
                  ? absl::StrCat(static_cast<int64_t>(ParseSize(it->second).value_or(0)))
                  : absl::StrReplaceAll(it->second, {{",", ",,"}});
      if (value.empty()) {
        absl::StrAppend(&line, " ", s.name, "=");  // given empty: printed empty
        continue;
      }
    } else {
      value = s.default_value;
    }
    if (!value.empty()) absl::StrAppend(&line, " ", s.name, "=", value);
  }
  return line;
}

// Reports "<filename>: <message>" and returns 1.
int Fail(const std::string& filename, absl::string_view message) {
  tools::ErrorReport(absl::StrCat(filename, ": ", message));
  return 1;
}

}  // namespace

int CreateMain(const Args& args) {
  std::string fmt = "raw", options_text;
  std::optional<std::string> backing, backing_fmt;
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
      case 'o':
        if (absl::Status valid = SplitOptions(optarg).status(); !valid.ok()) {
          tools::ErrorReport(valid.message());
          return 1;
        }
        options_text = options_text.empty() ? optarg : absl::StrCat(options_text, ",", optarg);
        break;
      case 'O':
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case 'h': return PrintHelp();
      default:
        return GetoptFailure(c, argv);
    }
  }
  std::optional<std::string> filename;
  if (optind < argv.argc()) filename = argv[optind++];
  std::vector<std::pair<std::string, std::string>> options;
  if (!options_text.empty()) {
    auto split = SplitOptions(options_text);
    if (!split.ok()) {
      tools::ErrorReport(split.status().message());
      return 1;
    }
    options = *std::move(split);
  }
  for (const auto& [k, v] : options) {
    if (k == "help" || k == "?") return PrintCreateOptionsHelp(fmt, filename);
  }
  if (!filename.has_value()) {
    tools::ErrorReport("Expecting image file name");
    return TryHelp(1);
  }
  std::optional<uint64_t> size;
  if (optind < argv.argc()) {
    size = ParseSizeArg(argv[optind++]);
    if (!size) return 1;
  }
  if (optind < argv.argc()) {
    tools::ErrorReport(absl::StrCat("Unexpected argument: ", argv[optind]));
    return TryHelp(1);
  }

  const std::optional<DriverDescription> driver = FindDriver(fmt);
  if (!driver) return Fail(*filename, absl::StrCat("Unknown file format '", fmt, "'"));
  const std::vector<CreateOptionSpec> specs = MergedCreateOptions(*driver, *filename);
  CreateRequest request;
  request.filename = *filename;
  if (absl::Status st = ValidateCreateOptions(specs, options); !st.ok()) {
    return Fail(*filename, st.message());
  }
  for (const auto& [k, v] : options) request.options[k] = v;
  if (auto it = request.options.find("size"); it != request.options.end()) {
    if (size.has_value()) return Fail(*filename, "The image size must be specified only once");
    size = ParseSize(it->second).value_or(0);
    request.options.erase(it);
  }
  if (backing.has_value()) {
    if (FindSpec(specs, "backing_file") == nullptr) {
      return Fail(*filename,
                  absl::StrCat("Backing file not supported for file format '", fmt, "'"));
    }
    request.options["backing_file"] = *backing;
  }
  if (backing_fmt.has_value()) {
    if (FindSpec(specs, "backing_fmt") == nullptr) {
      return Fail(*filename, absl::StrCat("Backing file format not supported for file format '",
                                          fmt, "'"));
    }
    request.options["backing_fmt"] = *backing_fmt;
  }
  if (auto it = request.options.find("backing_file"); it != request.options.end()) {
    const std::string& file = it->second;
    if (file == *filename) {
      return Fail(*filename,
                  "Error: Trying to create an image with the same filename as the backing "
                  "file");
    }
    if (file.empty()) return Fail(*filename, "Expected backing file name, got empty string");
    const auto fmt_it = request.options.find("backing_fmt");
    if (!unsafe) {
      // The backing image must open (with the format given, even an empty one); it tells
      // the format when none was given, and the size when none was.
      ImageSpec r;
      r.filename = ResolveBackingPath(*filename, file);
      r.format = fmt_it != request.options.end() ? fmt_it->second : "";
      r.options.read_only = true;
      r.options.force_share = true;
      // An empty format given is a driver name that does not exist, not "probe".
      absl::StatusOr<std::unique_ptr<Image>> b =
          fmt_it != request.options.end() && fmt_it->second.empty()
              ? absl::StatusOr<std::unique_ptr<Image>>(
                    ErrnoError(EINVAL, "Unknown driver ''"))
              : Image::Open(r);
      if (!b.ok()) {
        return Fail(*filename,
                    absl::StrCat(b.status().message(), "\nCould not open backing image."));
      }
      if (fmt_it == request.options.end()) {
        // qemu-img prints this hint without a final newline; so do we.
        std::fprintf(stderr,
                     "%s: %s: Backing file specified without backing format\n"
                     "Detected format of %s.",
                     tools::ProgramName().c_str(), filename->c_str(),
                     (*b)->root().driver_name().c_str());
        return 1;
      }
      if (!size.has_value()) size = (*b)->root().GetLength().value_or(0);
    } else if (fmt_it == request.options.end()) {
      return Fail(*filename, "Backing file specified without backing format");
    }
  }
  if (!size.has_value()) return Fail(*filename, "Image creation needs a size parameter");
  request.size_bytes = *size;
  if (!quiet) {
    std::printf("%s\n", FormattingLine(*filename, fmt, specs, request).c_str());
    std::fflush(stdout);
  }
  // qemu-img reads the size options a second time when it hands them to the driver, and
  // warns again.
  for (const auto& [k, v] : options) {
    const CreateOptionSpec* spec = FindSpec(specs, k);
    if (spec != nullptr && spec->type == "size") WarnHexWithUnit(v);
  }
  absl::Status st = CreateImage(fmt, request);
  if (!st.ok() && ErrnoOf(st) == EFBIG) {
    // QEMU's words for any "too large" from the driver, with a hint where the format has
    // clusters.
    return Fail(*filename,
                absl::StrCat("The image size is too large for file format '", fmt, "'",
                             FindSpec(specs, "cluster_size") != nullptr
                                 ? " (try using a larger cluster size)"
                                 : ""));
  }
  if (!st.ok()) return Fail(*filename, st.message());
  return 0;
}

}  // namespace strata::img
