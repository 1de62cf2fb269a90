#include "drivers/luks/luks_crypto.h"

#include <gnutls/crypto.h>
#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <nettle/xts.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "block/status.h"

namespace strata::luks {
namespace {

constexpr size_t kSector = 512;

// One hash over the concatenation of `parts`.
std::vector<uint8_t> Digest(const std::string& hash, std::initializer_list<std::pair<const uint8_t*, size_t>> parts) {
  std::vector<uint8_t> out(HashLength(hash));
  if (hash == "sha1") {
    sha1_ctx c;
    sha1_init(&c);
    for (auto [p, n] : parts) sha1_update(&c, n, p);
    sha1_digest(&c, out.size(), out.data());
  } else if (hash == "sha256") {
    sha256_ctx c;
    sha256_init(&c);
    for (auto [p, n] : parts) sha256_update(&c, n, p);
    sha256_digest(&c, out.size(), out.data());
  } else if (hash == "sha512") {
    sha512_ctx c;
    sha512_init(&c);
    for (auto [p, n] : parts) sha512_update(&c, n, p);
    sha512_digest(&c, out.size(), out.data());
  }
  return out;
}

// LUKS's diffusion: each digest-sized piece replaced by H(be32(index) || piece).
void Diffuse(const std::string& hash, std::vector<uint8_t>& block) {
  const size_t dl = HashLength(hash);
  for (size_t i = 0, pos = 0; pos < block.size(); ++i, pos += dl) {
    const size_t n = std::min(dl, block.size() - pos);
    const uint8_t index[4] = {static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16),
                              static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    std::vector<uint8_t> d = Digest(hash, {{index, 4}, {block.data() + pos, n}});
    std::memcpy(block.data() + pos, d.data(), n);
  }
}

// The AES key schedule for one key length, both directions.
struct AesKey {
  size_t bytes = 0;
  aes128_ctx e128, d128;
  aes192_ctx e192, d192;
  aes256_ctx e256, d256;

  bool Set(const uint8_t* key, size_t n) {
    bytes = n;
    switch (n) {
      case 16: aes128_set_encrypt_key(&e128, key); aes128_set_decrypt_key(&d128, key); return true;
      case 24: aes192_set_encrypt_key(&e192, key); aes192_set_decrypt_key(&d192, key); return true;
      case 32: aes256_set_encrypt_key(&e256, key); aes256_set_decrypt_key(&d256, key); return true;
    }
    return false;
  }
  const void* enc() const { return bytes == 16 ? (const void*)&e128 : bytes == 24 ? (const void*)&e192 : (const void*)&e256; }
  const void* dec() const { return bytes == 16 ? (const void*)&d128 : bytes == 24 ? (const void*)&d192 : (const void*)&d256; }
  nettle_cipher_func* encf() const {
    return bytes == 16 ? (nettle_cipher_func*)aes128_encrypt
         : bytes == 24 ? (nettle_cipher_func*)aes192_encrypt : (nettle_cipher_func*)aes256_encrypt;
  }
  nettle_cipher_func* decf() const {
    return bytes == 16 ? (nettle_cipher_func*)aes128_decrypt
         : bytes == 24 ? (nettle_cipher_func*)aes192_decrypt : (nettle_cipher_func*)aes256_decrypt;
  }
};

class AesSectorCipher : public SectorCipher {
 public:
  bool Init(const std::string& mode, const std::string& ivgen, const std::string& ivgen_hash,
            const std::vector<uint8_t>& key) {
    xts_ = mode == "xts";
    ivgen_ = ivgen;
    // AES-128/256-XTS through GnuTLS, whose XTS uses the CPU's AES instructions for the
    // whole sector (nettle's generic XTS calls the block cipher per 16 bytes).
    if (xts_ && (key.size() == 32 || key.size() == 64) && ivgen != "essiv") {
      gnutls_alg_ = key.size() == 32 ? GNUTLS_CIPHER_AES_128_XTS : GNUTLS_CIPHER_AES_256_XTS;
      key_ = key;
    }
    if (xts_) {
      const size_t half = key.size() / 2;
      if (key.size() % 2 != 0 || !data_.Set(key.data(), half) || !tweak_.Set(key.data() + half, half)) {
        return false;
      }
    } else if (!data_.Set(key.data(), key.size())) {
      return false;
    }
    if (ivgen == "essiv") {
      std::vector<uint8_t> salt = Digest(ivgen_hash, {{key.data(), key.size()}});
      if (salt.empty() || !essiv_.Set(salt.data(), salt.size())) return false;
    }
    return true;
  }

