// strata api: ApiAccess, the library's way between the public handles (strata::Node,
// strata::Queue) and the internals they stand for. Callers of the public API cannot name
// it usefully: the types it returns are declared, never defined, in the public headers.
#ifndef STRATA_API_ACCESS_H_
#define STRATA_API_ACCESS_H_

#include "aio/io_context.h"
#include "block/block_backend.h"
#include "block/node.h"
#include "strata/image.h"
#include "strata/node.h"
#include "strata/queue.h"

namespace strata {

class ApiAccess {
 public:
  static Node MakeNode(BlockDriverState* bs) { return Node(bs); }
  static BlockDriverState* NodeOf(const Node& node) { return node.bs_; }
  static aio::IoContext& ContextOf(const Queue& queue) { return *queue.context_; }
  static BlockBackend& BackendOf(const Image& image) { return *image.backend_; }
};

}  // namespace strata

#endif  // STRATA_API_ACCESS_H_
