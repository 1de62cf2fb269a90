// strata: automatic node names (node_names.h).
#include "block/node_names.h"

#include <atomic>
#include <random>

#include "absl/strings/str_format.h"

namespace strata {

std::string NextAutomaticNodeName() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  std::random_device rd;
  return absl::StrFormat("#block%d%02d", n, rd() % 100);
}

}  // namespace strata
