// strata: BdrvChild, a named edge from a parent node to the child node it owns.
#ifndef STRATA_BLOCK_CHILD_H_
#define STRATA_BLOCK_CHILD_H_

#include <memory>
#include <string>

#include "absl/base/optimization.h"
#include "block/debug_events.h"
#include "block/driver.h"

namespace strata {

class BlockDriverState;

// An edge `name` (file, backing, image) with a role, owning the child node. Immutable
// after construction except for the node it owns; safe for concurrent use.
class BdrvChild {
 public:
  BdrvChild(std::string name, ChildRole role, std::unique_ptr<BlockDriverState> node);
  ~BdrvChild();

  const std::string& name() const { return name_; }
  ChildRole role() const { return role_; }
  BlockDriverState& node() const { return *node_; }

  // Sends `event` to the child node. Costs one predictable branch when the child ignores
  // events (the answer is cached when the edge is made).
  void NotifyDebugEvent(DebugEvent event) const {
    if (ABSL_PREDICT_FALSE(child_wants_events_)) Deliver(event);
  }
  // True if events sent down this edge reach a driver (which may park the sender at a
  // breakpoint): coroutine paths then take the synchronous path on the blocking pool.
  bool delivers_events() const { return child_wants_events_; }

 private:
  void Deliver(DebugEvent event) const;

  const std::string name_;
  const ChildRole role_;
  std::unique_ptr<BlockDriverState> node_;
  bool child_wants_events_ = false;
};

}  // namespace strata

#endif  // STRATA_BLOCK_CHILD_H_
