// strata-img convert: the pieces qemu-img convert copies, modelled step for step.
//
// strata copies in its own chunks, but two things qemu-img shows depend on qemu-img's
// pieces: the -p figures (each printed when a piece is done) and which read errors it
// reports (every copy coroutine whose piece fails prints its own line). Its loop: a piece
// ends where the allocation status it last asked for ends, or after 2 MiB of data (one
// target cluster with -c); with -c a piece shorter than a cluster is taken as a whole
// cluster of data and longer ones are cut to whole clusters; for a raw source with -c
// everything counts (qemu-img then asks for block status without hole detection). With
// -B qemu-img asks only the source's top image (its status above its own backing file):
// what the top leaves to its backing file is neither copied nor counted.
#ifndef STRATA_TOOLS_STRATA_IMG_CONVERT_PIECES_H_
#define STRATA_TOOLS_STRATA_IMG_CONVERT_PIECES_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "strata/image.h"

namespace strata::img {

struct ConvertPiece {
  size_t source;           // index into the sources
  uint64_t src_off;        // where the piece starts in that source
  uint64_t dst_off;        // and in the target (the sources concatenated)
  uint64_t bytes;
  bool data;               // read and counted (data, or zeroes with -S 0)
};

struct ConvertPieceRules {
  bool compress = false;             // -c
  uint64_t target_cluster = 0;       // with -c
  bool target_has_backing = false;   // -B
  uint64_t sparse_bytes = 4096;      // -S
};

// Every piece of every source, in order.
std::vector<ConvertPiece> QemuConvertPieces(const std::vector<std::unique_ptr<Image>>& sources,
                                            const ConvertPieceRules& rules);

// The piece holding target offset `dst_off` (which must lie inside the sources).
const ConvertPiece& PieceAt(const std::vector<ConvertPiece>& pieces, uint64_t dst_off);

}  // namespace strata::img

#endif  // STRATA_TOOLS_STRATA_IMG_CONVERT_PIECES_H_
