// strata tools: program name and error reporting (see program.h).
#include "tools/common/program.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace strata::tools {
namespace {
std::string& Name() {
  static std::string* name = new std::string("strata");  // Intentionally leaked.
  return *name;
}
}  // namespace

void SetProgramName(const char* argv0) {
  const char* slash = std::strrchr(argv0, '/');
  Name() = slash ? slash + 1 : argv0;
}

const std::string& ProgramName() { return Name(); }

void ErrorReport(absl::string_view message) {
  std::fprintf(stderr, "%s: %.*s\n", Name().c_str(), static_cast<int>(message.size()),
               message.data());
}

void WarnReport(absl::string_view message) {
  std::fprintf(stderr, "%s: warning: %.*s\n", Name().c_str(),
               static_cast<int>(message.size()), message.data());
}

void SetQemuStdioBuffering() {
  // glibc already does this; being explicit documents that goldens rely on it.
  std::setvbuf(stderr, nullptr, _IONBF, 0);
}

void WarnProbedRaw(absl::string_view filename) {
  std::fprintf(stderr,
               "WARNING: Image format was not specified for '%.*s' and probing guessed raw.\n"
               "         Automatically detecting the format is dangerous for raw images, "
               "write operations on block 0 will be restricted.\n"
               "         Specify the 'raw' format explicitly to remove the restrictions.\n",
               static_cast<int>(filename.size()), filename.data());
}

}  // namespace strata::tools

namespace strata::tools {
namespace {

bool IsGlob(absl::string_view pattern) {
  return pattern.find_first_of("*?") != absl::string_view::npos;
}

// QEMU's complaint about a pattern that names no event; `where` prefixes it ("FILE:LINE: ")
// for patterns from an events file.
void WarnNoSuchEvent(absl::string_view pattern, absl::string_view where) {
  absl::ConsumePrefix(&pattern, "-");  // "-name" disables; same check
  if (pattern.empty() || IsGlob(pattern)) return;
  std::fprintf(stderr, "%s:%.*swarning: trace event '%.*s' does not exist\n",
               Name().c_str(), static_cast<int>(where.size()), where.data(),
               static_cast<int>(pattern.size()), pattern.data());
}

}  // namespace

bool HandleTraceOption(absl::string_view arg) {
  std::string pattern, events;
  bool first = true;
  for (absl::string_view part : absl::StrSplit(arg, ',')) {
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) {
      if (first) pattern = std::string(part);
      first = false;
      continue;
    }
    first = false;
    const absl::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
    if (key == "enable") {
      pattern = std::string(value);
    } else if (key == "events") {
      events = std::string(value);
    } else if (key != "file") {
      ErrorReport(absl::StrCat("Invalid parameter '", key, "'"));
      return false;
    }
  }
  if (!events.empty()) {
    std::FILE* f = std::fopen(events.c_str(), "r");
    if (f == nullptr) {
      std::fprintf(stderr, "%s:%s: %s\n", Name().c_str(), events.c_str(), std::strerror(errno));
      return false;
    }
    char line[1024];
    for (int number = 1; std::fgets(line, sizeof line, f) != nullptr; ++number) {
      absl::string_view text = absl::StripAsciiWhitespace(line);
      if (text.empty() || text[0] == '#') continue;
      WarnNoSuchEvent(text, absl::StrCat(events, ":", number, ": "));
    }
    std::fclose(f);
  }
  WarnNoSuchEvent(pattern, " ");
  return true;
}

std::string AutomaticNodeName(int counter) {
  std::random_device rd;
  return absl::StrCat("#block", counter, rd() % 10, rd() % 10);
}

}  // namespace strata::tools
