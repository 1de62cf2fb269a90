// strata tools: program name and error reporting (see program.h).
#include "tools/common/program.h"

#include <cstdio>
#include <cstring>

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
