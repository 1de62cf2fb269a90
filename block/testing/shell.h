// strata tests: running QEMU's tools (the oracle) and placing scratch files.
#ifndef STRATA_BLOCK_TESTING_SHELL_H_
#define STRATA_BLOCK_TESTING_SHELL_H_

#include <string>

namespace strata::testing_shell {

// Runs `command` through /bin/sh; its exit status, or -1 if it did not exit normally.
int Shell(const std::string& command);

// The directory for a test's scratch files: TEST_TMPDIR under bazel, /tmp otherwise.
std::string TempDir();

}  // namespace strata::testing_shell

#endif  // STRATA_BLOCK_TESTING_SHELL_H_
