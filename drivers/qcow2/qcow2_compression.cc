// strata qcow2: cluster compression (qcow2_compression.h).
#include "drivers/qcow2/qcow2_compression.h"

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <memory>

#include "block/status.h"

namespace strata::qcow2 {
namespace {

struct ZstdCctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

}  // namespace
absl::StatusOr<std::optional<std::vector<uint8_t>>> CompressCluster(uint8_t compression_type,
                                                                    const uint8_t* data,
                                                                    size_t cluster) {
  std::vector<uint8_t> out(cluster - 1);
  if (compression_type == 0) {
    z_stream zs = {};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      return ErrnoError(ENOMEM);
    }
    zs.next_in = const_cast<uint8_t*>(data);
    zs.avail_in = static_cast<uInt>(cluster);
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    const int r = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    if (r == Z_STREAM_END) {
      out.resize(out.size() - zs.avail_out);
      return std::optional<std::vector<uint8_t>>(std::move(out));
    }
    if (r == Z_OK || r == Z_BUF_ERROR) return std::optional<std::vector<uint8_t>>();
    return ErrnoError(EIO);
  }
  std::unique_ptr<ZSTD_CCtx, ZstdCctxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return ErrnoError(ENOMEM);
  ZSTD_outBuffer o = {out.data(), out.size(), 0};
  ZSTD_inBuffer in = {data, cluster, 0};
  // One call, as QEMU makes it: output that needs more room than a cluster does not fit.
  const size_t r = ZSTD_compressStream2(cctx.get(), &o, &in, ZSTD_e_end);
  if (ZSTD_isError(r)) {
    if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
      return std::optional<std::vector<uint8_t>>();
    }
    return ErrnoError(EIO);
  }
  if (r > 0) return std::optional<std::vector<uint8_t>>();
  out.resize(o.pos);
  return std::optional<std::vector<uint8_t>>(std::move(out));
}


absl::Status DecompressCluster(uint8_t compression_type, const uint8_t* compressed,
                               size_t compressed_bytes, uint8_t* out, size_t cluster) {
  if (compression_type == 0) {
    z_stream zs = {};
    if (inflateInit2(&zs, -12) != Z_OK) return ErrnoError(EIO);
    zs.next_in = const_cast<uint8_t*>(compressed);
    zs.avail_in = static_cast<uInt>(compressed_bytes);
    zs.next_out = out;
    zs.avail_out = static_cast<uInt>(cluster);
    const int r = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    // A full output is what counts (QEMU accepts Z_STREAM_END, or Z_BUF_ERROR with a
    // full buffer).
    if (!(r == Z_STREAM_END || (r == Z_BUF_ERROR && zs.avail_out == 0)) || zs.avail_out != 0) {
      return ErrnoError(EIO);
    }
    return absl::OkStatus();
  }
  std::unique_ptr<ZSTD_DCtx, ZstdDctxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return ErrnoError(ENOMEM);
  ZSTD_inBuffer in = {compressed, compressed_bytes, 0};
  ZSTD_outBuffer o = {out, cluster, 0};
  size_t r = 0;
  while (o.pos < o.size && in.pos < in.size) {
    r = ZSTD_decompressStream(dctx.get(), &o, &in);
    if (ZSTD_isError(r) || r == 0) break;
  }
  if (ZSTD_isError(r) || o.pos != o.size) return ErrnoError(EIO);
  return absl::OkStatus();
}

}  // namespace strata::qcow2
