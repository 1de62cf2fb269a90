// strata tools: the program name (from argv[0], so that a `qemu-img` symlink prints
// "qemu-img: ...") and QEMU-style error reporting on stderr.
#ifndef STRATA_TOOLS_COMMON_PROGRAM_H_
#define STRATA_TOOLS_COMMON_PROGRAM_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace strata::tools {

// Remembers basename(argv0) as the program name.
void SetProgramName(const char* argv0);
const std::string& ProgramName();

// Prints "<program>: <message>\n" to stderr (QEMU error_report).
void ErrorReport(absl::string_view message);
// Prints "<program>: warning: <message>\n" to stderr (QEMU warn_report).
void WarnReport(absl::string_view message);

// QEMU's warning when a writable image's format was guessed raw by probing (block 0
// writes are then refused if they would make the image probe as another format).
void WarnProbedRaw(absl::string_view filename);

// QEMU's -T/--trace option ("[[enable=]PATTERN][,events=FILE][,file=FILE]"). strata has
// no trace events, so it does what QEMU does for names that match none: warns about each
// pattern without wildcards (from the option and from the events file, which must be
// readable), and refuses unknown parameters. Returns false after printing the error.
bool HandleTraceOption(absl::string_view arg);

// The name QEMU gives a node opened without a node name: "#block", its place in the
// order nodes were named (`counter`), and two random digits.
std::string AutomaticNodeName(int counter);

// Makes stdout fully buffered when it is not a terminal and stderr unbuffered, as C stdio
// does by default; QEMU's goldens depend on the resulting interleaving (stderr first).
void SetQemuStdioBuffering();

}  // namespace strata::tools

#endif  // STRATA_TOOLS_COMMON_PROGRAM_H_
