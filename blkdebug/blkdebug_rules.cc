// strata blkdebug: the rule engine (see blkdebug_rules.h).
#include "blkdebug/blkdebug_rules.h"

#include <algorithm>

namespace strata::blkdebug {

std::optional<IoType> ParseIoType(absl::string_view name) {
  static constexpr absl::string_view kNames[kIoTypeCount] = {
      "read", "write", "write-zeroes", "discard", "flush", "block-status"};
  for (int i = 0; i < kIoTypeCount; ++i) {
    if (kNames[i] == name) return static_cast<IoType>(i);
  }
  return std::nullopt;
}

void RuleEngine::AddInjectError(const InjectErrorRule& rule) {
  Rule r{.action = Action::kInjectError, .state = rule.state, .inject = rule, .tag = {}};
  rules_[static_cast<int>(rule.event)].push_front(std::move(r));
}

void RuleEngine::AddSetState(const SetStateRule& rule) {
  Rule r{.action = Action::kSetState, .state = rule.state, .inject = {}, .new_state = rule.new_state, .tag = {}};
  rules_[static_cast<int>(rule.event)].push_front(std::move(r));
}

void RuleEngine::AddBreakpoint(DebugEvent event, std::string tag) {
  Rule r{.action = Action::kSuspend, .state = 0, .inject = {}, .new_state = 0, .tag = std::move(tag)};
  rules_[static_cast<int>(event)].push_front(std::move(r));
}

bool RuleEngine::RemoveBreakpoints(absl::string_view tag) {
  bool found = false;
  for (RuleList& list : rules_) {
    for (auto it = list.begin(); it != list.end();) {
      if (it->action == Action::kSuspend && it->tag == tag) {
        it = list.erase(it);
        found = true;
      } else {
        ++it;
      }
    }
  }
  return found;
}

int RuleEngine::BreakpointCount() const {
  int count = 0;
  for (const RuleList& list : rules_) {
    for (const Rule& r : list) count += r.action == Action::kSuspend;
  }
  return count;
}

std::vector<std::string> RuleEngine::OnEvent(DebugEvent event) {
  RuleList& list = rules_[static_cast<int>(event)];
  int64_t new_state = state_;
  bool cleared = false;
  std::vector<std::string> suspended;
  for (auto it = list.begin(); it != list.end();) {
    if (it->state != 0 && it->state != state_) {
      ++it;
      continue;
    }
    switch (it->action) {
      case Action::kInjectError:
        if (!cleared) {
          for (RuleList::iterator a : active_) a->active = false;
          active_.clear();
          cleared = true;
        }
        it->active = true;
        active_.insert(active_.begin(), it);
        ++it;
        break;
      case Action::kSetState:
        new_state = it->new_state;
        ++it;
        break;
      case Action::kSuspend:
        suspended.push_back(it->tag);
        it = list.erase(it);
        break;
    }
  }
  state_ = new_state;
  return suspended;
}

int RuleEngine::CheckRequest(IoType type, uint64_t offset, uint64_t bytes, bool* immediately) {
  const uint32_t bit = 1u << static_cast<int>(type);
  for (size_t i = 0; i < active_.size(); ++i) {
    const InjectErrorRule& rule = active_[i]->inject;
    bool covers = !rule.offset.has_value() ||
                  (bytes > 0 && *rule.offset >= offset && *rule.offset - offset < bytes);
    if (!covers || (rule.iotype_mask & bit) == 0) continue;
    if (rule.error_number <= 0) return 0;
    const int error = static_cast<int>(rule.error_number);
    if (immediately != nullptr) *immediately = rule.immediately;
    if (rule.once) {
      RuleList::iterator dead = active_[i];
      active_.erase(active_.begin() + i);
      rules_[static_cast<int>(dead->inject.event)].erase(dead);
    }
    return error;
  }
  return 0;
}

}  // namespace strata::blkdebug
