// strata: the names QEMU gives nodes opened without a node-name.
//
// QEMU names every node: "#block", the node's place in the order nodes were named in the
// process (a counter from 0, a protocol child before its parent), and two random digits.
// Messages that name a node (the bitmap store failing at close) use it; QEMU's own tests
// filter it as NODE_NAME, since the digits change from run to run.
#ifndef STRATA_BLOCK_NODE_NAMES_H_
#define STRATA_BLOCK_NODE_NAMES_H_

#include <cstdint>
#include <string>

namespace strata {

// The next automatic name of this process (thread-safe).
std::string NextAutomaticNodeName();

}  // namespace strata

#endif  // STRATA_BLOCK_NODE_NAMES_H_
