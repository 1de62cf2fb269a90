// strata blkdebug: the rule engine (QEMU blkdebug's state machine, without any I/O).
//
// Rules hang off debug events. When an event fires, every rule of that event whose state
// is "any" or the current state acts: inject-error rules become the *active* list (the
// first one in an event clears the previous list), set-state rules pick the next state,
// breakpoint rules suspend the request that raised the event (one-shot). Requests that
// then reach the blkdebug node fail with the first active rule matching their I/O type
// and sector. See ../shared/reference/qemu-7.2.md section 2.4 for the exact semantics this
// reproduces, including the order rules are kept in (newest first).
#ifndef STRATA_BLKDEBUG_BLKDEBUG_RULES_H_
#define STRATA_BLKDEBUG_BLKDEBUG_RULES_H_

#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "block/debug_events.h"

namespace strata::blkdebug {

// The kinds of request a rule can fail (QEMU BlkdebugIOType, same order).
enum class IoType { kRead, kWrite, kWriteZeroes, kDiscard, kFlush, kBlockStatus };
inline constexpr int kIoTypeCount = 6;
// The default mask: everything but block-status.
inline constexpr uint32_t kDefaultIoTypeMask = (1u << kIoTypeCount) - 1 - (1u << 5);

// Parses "write-zeroes" etc.; nullopt for an unknown name.
std::optional<IoType> ParseIoType(absl::string_view name);

// [inject-error]: after `event`, fail matching requests with `error_number`.
struct InjectErrorRule {
  DebugEvent event = DebugEvent::kNone;
  int64_t state = 0;  // 0 = any state
  uint32_t iotype_mask = kDefaultIoTypeMask;
  int64_t error_number = 5;  // EIO; <= 0: let the request through
  std::optional<uint64_t> offset;  // byte offset (sector * 512) a request must cover
  bool once = false;
  bool immediately = false;
};

// [set-state]: when `event` fires in `state` (0 = any), switch to `new_state`.
struct SetStateRule {
  DebugEvent event = DebugEvent::kNone;
  int64_t state = 0;
  int64_t new_state = 0;
};

// Not thread-safe: the blkdebug driver serialises calls under its own mutex.
class RuleEngine {
 public:
  RuleEngine() = default;
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  void AddInjectError(const InjectErrorRule& rule);
  void AddSetState(const SetStateRule& rule);
  // A one-shot breakpoint on `event` (any state) that suspends with `tag`.
  void AddBreakpoint(DebugEvent event, std::string tag);
  // Deletes every breakpoint rule tagged `tag`; returns whether there was one.
  bool RemoveBreakpoints(absl::string_view tag);
  // Breakpoints armed (not yet fired or removed).
  int BreakpointCount() const;

  // Processes `event`: updates the active list and the state. Returns the tags of the
  // breakpoints that fired (their rules are gone), in rule order.
  std::vector<std::string> OnEvent(DebugEvent event);

  // The error a request of `type` over [offset, offset+bytes) must fail with, or 0 to let
  // it through. A `once` rule that fails a request is deleted. `*immediately` (optional)
  // tells whether the rule asked to fail without yielding.
  int CheckRequest(IoType type, uint64_t offset, uint64_t bytes, bool* immediately = nullptr);

  int64_t state() const { return state_; }

 private:
  enum class Action { kInjectError, kSetState, kSuspend };
  struct Rule {
    Action action;
    int64_t state;
    InjectErrorRule inject;  // kInjectError
    int64_t new_state = 0;   // kSetState
    std::string tag;         // kSuspend
    bool active = false;     // on the active list (kInjectError only)
  };
  using RuleList = std::list<Rule>;

  // Rules per event, newest first.
  std::array<RuleList, kDebugEventCount> rules_;
  // The armed inject rules, most recently armed first.
  std::vector<RuleList::iterator> active_;
  int64_t state_ = 1;
};

}  // namespace strata::blkdebug

#endif  // STRATA_BLKDEBUG_BLKDEBUG_RULES_H_
