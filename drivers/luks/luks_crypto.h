// strata luks: the cryptography LUKS1 needs, on nettle (Debian's nettle-dev; no
// hand-written primitives): PBKDF2, the anti-forensic splitter, and sector ciphers
// (the ciphers and modes QEMU offers: AES-128/192/256, Serpent-128/192/256,
// Twofish-128/192/256 and CAST5-128 in XTS, CBC, CTR or ECB mode, with plain, plain64 or
// essiv IVs; hashes md5, sha1, sha224, sha256, sha384, sha512, ripemd160).
//
// Thread safety: SectorCipher is immutable after construction; Encrypt/Decrypt may run
// concurrently on different buffers.
#ifndef STRATA_DRIVERS_LUKS_LUKS_CRYPTO_H_
#define STRATA_DRIVERS_LUKS_LUKS_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::luks {

// Digest length of a LUKS hash spec ("md5", "sha1", "sha224", "sha256", "sha384",
// "sha512", "ripemd160"); 0 if unsupported.
size_t HashLength(const std::string& hash);
// PBKDF2-HMAC-`hash`. Fails for an unsupported hash.
absl::StatusOr<std::vector<uint8_t>> Pbkdf2(const std::string& hash, const std::string& password,
                                            const uint8_t* salt, size_t salt_len,
                                            uint32_t iterations, size_t out_len);
// Iterations of PBKDF2-`hash` (for a `key_len`-byte key) that take about `ms`
// milliseconds here (at least 1000), as QEMU's iter-time.
uint32_t IterationsForTime(const std::string& hash, size_t key_len, uint64_t ms);

// LUKS's anti-forensic split of `key` into `stripes` blocks (random_fill supplies the
// random stripes), and its merge.
std::vector<uint8_t> AfSplit(const std::string& hash, const std::vector<uint8_t>& key,
                             uint32_t stripes, const std::vector<uint8_t>& random_stripes);
std::vector<uint8_t> AfMerge(const std::string& hash, const uint8_t* material, size_t key_len,
                             uint32_t stripes);

// A cipher over sectors of `unit` bytes (512 for LUKS1 and qcow2; 512 to 4096, a power of
// two, for LUKS2), each encrypted as one message under the IV of its first 512-byte
// sector (dm-crypt's rule for LUKS2's larger sectors): `cipher` "aes", "serpent" or
// "twofish" with a key of
// 16/24/32 bytes, or "cast5" with 16 (the key doubled for XTS), `mode` "xts" (16-byte
// blocks only), "cbc", "ctr" or "ecb", `ivgen` "plain", "plain64" or "essiv" (with
// `ivgen_hash`, whose digest keys the IV cipher of the same family: QEMU's refusals when
// the family has no such key length). The IV is as long as the cipher's block.
class SectorCipher {
 public:
  static absl::StatusOr<std::unique_ptr<SectorCipher>> Create(const std::string& cipher,
                                                              const std::string& mode,
                                                              const std::string& ivgen,
                                                              const std::string& ivgen_hash,
                                                              const std::vector<uint8_t>& key,
                                                              size_t unit = 512);
  virtual ~SectorCipher() = default;
  // `len` a multiple of the unit; `first_sector` is the 512-byte sector number of
  // `data`'s first byte (a multiple of unit / 512).
  virtual void Encrypt(uint64_t first_sector, uint8_t* data, size_t len) const = 0;
  virtual void Decrypt(uint64_t first_sector, uint8_t* data, size_t len) const = 0;
};

// Cryptographically random bytes (GnuTLS's generator).
std::vector<uint8_t> RandomBytes(size_t n);

}  // namespace strata::luks

#endif  // STRATA_DRIVERS_LUKS_LUKS_CRYPTO_H_