  void Encrypt(uint64_t first, uint8_t* data, size_t len) const override {
    if (gnutls_alg_ != GNUTLS_CIPHER_UNKNOWN && GnutlsXts(true, first, data, len)) return;
    for (size_t pos = 0; pos < len; pos += kSector) {
      uint8_t iv[16];
      MakeIv(first + pos / kSector, iv);
      if (xts_) {
        uint8_t out[kSector];
        xts_encrypt_message(data_.enc(), tweak_.enc(), data_.encf(), iv, kSector, out,
                            data + pos);
        std::memcpy(data + pos, out, kSector);
      } else {
        cbc_encrypt(data_.enc(), data_.encf(), 16, iv, kSector, data + pos, data + pos);
      }
    }
  }
  void Decrypt(uint64_t first, uint8_t* data, size_t len) const override {
    if (gnutls_alg_ != GNUTLS_CIPHER_UNKNOWN && GnutlsXts(false, first, data, len)) return;
    for (size_t pos = 0; pos < len; pos += kSector) {
      uint8_t iv[16];
      MakeIv(first + pos / kSector, iv);
      if (xts_) {
        uint8_t out[kSector];
        xts_decrypt_message(data_.dec(), tweak_.enc(), data_.decf(), tweak_.encf(), iv, kSector,
                            out, data + pos);
        std::memcpy(data + pos, out, kSector);
      } else {
        uint8_t out[kSector];
        cbc_decrypt(data_.dec(), data_.decf(), 16, iv, kSector, out, data + pos);
        std::memcpy(data + pos, out, kSector);
      }
    }
  }

 private:
  // The sector number, little-endian (plain: its low 32 bits), zero padded; essiv
  // encrypts that with the hashed key.
  void MakeIv(uint64_t sector, uint8_t iv[16]) const {
    std::memset(iv, 0, 16);
    const uint64_t n = ivgen_ == "plain" ? (sector & 0xffffffffu) : sector;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(n >> (8 * i));
    if (ivgen_ == "essiv") essiv_.encf()(essiv_.enc(), 16, iv, iv);
  }

  // One GnuTLS handle per call (a handle carries its IV, so it cannot be shared between
  // threads). False if GnuTLS refused (then nettle does the work).
  bool GnutlsXts(bool encrypt, uint64_t first, uint8_t* data, size_t len) const {
    gnutls_cipher_hd_t h;
    gnutls_datum_t key = {const_cast<uint8_t*>(key_.data()), static_cast<unsigned>(key_.size())};
    uint8_t iv[16];
    MakeIv(first, iv);
    gnutls_datum_t ivd = {iv, sizeof(iv)};
    if (gnutls_cipher_init(&h, gnutls_alg_, &key, &ivd) < 0) return false;
    bool ok = true;
    for (size_t pos = 0; ok && pos < len; pos += kSector) {
      MakeIv(first + pos / kSector, iv);
      gnutls_cipher_set_iv(h, iv, sizeof(iv));
      ok = (encrypt ? gnutls_cipher_encrypt2(h, data + pos, kSector, data + pos, kSector)
                    : gnutls_cipher_decrypt2(h, data + pos, kSector, data + pos, kSector)) >= 0;
    }
    gnutls_cipher_deinit(h);
    return ok;
  }

