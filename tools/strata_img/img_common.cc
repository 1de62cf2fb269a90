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

std::unique_ptr<Image> OpenForTool(const std::string& filename, const std::string& fmt,
                                   bool writable, bool image_opts, const std::string& cache,
                                   bool force_share, bool no_backing, bool no_io,
                                   const std::vector<std::string>* overlay) {
  ImageSpec spec;
  if (overlay != nullptr) spec.overlay = *overlay;
  spec.filename = filename;
  spec.format = fmt;
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

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitOptions(
    const std::string& text) {
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

std::optional<uint64_t> ParseSizeArg(const std::string& text) {
  absl::StatusOr<uint64_t> size = ParseSize(text);
  if (!size.ok()) {
    tools::ErrorReport(
        "Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
    tools::ErrorReport("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    return std::nullopt;
  }
  return *size;
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
