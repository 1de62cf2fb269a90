// Shared by the fuzz targets: a private scratch directory (on tmpfs when there is one)
// that the target works in, so that no input can make it read or write a file outside
// it. Created on first use, removed at exit.
#ifndef STRATA_TESTS_FUZZ_FUZZ_SANDBOX_H_
#define STRATA_TESTS_FUZZ_FUZZ_SANDBOX_H_

#include <cstdint>
#include <string>

namespace strata::fuzz {

// The scratch directory (absolute path). The process's working directory is set to it,
// so relative names an input carries (a data file, a pattern file) resolve inside it.
const std::string& ScratchDir();

// Writes `size` bytes to `name` inside the scratch directory, replacing it; returns the
// absolute path.
std::string WriteScratchFile(const std::string& name, const uint8_t* data, size_t size);

}  // namespace strata::fuzz

#endif  // STRATA_TESTS_FUZZ_FUZZ_SANDBOX_H_
