// strata tests: Shell and TempDir (shell.h).
#include "block/testing/shell.h"

#include <sys/wait.h>

#include <cstdlib>

namespace strata::testing_shell {

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

}  // namespace strata::testing_shell
