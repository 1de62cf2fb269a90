// strata-io: getopt-like parsing (see arg_parser.h).
#include "tools/strata_io/arg_parser.h"

#include <cstdio>

namespace strata::io {

std::optional<char> ArgParser::Next() {
  while (char_index_ == 0) {
    if (index_ >= argv_.size()) return std::nullopt;
    const std::string& a = argv_[index_];
    if (a == "--") {
      ++index_;
      operands_.insert(operands_.end(), argv_.begin() + index_, argv_.end());
      index_ = argv_.size();
      return std::nullopt;
    }
    if (a.size() < 2 || a[0] != '-') {
      operands_.push_back(a);
      ++index_;
      continue;
    }
    char_index_ = 1;
  }
  const std::string& a = argv_[index_];
  char c = a[char_index_++];
  bool at_end = char_index_ >= a.size();
  size_t pos = spec_.find(c);
  if (pos == std::string::npos || c == ':') {
    std::fprintf(stderr, "%s: invalid option -- '%c'\n", argv_[0].c_str(), c);
    if (at_end) {
      ++index_;
      char_index_ = 0;
    }
    return '?';
  }
  bool takes_value = pos + 1 < spec_.size() && spec_[pos + 1] == ':';
  if (takes_value) {
    if (!at_end) {
      value_ = a.substr(char_index_);
    } else if (index_ + 1 < argv_.size()) {
      value_ = argv_[++index_];
    } else {
      std::fprintf(stderr, "%s: option requires an argument -- '%c'\n", argv_[0].c_str(), c);
      ++index_;
      char_index_ = 0;
      return '?';
    }
    ++index_;
    char_index_ = 0;
    return c;
  }
  if (at_end) {
    ++index_;
    char_index_ = 0;
  }
  return c;
}

std::vector<std::string> ArgParser::Rest() const {
  std::vector<std::string> rest = operands_;
  rest.insert(rest.end(), argv_.begin() + std::min(index_, argv_.size()), argv_.end());
  return rest;
}

}  // namespace strata::io
