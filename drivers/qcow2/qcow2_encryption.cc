// strata qcow2: making a new image encrypted (creation's last step, as in QEMU: after
// the preallocation, so the volume's clusters follow the preallocated ones).
#include <cerrno>

#include "block/secrets.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {

absl::Status Qcow2Instance::SetUpEncryption(const EncryptCreateParams& params) {
  aio::CoMutexLock lock(&mu_);
  if (params.method == kCryptAes) {
    STRATA_ASSIGN_OR_RETURN(const std::string secret, LookupSecret(params.luks.key_secret));
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Qcow2Crypto> crypto, Qcow2Crypto::ForAesKey(secret));
    header_.crypt_method = kCryptAes;
    STRATA_RETURN_IF_ERROR(RewriteHeader());
    crypto_ = std::move(crypto);
    return absl::OkStatus();
  }
  if (params.method != kCryptLuks) return absl::OkStatus();
  STRATA_ASSIGN_OR_RETURN(const luks::NewVolume volume,
                          luks::FormatVolume(params.luks, "encrypt."));
  // The volume's clusters: counted (and the counts made stable) before anything names
  // them, zero-filled so that their unused bytes are predictable (as QEMU), then the
  // header and slot 0's key material.
  const uint64_t clusters = DivRoundUp(volume.volume_bytes(), cluster_size_);
  STRATA_ASSIGN_OR_RETURN(const uint64_t offset, refcounts_->AllocateClusters(clusters));
  STRATA_RETURN_IF_ERROR(FlushMetadata(/*with_refcounts=*/true));
  BlockDriverState& file = file_->node();
  STRATA_RETURN_IF_ERROR(file.ZeroesByBuffer(offset, clusters << cluster_bits_));
  STRATA_RETURN_IF_ERROR(file.Pwrite(offset, volume.header_bytes.size(),
                                     volume.header_bytes.data()));
  STRATA_RETURN_IF_ERROR(file.Pwrite(offset + volume.material_offset, volume.material.size(),
                                     volume.material.data()));
  STRATA_RETURN_IF_ERROR(file.Flush());
  // One header write makes the image encrypted.
  const CryptoHeaderExtension extent{offset, volume.volume_bytes()};
  header_.crypt_method = kCryptLuks;
  header_.other_extensions.insert(header_.other_extensions.begin(),
                                  {kExtCrypto, EncodeCryptoExtension(extent)});
  STRATA_RETURN_IF_ERROR(RewriteHeader());
  crypto_ = Qcow2Crypto::ForNewLuksVolume(extent, volume);
  return absl::OkStatus();
}

}  // namespace strata::qcow2
