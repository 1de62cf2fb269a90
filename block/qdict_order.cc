// strata: QEMU's QDict member order (see qdict_order.h).
#include "block/qdict_order.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace strata {

uint32_t QdictBucket(absl::string_view key) {
  uint32_t v = 0x238F13AFu * static_cast<uint32_t>(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    v += static_cast<uint32_t>(static_cast<uint8_t>(key[i])) << ((i * 5) % 24);
  }
  return (1103515243u * v + 12345u) % 512;
}

std::vector<size_t> QdictPrintOrder(const std::vector<std::string>& keys) {
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const uint32_t ba = QdictBucket(keys[a]), bb = QdictBucket(keys[b]);
    if (ba != bb) return ba < bb;
    return a > b;  // newest first within a bucket
  });
  return order;
}

std::string QdictOneLine(const std::vector<std::pair<std::string, std::string>>& members) {
  std::vector<std::string> keys;
  for (const auto& m : members) keys.push_back(m.first);
  std::string out = "{";
  bool first = true;
  for (size_t i : QdictPrintOrder(keys)) {
    absl::StrAppend(&out, first ? "" : ", ", "\"", members[i].first, "\": ", members[i].second);
    first = false;
  }
  return out + "}";
}

}  // namespace strata
