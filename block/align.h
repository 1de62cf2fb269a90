// strata: rounding offsets to a node's request alignment (any positive value; no
// power-of-two assumption).
#ifndef STRATA_BLOCK_ALIGN_H_
#define STRATA_BLOCK_ALIGN_H_

#include <cstdint>

namespace strata {

constexpr uint64_t AlignDown(uint64_t v, uint64_t a) { return v - v % a; }
constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return AlignDown(v + a - 1, a); }

}  // namespace strata

#endif  // STRATA_BLOCK_ALIGN_H_
