// strata blkdebug: config file and option parsing (see blkdebug_config.h).
#include "blkdebug/blkdebug_config.h"

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "block/status.h"

namespace strata::blkdebug {
namespace {

absl::Status InvalidParameter(absl::string_view key) {
  return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", key, "'"));
}

// QEMU option numbers: unsigned, any base strtoull accepts (so "-5" wraps, as in QEMU).
absl::StatusOr<int64_t> ParseNumber(absl::string_view key, const std::string& value) {
  if (value.empty()) return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' expects a number"));
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(value.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') {
    return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' expects a number"));
  }
  return static_cast<int64_t>(n);
}

absl::StatusOr<bool> ParseBool(absl::string_view key, const std::string& value) {
  if (value == "on" || value == "yes" || value == "true" || value == "y") return true;
  if (value == "off" || value == "no" || value == "false" || value == "n") return false;
  return ErrnoError(EINVAL, absl::StrCat("Parameter '", key, "' expects 'on' or 'off'"));
}

absl::Status SetInjectErrorKey(const std::string& key, const std::string& value,
                               proto::BlkdebugInjectError* rule) {
  if (key == "event") {
    rule->set_event(value);
  } else if (key == "iotype") {
    rule->set_iotype(value);
  } else if (key == "state") {
    STRATA_ASSIGN_OR_RETURN(int64_t n, ParseNumber(key, value));
    rule->set_state(n);
  } else if (key == "errno") {
    STRATA_ASSIGN_OR_RETURN(int64_t n, ParseNumber(key, value));
    rule->set_error_number(n);
  } else if (key == "sector") {
    STRATA_ASSIGN_OR_RETURN(int64_t n, ParseNumber(key, value));
    rule->set_sector(n);
  } else if (key == "once") {
    STRATA_ASSIGN_OR_RETURN(bool b, ParseBool(key, value));
    rule->set_once(b);
  } else if (key == "immediately") {
    STRATA_ASSIGN_OR_RETURN(bool b, ParseBool(key, value));
    rule->set_immediately(b);
  } else {
    return InvalidParameter(key);
  }
  return absl::OkStatus();
}

absl::Status SetSetStateKey(const std::string& key, const std::string& value,
                            proto::BlkdebugSetState* rule) {
  if (key == "event") {
    rule->set_event(value);
  } else if (key == "state") {
    STRATA_ASSIGN_OR_RETURN(int64_t n, ParseNumber(key, value));
    rule->set_state(n);
  } else if (key == "new_state") {
    STRATA_ASSIGN_OR_RETURN(int64_t n, ParseNumber(key, value));
    rule->set_new_state(n);
  } else {
    return InvalidParameter(key);
  }
  return absl::OkStatus();
}

// Splits `line` (without its newline) as QEMU's `" %63s = \"%1023[^\"]\""` does: the
// first blank-delimited token is the key; the value is the quoted text after " = ", or
// empty when that part does not match. Returns false when the line has no token.
bool SplitAssignment(absl::string_view line, std::string* key, std::string* value) {
  size_t i = 0;
  while (i < line.size() && absl::ascii_isspace(line[i])) ++i;
  size_t start = i;
  while (i < line.size() && !absl::ascii_isspace(line[i]) && i - start < 63) ++i;
  if (i == start) return false;
  *key = std::string(line.substr(start, i - start));
  value->clear();
  while (i < line.size() && absl::ascii_isspace(line[i])) ++i;
  if (i >= line.size() || line[i] != '=') return true;
  ++i;
  while (i < line.size() && absl::ascii_isspace(line[i])) ++i;
  if (i >= line.size() || line[i] != '"') return true;
  ++i;
  size_t close = line.find('"', i);
  *value = std::string(line.substr(i, close == absl::string_view::npos ? absl::string_view::npos
                                                                         : close - i));
  return true;
}

}  // namespace

absl::Status ParseConfigText(absl::string_view text, proto::BlkdebugOptions* options) {
  enum class Group { kNone, kInjectError, kSetState };
  Group group = Group::kNone;
  proto::BlkdebugInjectError* inject = nullptr;
  proto::BlkdebugSetState* set_state = nullptr;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      // "[name]" or "[name "id"]".
      size_t end = line.find_first_of(" ]", 1);
      std::string name(line.substr(1, end == absl::string_view::npos ? absl::string_view::npos
                                                                     : end - 1));
      if (name == "inject-error") {
        group = Group::kInjectError;
        inject = options->add_inject_error();
      } else if (name == "set-state") {
        group = Group::kSetState;
        set_state = options->add_set_state();
      } else {
        return ErrnoError(EINVAL, absl::StrCat("There is no option group '", name, "'"));
      }
      continue;
    }
    std::string key, value;
    if (!SplitAssignment(line, &key, &value)) return ErrnoError(EINVAL, "parse error");
    switch (group) {
      case Group::kNone:
        return ErrnoError(EINVAL, "no group defined");
      case Group::kInjectError:
        STRATA_RETURN_IF_ERROR(SetInjectErrorKey(key, value, inject));
        break;
      case Group::kSetState:
        STRATA_RETURN_IF_ERROR(SetSetStateKey(key, value, set_state));
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseConfigFile(const std::string& path, proto::BlkdebugOptions* options) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "r"), &std::fclose);
  if (file == nullptr) {
    return Prefixed("Could not read blkdebug config file", ErrnoError(errno));
  }
  std::string text;
  char buf[4096];
  size_t n;
  // A config is a few lines; a huge or endless file (a device) is refused, not slurped.
  constexpr size_t kMaxConfigBytes = 1 << 20;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxConfigBytes) {
      return Prefixed("Could not read blkdebug config file", ErrnoError(EFBIG));
    }
  }
  if (std::ferror(file.get())) {
    return Prefixed("Could not read blkdebug config file", ErrnoError(EIO));
  }
  return ParseConfigText(text, options);
}

namespace {

template <typename RuleProto>
absl::StatusOr<DebugEvent> EventOf(const RuleProto& rule) {
  if (!rule.has_event()) return ErrnoError(EINVAL, "Missing event name for rule");
  const std::string& name = rule.event();
  std::optional<DebugEvent> event = ParseDebugEvent(name);
  if (!event.has_value()) {
    return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", name));
  }
  return *event;
}

}  // namespace

absl::Status AddRules(const proto::BlkdebugOptions& options, RuleEngine* engine) {
  for (const proto::BlkdebugInjectError& p : options.inject_error()) {
    InjectErrorRule rule;
    STRATA_ASSIGN_OR_RETURN(rule.event, EventOf(p));
    rule.state = p.state();
    if (!p.iotype().empty()) {
      std::optional<IoType> type = ParseIoType(p.iotype());
      if (!type.has_value()) {
        return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", p.iotype()));
      }
      rule.iotype_mask = 1u << static_cast<int>(*type);
    }
    if (p.has_error_number()) rule.error_number = p.error_number();
    if (p.has_sector() && p.sector() != -1) rule.offset = static_cast<uint64_t>(p.sector()) * 512;
    rule.once = p.once();
    rule.immediately = p.immediately();
    engine->AddInjectError(rule);
  }
  for (const proto::BlkdebugSetState& p : options.set_state()) {
    SetStateRule rule;
    STRATA_ASSIGN_OR_RETURN(rule.event, EventOf(p));
    rule.state = p.state();
    rule.new_state = p.new_state();
    engine->AddSetState(rule);
  }
  return absl::OkStatus();
}

}  // namespace strata::blkdebug
