// strata-img: shared helpers (see img_common.h).
#include "tools/strata_img/img_common.h"

#include <getopt.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "strata/formats.h"
#include "strata/options.h"
#include "tools/common/program.h"

namespace strata::img {

GetoptArgs::GetoptArgs(const Args& args) {
  for (const auto& a : args) argv_.push_back(const_cast<char*>(a.c_str()));
  argv_.push_back(nullptr);
  optind = 0;  // 0, not 1: glibc then also resets its permutation state

}

int TryHelp(int status) {
  std::fprintf(stderr, "Try '%s --help' for more information\n", tools::ProgramName().c_str());
  return status;
}

absl::Status CheckImageOptsFirstItem(const std::string& opts) {
  const std::string first = opts.substr(0, opts.find(','));
  if (!first.empty() && first.find('=') == std::string::npos) {
    return ErrnoError(EINVAL, absl::StrCat("Cannot find device='", first, "' nor node-name='",
                                           first, "'"));
  }
  return absl::OkStatus();
}

int GetoptFailure(int c, const GetoptArgs& argv) {
  const std::string typed = argv[optind - 1];
  tools::ErrorReport(c == ':' ? absl::StrCat("missing argument for option '", typed, "'")
                              : absl::StrCat("unrecognized option '", typed, "'"));
  return TryHelp(1);
}

const CreateOptionSpec* FindSpec(const std::vector<CreateOptionSpec>& specs,
                                 const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The protocol driver `filename` names ("nbd:..." -> nbd), else file; its create options
// are accepted with the format's (qemu-img merges the two lists).
static std::optional<DriverDescription> ProtocolFor(const std::string& filename) {
  const size_t colon = filename.find(':');
  if (colon != std::string::npos && filename.find('/') > colon) {
    std::optional<DriverDescription> d = FindDriver(filename.substr(0, colon));
    if (d && d->kind == DriverKind::kProtocol) return d;
  }
  return FindDriver("file");
}

// The format's create options followed by those of the protocol that only it has.
std::vector<CreateOptionSpec> MergedCreateOptions(const DriverDescription& driver,
                                                  const std::string& filename) {
  std::vector<CreateOptionSpec> merged = driver.create_options;
  if (driver.kind != DriverKind::kFormat) return merged;
  if (std::optional<DriverDescription> protocol = ProtocolFor(filename)) {
    for (const auto& s : protocol->create_options) {
      if (FindSpec(merged, s.name) == nullptr) merged.push_back(s);
    }
  }
  return merged;
}

// One -o value checked against its type as QEMU's option parser checks it; the error, in
// QEMU's words, or OK.
absl::Status CheckOptionValue(const CreateOptionSpec& spec, const std::string& value) {
  if (spec.type == "size") {
    WarnHexWithUnit(value);
    absl::StatusOr<uint64_t> size = ParseSize(value);
    if (size.ok()) return absl::OkStatus();
    if (ErrnoOf(size.status()) == ERANGE) {
      return ErrnoError(EINVAL, absl::StrCat("Value '", value,
                                             "' is out of range for parameter '", spec.name,
                                             "'"));
    }
    return ErrnoError(EINVAL,
                      absl::StrCat("Parameter '", spec.name,
                                   "' expects a non-negative number below 2^64\n"
                                   "Optional suffix k, M, G, T, P or E means kilo-, mega-, "
                                   "giga-, tera-, peta-\nand exabytes, respectively."));
  }
  if (spec.type == "bool") {
    for (const char* ok : {"on", "off", "yes", "no", "true", "false", "y", "n"}) {
      if (value == ok) return absl::OkStatus();
    }
    return ErrnoError(EINVAL, absl::StrCat("Parameter '", spec.name, "' expects 'on' or 'off'"));
  }
  if (spec.type == "num") {
    if (value.empty() || value[0] == '-' || value[0] == '+') {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", spec.name, "' expects a number"));
    }
    if (!ParseCInteger(value).has_value()) {
      // Digits only, yet unreadable: too large.
      const bool digits = value.find_first_not_of("0123456789") == std::string::npos;
      return ErrnoError(EINVAL, digits ? absl::StrCat("Value '", value,
                                                      "' is too large for parameter '",
                                                      spec.name, "'")
                                       : absl::StrCat("Parameter '", spec.name,
                                                      "' expects a number"));
    }
  }
  return absl::OkStatus();
}

// `-o help`: the format's options alone ("Supported qcow2 options:" and a hint), or, once
// a file name is given, merged with the file protocol's ("Supported options:"; the
// format's description wins where both have an option).
int PrintCreateOptionsHelp(const std::string& fmt, const std::optional<std::string>& filename) {
  const std::optional<DriverDescription> driver = FindDriver(fmt);
  if (!driver) {
    tools::ErrorReport(absl::StrCat("Unknown file format '", fmt, "'"));
    return 1;
  }
  if (!filename.has_value()) {
    std::printf("Supported %s options:\n", driver->name.c_str());
    PrintOptionList(driver->create_options);
    std::printf("\nThe protocol level may support further options.\n"
                "Specify the target filename to include those options.\n");
    return 0;
  }
  std::printf("Supported options:\n");
  PrintOptionList(MergedCreateOptions(*driver, *filename));
  return 0;
}

absl::Status ValidateCreateOptions(
    const std::vector<CreateOptionSpec>& specs,
    const std::vector<std::pair<std::string, std::string>>& options) {
  for (const auto& [k, v] : options) {
    const CreateOptionSpec* spec = FindSpec(specs, k);
    if (spec == nullptr) {
      return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", k, "'"));
    }
    STRATA_RETURN_IF_ERROR(CheckOptionValue(*spec, v));
  }
  return absl::OkStatus();
}

bool CheckCacheArg(const std::string& cache, absl::string_view what) {
  if (ParseCacheMode(cache).ok()) return true;
  tools::ErrorReport(absl::StrCat("Invalid ", what, ": ", cache));
  return false;
}

bool CheckOutputFormat(const std::string& output) {
  if (output == "human" || output == "json") return true;
  tools::ErrorReport("--output must be used with human or json as argument.");
  return false;
}

void PrintProgress(double percent) {
  std::printf("    (%3.2f/100%%)\r", percent);
  std::fflush(stdout);
}

void PrintOptionList(std::vector<CreateOptionSpec> specs) {
  std::sort(specs.begin(), specs.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& s : specs) {
    const std::string type = s.type == "bool" ? "bool (on/off)" : s.type;
    std::string left = absl::StrCat("  ", s.name, "=<", type, ">");
    std::printf("%-24s - %s\n", left.c_str(), s.help.c_str());
  }
}

bool ExpectOneFilename(const GetoptArgs& argv) {
  if (optind == argv.argc() - 1) return true;
  tools::ErrorReport("Expecting one image file name");
  TryHelp();
  return false;
}

std::unique_ptr<Image> OpenForTool(const std::string& filename, const FormatArg& fmt,
                                   bool writable, bool image_opts, const std::string& cache,
                                   bool force_share, bool no_backing, bool no_io,
                                   const std::vector<std::string>* overlay) {
  ImageSpec spec;
  if (overlay != nullptr) spec.overlay = *overlay;
  spec.filename = filename;
  // --image-opts names the driver itself: a format beside it is refused (checked first,
  // at open, as qemu-img checks it).
  if (image_opts && fmt.has_value()) {
    tools::ErrorReport("--image-opts and --format are mutually exclusive");
    return nullptr;
  }
  if (fmt.has_value() && fmt->empty()) {
    tools::ErrorReport(absl::StrCat("Could not open '", filename, "': Unknown driver ''"));
    return nullptr;
  }
  if (image_opts) {
    if (absl::Status st = CheckImageOptsFirstItem(filename); !st.ok()) {
      tools::ErrorReport(absl::StrCat("Could not open '", filename, "': ", st.message()));
      return nullptr;
    }
  }
  spec.format = fmt.value_or("");
  spec.image_opts = image_opts;
  spec.options.read_only = !writable;
  spec.options.force_share = force_share;
  spec.options.no_backing = no_backing;
  spec.options.no_io = no_io;
  absl::StatusOr<CacheMode> mode = ParseCacheMode(cache);
  if (!mode.ok()) {
    tools::ErrorReport(absl::StrCat("Invalid cache option: ", cache));
    return nullptr;
  }
  spec.options.cache = *mode;
  absl::StatusOr<std::unique_ptr<Image>> image = Image::Open(spec);
  if (!image.ok()) {
    tools::ErrorReport(absl::StrCat("Could not open '", filename, "': ",
                                    image.status().message()));
    return nullptr;
  }
  if ((*image)->probed_raw() && writable) tools::WarnProbedRaw((*image)->ProbedRawName());
  return *std::move(image);
}

// qemu-img refuses an -o argument with an empty item: "", ",a=1", "a=1,,," (",," is an
// escaped comma, not an empty item).
static bool IsValidOptionList(const std::string& text) {
  if (text.empty()) return false;
  bool item_empty = true;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ',') {
      item_empty = false;
    } else if (i + 1 < text.size() && text[i + 1] == ',') {
      item_empty = false;
      ++i;
    } else {
      if (item_empty) return false;
      item_empty = true;
    }
  }
  return !item_empty;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitOptions(
    const std::string& text) {
  if (!IsValidOptionList(text)) {
    return ErrnoError(EINVAL, absl::StrCat("Invalid option list: ", text));
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::string item;
  auto flush = [&]() -> absl::Status {
    if (item.empty()) return absl::OkStatus();
    size_t eq = item.find('=');
    if (eq == std::string::npos) {
      if (item == "help" || item == "?") {
        out.emplace_back(item, "");
      } else {
        // QEMU treats a bare name as "name=on" for booleans.
        out.emplace_back(item, "on");
      }
    } else {
      out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    item.clear();
    return absl::OkStatus();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        item.push_back(',');
        ++i;
        continue;
      }
      STRATA_RETURN_IF_ERROR(flush());
    } else {
      item.push_back(text[i]);
    }
  }
  STRATA_RETURN_IF_ERROR(flush());
  return out;
}

std::optional<uint64_t> ParseSizeArg(const std::string& text, absl::string_view name,
                                     uint64_t max, uint64_t min) {
  WarnHexWithUnit(text);
  absl::StatusOr<ParsedSize> size = ParseSizeDetailed(text);
  if ((size.ok() && (size->bytes > max || size->bytes < min)) ||
      (!size.ok() && ErrnoOf(size.status()) == ERANGE)) {
    tools::ErrorReport(absl::StrCat("Invalid ", name, " specified. Must be between ", min,
                                    " and ", max, "."));
    return std::nullopt;
  }
  if (!size.ok()) {
    tools::ErrorReport(absl::StrCat("Invalid ", name,
                                    " specified. You may use k, M, G, T, P or E suffixes for"));
    tools::ErrorReport("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    return std::nullopt;
  }
  return size->bytes;
}

std::optional<uint64_t> ParseCInteger(const std::string& text) {
  if (text.empty() || text[0] == '-' || text[0] == '+' || std::isspace(text[0])) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace strata::img