  gnutls_cipher_algorithm_t gnutls_alg_ = GNUTLS_CIPHER_UNKNOWN;
  std::vector<uint8_t> key_;
  bool xts_ = false;
  std::string ivgen_;
  AesKey data_, tweak_, essiv_;
};

}  // namespace

size_t HashLength(const std::string& hash) {
  if (hash == "sha1") return SHA1_DIGEST_SIZE;
  if (hash == "sha256") return SHA256_DIGEST_SIZE;
  if (hash == "sha512") return SHA512_DIGEST_SIZE;
  return 0;
}

absl::StatusOr<std::vector<uint8_t>> Pbkdf2(const std::string& hash, const std::string& password,
                                            const uint8_t* salt, size_t salt_len,
                                            uint32_t iterations, size_t out_len) {
  std::vector<uint8_t> out(out_len);
  const auto* pw = reinterpret_cast<const uint8_t*>(password.data());
  if (hash == "sha1") {
    pbkdf2_hmac_sha1(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else if (hash == "sha256") {
    pbkdf2_hmac_sha256(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else if (hash == "sha512") {
    pbkdf2_hmac_sha512(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else {
    return ErrnoError(ENOTSUP, absl::StrCat("PBKDF does not support hash algorithm ", hash));
  }
  return out;
}

uint32_t IterationsForTime(const std::string& hash, size_t key_len, uint64_t ms) {
  // Time a fixed count, scale to `ms`.
  constexpr uint32_t kProbe = 1 << 14;
  const uint8_t salt[32] = {};
  const auto start = std::chrono::steady_clock::now();
  (void)Pbkdf2(hash, "probe", salt, sizeof(salt), kProbe, key_len);
  const double took =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double iters = took > 0 ? kProbe * (static_cast<double>(ms) / took) : 1e6;
  return static_cast<uint32_t>(std::max(1000.0, std::min(iters, 4e9)));
}

std::vector<uint8_t> AfSplit(const std::string& hash, const std::vector<uint8_t>& key,
                             uint32_t stripes, const std::vector<uint8_t>& random_stripes) {
  const size_t n = key.size();
  std::vector<uint8_t> out(n * stripes);
  std::vector<uint8_t> d(n, 0);
  for (uint32_t i = 0; i + 1 < stripes; ++i) {
    std::memcpy(&out[i * n], &random_stripes[i * n], n);
    for (size_t j = 0; j < n; ++j) d[j] ^= out[i * n + j];
    Diffuse(hash, d);
  }
  for (size_t j = 0; j < n; ++j) out[(stripes - 1) * n + j] = d[j] ^ key[j];
  return out;
}

std::vector<uint8_t> AfMerge(const std::string& hash, const uint8_t* material, size_t n,
                             uint32_t stripes) {
  std::vector<uint8_t> d(n, 0);
  for (uint32_t i = 0; i + 1 < stripes; ++i) {
    for (size_t j = 0; j < n; ++j) d[j] ^= material[i * n + j];
    Diffuse(hash, d);
  }
  for (size_t j = 0; j < n; ++j) d[j] ^= material[(stripes - 1) * n + j];
  return d;
}

absl::StatusOr<std::unique_ptr<SectorCipher>> SectorCipher::Create(
    const std::string& cipher, const std::string& mode, const std::string& ivgen,
    const std::string& ivgen_hash, const std::vector<uint8_t>& key) {
  if (cipher != "aes") {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported cipher algorithm ", cipher));
  }
  if (mode != "xts" && mode != "cbc") {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported cipher mode ", mode));
  }
  if (ivgen != "plain" && ivgen != "plain64" && ivgen != "essiv") {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported IV generator ", ivgen));
  }
  auto c = std::make_unique<AesSectorCipher>();
  if (!c->Init(mode, ivgen, ivgen_hash, key)) {
    return ErrnoError(EINVAL, "Unsupported cipher key size or IV hash");
  }
  return std::unique_ptr<SectorCipher>(std::move(c));
}

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  (void)gnutls_rnd(GNUTLS_RND_KEY, out.data(), out.size());
  return out;
}

}  // namespace strata::luks
