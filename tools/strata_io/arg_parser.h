// strata-io: per-command option parsing with getopt's grammar and messages, but no
// global state ("read -P 0x5 -q 0 4k"; "read: invalid option -- 'Q'" on stderr).
#ifndef STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_
#define STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_

#include <optional>
#include <string>
#include <vector>

namespace strata::io {

// Walks argv[1..] like GNU getopt with option string `spec` ("bCP:q": P takes a value).
// As in qemu-io (GNU getopt permutes), options may follow operands ("read 0 4k -v");
// "--" ends the options and everything after it is an operand.
class ArgParser {
 public:
  ArgParser(const std::vector<std::string>& argv, std::string spec)
      : argv_(argv), spec_(std::move(spec)) {}

  // Next option letter, '?' for an unknown option or a missing value (after printing
  // getopt's message), or nullopt at the end of options.
  std::optional<char> Next();
  // The value of the option just returned.
  const std::string& value() const { return value_; }
  // The operands (non-option arguments) in order; complete once Next() returned nullopt.
  std::vector<std::string> Rest() const;

 private:
  const std::vector<std::string>& argv_;
  const std::string spec_;
  size_t index_ = 1;
  size_t char_index_ = 0;
  std::string value_;
  std::vector<std::string> operands_;
};

}  // namespace strata::io

#endif  // STRATA_TOOLS_STRATA_IO_ARG_PARSER_H_
