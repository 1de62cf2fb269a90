// strata: child edges (see child.h).
#include "block/child.h"

#include "block/node.h"

namespace strata {

BdrvChild::BdrvChild(std::string name, ChildRole role, std::unique_ptr<BlockDriverState> node)
    : name_(std::move(name)), role_(role), node_(std::move(node)) {
  child_wants_events_ = node_->WantsDebugEvents();
}

BdrvChild::~BdrvChild() = default;

void BdrvChild::Deliver(DebugEvent event) const { node_->HandleDebugEvent(event); }

}  // namespace strata
