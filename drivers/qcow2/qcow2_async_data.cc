// strata qcow2: guest data I/O on the coroutine path, through the cipher when the image
// is encrypted.
//
// The twins of ReadData and WriteData: the transfer is awaited on the ring, and the
// cipher (AES-NI through GnuTLS for the common XTS case, a few microseconds per 4 KiB)
// runs on the loop that awaits it, so an encrypted image needs no pool thread per
// request. A read of whole sectors is decrypted in the caller's buffer (it receives the
// plaintext anyway); otherwise, and always for writes (the caller's data must stay as
// it is), encrypted bytes pass through a bounce buffer of at most kCryptBounceBytes.
//
// Compressed clusters likewise: their bytes are read on the ring and inflated on the
// awaiting loop (some tens of microseconds for a 64 KiB cluster, the same order as a
// cipher pass over it), as the synchronous ReadCompressed does.
#include <algorithm>
#include <vector>

#include "block/status.h"
#include "drivers/qcow2/qcow2_compression.h"
#include "drivers/qcow2/qcow2_crypto.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

aio::Task<absl::Status> Qcow2Instance::CoReadCompressed(uint64_t entry, uint64_t in_cluster,
                                                        uint64_t len, const IoVector& out) {
  const CompressedExtent extent = DecodeCompressed(entry, cluster_bits_);
  std::vector<uint8_t> compressed(extent.bytes());
  STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPreadv(
      extent.offset, compressed.size(), IoVector(compressed.data(), compressed.size())));
  std::vector<uint8_t> cluster(cluster_size_);
  STRATA_CO_RETURN_IF_ERROR(DecompressCluster(compression_type_, compressed.data(),
                                              compressed.size(), cluster.data(), cluster_size_));
  out.CopyFrom(0, cluster.data() + in_cluster, len);
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoReadData(uint64_t host, uint64_t guest, uint64_t len,
                                                  const IoVector& out) {
  if (!crypto_) co_return co_await data_file_->node().CoPreadv(host, len, out);
  if (!crypto_->can_transform()) co_return ErrnoError(EIO);
  if (out.IsAligned(1, 512)) {  // the cipher works on 512-byte sectors
    // Whole sectors in every piece of the caller's buffer (the usual case): the
    // ciphertext is read into it and decrypted in place, with no bounce buffer.
    STRATA_CO_RETURN_IF_ERROR(co_await data_file_->node().CoPreadv(host, len, out));
    uint64_t done = 0;
    for (const iovec& piece : out.iovecs()) {
      crypto_->Decrypt(host + done, guest + done, static_cast<uint8_t*>(piece.iov_base),
                       piece.iov_len);
      done += piece.iov_len;
    }
    co_return absl::OkStatus();
  }
  std::vector<uint8_t> buf(std::min(len, kCryptBounceBytes));
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
    STRATA_CO_RETURN_IF_ERROR(
        co_await data_file_->node().CoPreadv(host + done, n, IoVector(buf.data(), n)));
    crypto_->Decrypt(host + done, guest + done, buf.data(), n);
    out.CopyFrom(done, buf.data(), n);
    done += n;
  }
  co_return absl::OkStatus();
}

aio::Task<absl::Status> Qcow2Instance::CoWriteData(uint64_t host, uint64_t guest, uint64_t len,
                                                   const IoVector& in) {
  if (!crypto_) co_return co_await data_file_->node().CoPwritev(host, len, in);
  if (!crypto_->can_transform()) co_return ErrnoError(EIO);
  std::vector<uint8_t> buf(std::min(len, kCryptBounceBytes));
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
    in.CopyTo(done, buf.data(), n);
    crypto_->Encrypt(host + done, guest + done, buf.data(), n);
    STRATA_CO_RETURN_IF_ERROR(
        co_await data_file_->node().CoPwritev(host + done, n, IoVector(buf.data(), n)));
    done += n;
  }
  co_return absl::OkStatus();
}

}  // namespace strata::qcow2
