// strata-img convert: qemu-img convert's pieces (convert_pieces.h).
#include "tools/strata_img/convert_pieces.h"

#include <algorithm>

#include "strata/node.h"

namespace strata::img {

std::vector<ConvertPiece> QemuConvertPieces(const std::vector<std::unique_ptr<Image>>& sources,
                                            const ConvertPieceRules& rules) {
  constexpr uint64_t kDataStep = 2 << 20;
  std::vector<ConvertPiece> pieces;
  uint64_t base = 0;
  const uint64_t step = rules.compress ? rules.target_cluster : kDataStep;
  for (size_t i = 0; i < sources.size(); ++i) {
    Image& src = *sources[i];
    const uint64_t len = src.GetLength().value_or(0);
    const bool all_data = rules.compress && (src.root().driver_name() == "raw" ||
                                             src.root().driver_kind() == DriverKind::kProtocol);
    uint64_t status_end = 0;  // where the status last asked for ends
    bool counted = false;     // whether that status counts (data)
    for (uint64_t off = 0; off < len;) {
      if (status_end <= off) {
        absl::StatusOr<RangeStatus> st = rules.target_has_backing
                                             ? src.root().GetBlockStatus(off, len - off)
                                             : src.root().GetBlockStatusAbove(off, len - off);
        uint64_t run = st.ok() ? std::clamp<uint64_t>(st->bytes, 1, len - off) : len - off;
        if (all_data) run = len - off;
        // Whole sectors: a run ending inside one (a raw file's odd end) takes the rest of
        // that sector with it.
        status_end = std::min((off + run + 511) / 512 * 512, len);
        const bool left_to_backing =
            st.ok() && rules.target_has_backing && !st->allocated && !all_data;
        counted = all_data || !st.ok() ||
                  (!left_to_backing && (!st->zero || rules.sparse_bytes == 0));
      }
      uint64_t n = status_end - off;
      if (counted) n = std::min(n, step);
      if (rules.compress) {
        if (n < rules.target_cluster) {
          n = std::min(rules.target_cluster, len - off);
          counted = true;
        } else {
          n = n / rules.target_cluster * rules.target_cluster;
        }
      }
      pieces.push_back({i, off, base + off, n, counted});
      off += n;
    }
    base += len;
  }
  return pieces;
}

const ConvertPiece& PieceAt(const std::vector<ConvertPiece>& pieces, uint64_t dst_off) {
  // The last piece starting at or before dst_off.
  auto after = std::upper_bound(
      pieces.begin(), pieces.end(), dst_off,
      [](uint64_t v, const ConvertPiece& p) { return v < p.dst_off; });
  return *std::prev(after);
}

}  // namespace strata::img
