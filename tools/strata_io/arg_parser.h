// strata-io: per-command option parsing with getopt's grammar and messages, but no
// global state ("read -P 0x5 -q 0 4k"; "read: invalid option -- 'Q'" on stderr).
#ifndef STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_
#define STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_

#include <optional>
#include <string>
#include <vector>

namespace strata::io {

// Walks argv[1..] like POSIX getopt with option string `spec` ("bCP:q": P takes a value).
// Option parsing stops at the first non-option argument or "--".
class ArgParser {
 public:
  ArgParser(const std::vector<std::string>& argv, std::string spec)
      : argv_(argv), spec_(std::move(spec)) {}

  // Next option letter, '?' for an unknown option or a missing value (after printing
  // getopt's message), or nullopt at the end of options.
  std::optional<char> Next();
  // The value of the option just returned.
  const std::string& value() const { return value_; }
  // The arguments after the options.
  std::vector<std::string> Rest() const;

 private:
  const std::vector<std::string>& argv_;
  const std::string spec_;
  size_t index_ = 1;
  size_t char_index_ = 0;
  std::string value_;
};

}  // namespace strata::io

#endif  // STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_
