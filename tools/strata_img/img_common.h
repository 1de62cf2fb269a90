// strata-img: helpers shared by the subcommands (opening images, option lists, errors).
#ifndef STRATA_TOOLS_STRATA_IMG_IMG_COMMON_H_
#define STRATA_TOOLS_STRATA_IMG_IMG_COMMON_H_

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/image.h"
#include "strata/types.h"

namespace strata::img {

// Arguments after the subcommand name, argv-style ("info", "-f", "raw", "x.img").
using Args = std::vector<std::string>;

// Opens `filename` like qemu-img: format `fmt` or probed, read-only unless `writable`.
// On failure prints "qemu-img: Could not open '<f>': <reason>" and returns nullptr.
std::unique_ptr<Image> OpenForTool(const std::string& filename, const std::string& fmt,
                                          bool writable, bool image_opts,
                                          const std::string& cache = "writeback",
                                          bool force_share = false, bool no_backing = false,
                                          bool no_io = false,
                                          const std::vector<std::string>* overlay = nullptr);

// Splits "-o a=b,c=d" (with ",," escapes) into ordered pairs; "help" → {"help", ""}.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitOptions(
    const std::string& text);

// getopt wants a mutable, null-terminated argv and a reset optind; this provides both
// over the subcommand's arguments (argv[0] is the subcommand name). GNU getopt permutes
// the pointer array so that options may follow operands, as in qemu-img: once the option
// loop is done, operands must be read through operator[] (the permuted order), never from
// the original Args.
class GetoptArgs {
 public:
  explicit GetoptArgs(const Args& args);
  int argc() const { return static_cast<int>(argv_.size()) - 1; }
  char** argv() { return argv_.data(); }
  // The i-th argument in getopt's current (permuted) order; argv[optind] is the first operand.
  std::string operator[](int i) const { return argv_[i]; }

 private:
  std::vector<char*> argv_;
};

// Prints "Try '<program> --help' for more information" to stderr; returns `status`.
int TryHelp(int status = 1);

// True if exactly one argument follows the options (getopt's optind); otherwise reports
// "Expecting one image file name" and the --help hint (qemu-img's error_exit).
bool ExpectOneFilename(const GetoptArgs& argv);

// True for "human" and "json"; otherwise reports qemu-img's --output error.
bool CheckOutputFormat(const std::string& output);

// Prints option specs sorted by name as qemu-img's `-o help` lists them.
void PrintOptionList(std::vector<CreateOptionSpec> specs);

// Prints one qemu-img progress update ("    (12.50/100%)" and a carriage return).
void PrintProgress(double percent);

// Parses a qemu-img size argument ("64M", "1G", "512"); prints QEMU's error on failure.
std::optional<uint64_t> ParseSizeArg(const std::string& text);

// Parses a whole integer the way C's strtoul reads one with base 0 (decimal, 0x hex, a
// leading 0 for octal; no suffixes, no sign), as qemu-img reads counts and bytes.
std::optional<uint64_t> ParseCInteger(const std::string& text);

// The subcommands; each returns the process exit status.
int CreateMain(const Args& args);
int InfoMain(const Args& args);
int CheckMain(const Args& args);
int CommitMain(const Args& args);
int MapMain(const Args& args);
int MeasureMain(const Args& args);
int CompareMain(const Args& args);
int ConvertMain(const Args& args);
int RebaseMain(const Args& args);
int ResizeMain(const Args& args);
int SnapshotMain(const Args& args);
int BenchMain(const Args& args);
int AmendMain(const Args& args);
int BitmapMain(const Args& args);

}  // namespace strata::img

#endif  // STRATA_TOOLS_STRATA_IMG_IMG_COMMON_H_
