// strata-img: helpers shared by the subcommands (opening images, option lists, errors).
#ifndef STRATA_TOOLS_STRATA_IMG_IMG_COMMON_H_
#define STRATA_TOOLS_STRATA_IMG_IMG_COMMON_H_

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "strata/formats.h"
#include "strata/image.h"
#include "strata/types.h"
#include "tools/common/human_size.h"  // WarnHexWithUnit

namespace strata::img {

using tools::WarnHexWithUnit;

// Arguments after the subcommand name, argv-style ("info", "-f", "raw", "x.img").
using Args = std::vector<std::string>;

// The -f value of a subcommand: unset = probe; set, even to "" (which names no driver).
using FormatArg = std::optional<std::string>;

// A format name where "" means "probe" (a backing format read from an image header).
inline FormatArg ProbeIfEmpty(const std::string& format) {
  return format.empty() ? std::nullopt : FormatArg(format);
}

// qemu-img reads --image-opts with an implied first key, "file": a first item without '='
// names a node by reference, which a tool's graph never has (QEMU's error, else OK).
absl::Status CheckImageOptsFirstItem(const std::string& opts);

// Opens `filename` like qemu-img: format `fmt` or probed, read-only unless `writable`.
// On failure prints "qemu-img: Could not open '<f>': <reason>" and returns nullptr.
std::unique_ptr<Image> OpenForTool(const std::string& filename, const FormatArg& fmt,
                                          bool writable, bool image_opts,
                                          const std::string& cache = "writeback",
                                          bool force_share = false, bool no_backing = false,
                                          bool no_io = false,
                                          const std::vector<std::string>* overlay = nullptr);
// A plain string format is ambiguous ("" = probe or a driver named ""): say which, with
// FormatArg or ProbeIfEmpty.
template <typename... Rest>
std::unique_ptr<Image> OpenForTool(const std::string& filename, const std::string& fmt,
                                   Rest&&... rest) = delete;

// Splits "-o a=b,c=d" (with ",," escapes) into ordered pairs; "help" → {"help", ""}.
// An empty item ("", ",a", "a,") is refused as qemu-img refuses it ("Invalid option
// list: <text>").
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
// Prints the version banner (-V, --version).
void PrintVersion();
// Prints the whole help text (-h, --help, a subcommand's -h); returns 0 (help.cc).
int PrintHelp();

// Reports what getopt returned for a bad option as qemu-img does ("missing argument for
// option '-f'" for ':', "unrecognized option '--x'" for '?'; the argument as typed) with
// the --help hint; returns 1. Option strings start with ':' so that getopt stays silent.
int GetoptFailure(int c, const class GetoptArgs& argv);

// True if exactly one argument follows the options (getopt's optind); otherwise reports
// "Expecting one image file name" and the --help hint (qemu-img's error_exit).
bool ExpectOneFilename(const GetoptArgs& argv);

// The create option called `name` in `specs`, or nullptr.
const CreateOptionSpec* FindSpec(const std::vector<CreateOptionSpec>& specs,
                                 const std::string& name);

// What `-o` accepts when creating a `driver` image at `filename`: the format's options
// followed by those only the protocol has (the protocol `filename` names, else file), as
// qemu-img merges the two lists.
std::vector<CreateOptionSpec> MergedCreateOptions(const DriverDescription& driver,
                                                  const std::string& filename);

// Prints `-o help` for creating a `fmt` image: the format's options alone ("Supported qcow2
// options:" and a hint), or, once a file name is given, MergedCreateOptions ("Supported
// options:"). Returns the exit status (1 and QEMU's message for an unknown format).
int PrintCreateOptionsHelp(const std::string& fmt, const std::optional<std::string>& filename);

// One -o value checked against its type as QEMU's option parser checks it (size, bool,
// num); the error in QEMU's words, or OK.
absl::Status CheckOptionValue(const CreateOptionSpec& spec, const std::string& value);

// Every -o pair checked in order against `specs`: the first unknown name ("Invalid
// parameter 'x'") or bad value, or OK.
absl::Status ValidateCreateOptions(
    const std::vector<CreateOptionSpec>& specs,
    const std::vector<std::pair<std::string, std::string>>& options);

// True if `cache` names a cache mode; otherwise reports "Invalid <what>: <cache>" (what:
// "cache option" or "source cache option", as the subcommand's -t / -T).
bool CheckCacheArg(const std::string& cache, absl::string_view what);

// True for "human" and "json"; otherwise reports qemu-img's --output error.
bool CheckOutputFormat(const std::string& output);

// Prints option specs sorted by name as qemu-img's `-o help` lists them.
void PrintOptionList(std::vector<CreateOptionSpec> specs);

// Prints one qemu-img progress update ("    (12.50/100%)" and a carriage return).
void PrintProgress(double percent);

// qemu-img's progress figure as it decides what to print: a float, printed when it moved
// by more than `min_skip` points since the last line, or is 0 or 100. Not thread-safe.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(float min_skip) : min_skip_(min_skip) {}
  void Report(float percent) {
    if (percent > last_ + min_skip_ || percent < last_ - min_skip_ || percent == 0 ||
        percent == 100) {
      PrintProgress(percent);
      last_ = percent;
    }
  }

 private:
  const float min_skip_;
  float last_ = 0;
};

// Parses a qemu-img size argument ("64M", "1G", "512") named `name` in messages, within
// [min, max] (qemu-img's cvtnum): prints QEMU's error on failure, and its deprecation
// warning for a hex number with a unit.
std::optional<uint64_t> ParseSizeArg(const std::string& text,
                                     absl::string_view name = "image size",
                                     uint64_t max = INT64_MAX, uint64_t min = 0);

// Parses a whole integer the way C's strtoul reads one with base 0 (decimal, 0x hex, a
// leading 0 for octal; no suffixes, no sign), as qemu-img reads counts and bytes.
std::optional<uint64_t> ParseCInteger(const std::string& text);

// The subcommands; each returns the process exit status.
int CreateMain(const Args& args);
int DdMain(const Args& args);
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
