// strata qcow2: compressed writes (kReqWriteCompressed: qemu-img convert -c, qemu-io
// write -c).
//
// Each whole cluster is compressed as QEMU compresses it (raw deflate with a 4 KiB window
// and memLevel 9 at the default level, or a zstd frame at the default level) into at most
// a cluster minus one byte; what does not fit is written as a normal cluster instead. The
// compressed bytes go where Qcow2Refcounts::AllocateBytes puts them (packed one after the
// other, as QEMU packs them), so an image converted with -c is byte for byte the one
// qemu-img makes.
//
// Ordering: the bytes' refcounts are raised (in the cache), the bytes written, and only
// then the L2 entry set (in the cache); the usual flush writes refcounts before L2 tables.
// A crash leaves the old entry (and at worst leaked bytes) or the new one.
#include <algorithm>
#include <memory>
#include <optional>

#include "block/status.h"
#include "drivers/qcow2/qcow2_compression.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::PwriteCompressed(uint64_t offset, uint64_t bytes,
                                             const IoVector& qiov) {
  // Compressed data cannot live in an external data file (QEMU's rule).
  if (external_data_) return ErrnoError(ENOTSUP);
  if (bytes == 0) {
    // The end of a compressed copy: the file ends on a sector boundary (QEMU's rule, for
    // readers that read whole sectors), now and after a trim at close.
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(CheckUsable());
    compressed_end_ = (compressed_end_ + 511) / 512 * 512;
    // The node's length counts whole sectors: truncating to it rounds the file up.
    STRATA_ASSIGN_OR_RETURN(const uint64_t length, file_->node().GetLength());
    return file_->node().Truncate(length, /*exact=*/false);
  }
  uint64_t image_size;
  uint8_t compression_type;
  {
    aio::CoMutexLock lock(&mu_);
    STRATA_RETURN_IF_ERROR(CheckUsable());
    image_size = header_.size;
    compression_type = header_.compression_type;
  }
  // Whole clusters; only the image's last one may be partial (padded with zeroes).
  if (offset % cluster_size_ != 0) return ErrnoError(EINVAL);
  if (bytes % cluster_size_ != 0 && offset + bytes != image_size) return ErrnoError(EINVAL);
  // QEMU compresses up to 8 clusters at once and stops starting new ones after a failure:
  // the first 8 clusters are all tried, the rest only while none failed. The request
  // reports the first failure.
  constexpr uint64_t kQemuWorkers = 8;
  absl::Status first_error;
  std::vector<uint8_t> cluster(cluster_size_);
  for (uint64_t done = 0; done < bytes; done += cluster_size_) {
    if (!first_error.ok() && done / cluster_size_ >= kQemuWorkers) break;
    const uint64_t len = std::min(cluster_size_, bytes - done);
    std::fill(cluster.begin() + len, cluster.end(), 0);
    qiov.CopyTo(done, cluster.data(), len);
    absl::StatusOr<std::optional<std::vector<uint8_t>>> compressed =
        CompressCluster(compression_type, cluster.data(), cluster_size_);
    absl::Status s = compressed.status();
    if (s.ok() && !*compressed) {
      s = Pwritev(offset + done, len, qiov.Slice(done, len), 0);
    } else if (s.ok()) {
      s = WriteCompressedCluster((offset + done) >> cluster_bits_, **compressed);
    }
    if (first_error.ok()) first_error = s;
  }
  return first_error;
}

absl::Status Qcow2Instance::WriteCompressedCluster(uint64_t gc, const std::vector<uint8_t>& data) {
  aio::CoMutexLock lock(&mu_);
  STRATA_RETURN_IF_ERROR(CheckUsable());
  WaitForAllocations(gc, gc);
  // Clusters freed by the guest are reusable first, for the table and the bytes alike.
  STRATA_RETURN_IF_ERROR(MakeGuestFreesReusable());
  STRATA_RETURN_IF_ERROR(EnsureL2Table(gc / l2_entries_).status());
  STRATA_ASSIGN_OR_RETURN(const uint64_t old, GetL2Entry(gc));
  // Compression never overwrites: a cluster with a host offset (of any kind) is refused.
  if ((old & kL2OffsetMask) != 0) return ErrnoError(EIO);
  const uint64_t size = data.size();
  STRATA_ASSIGN_OR_RETURN(const uint64_t host, refcounts_->AllocateBytes(size));
  const uint64_t entry = EncodeCompressed(host, size, cluster_bits_);
  absl::Status s = CheckMetadataOverlap(host, size, overlap_ignore_);
  file_->NotifyDebugEvent(DebugEvent::kL2UpdateCompressed);
  if (s.ok()) {
    file_->NotifyDebugEvent(DebugEvent::kWriteCompressed);
    s = file_->node().Pwrite(host, size, data.data());
  }
  if (s.ok()) s = MarkDirtyForLazyRefcounts();
  if (s.ok()) s = SetL2Entry(gc, entry);
  if (!s.ok()) {
    // Nothing references the bytes: drop their references again.
    const CompressedExtent extent = DecodeCompressed(entry, cluster_bits_);
    for (uint64_t c = extent.first_cluster(cluster_bits_);
         c <= extent.last_cluster(cluster_bits_); ++c) {
      (void)refcounts_->FreeClusters(c << cluster_bits_, 1);
    }
    return s;
  }
  ReleaseLater(old);
  compressed_end_ = std::max(compressed_end_, host + size);
  return absl::OkStatus();
}

}  // namespace strata::qcow2
