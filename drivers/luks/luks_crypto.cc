#include "drivers/luks/luks_crypto.h"

#include <gnutls/crypto.h>
#include <nettle/cbc.h>
#include <nettle/ctr.h>
#include <nettle/hmac.h>
#include <nettle/nettle-meta.h>
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
constexpr size_t kMaxUnit = 4096;
constexpr size_t kMaxBlock = 16;  // the largest cipher block (AES, Serpent, Twofish)

// nettle's description of a LUKS hash name; nullptr if strata does not offer it.
const nettle_hash* HashFor(const std::string& hash) {
  if (hash == "md5") return &nettle_md5;
  if (hash == "sha1") return &nettle_sha1;
  if (hash == "sha224") return &nettle_sha224;
  if (hash == "sha256") return &nettle_sha256;
  if (hash == "sha384") return &nettle_sha384;
  if (hash == "sha512") return &nettle_sha512;
  if (hash == "ripemd160") return &nettle_ripemd160;
  return nullptr;
}

// One hash over the concatenation of `parts` (empty for an unknown hash).
std::vector<uint8_t> Digest(const std::string& hash,
                            std::initializer_list<std::pair<const uint8_t*, size_t>> parts) {
  const nettle_hash* h = HashFor(hash);
  if (h == nullptr) return {};
  std::vector<uint8_t> ctx(h->context_size), out(h->digest_size);
  h->init(ctx.data());
  for (auto [p, n] : parts) h->update(ctx.data(), n, p);
  h->digest(ctx.data(), out.size(), out.data());
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

// HMAC over any nettle hash, in the shape nettle's generic pbkdf2() calls.
struct GenericHmac {
  explicit GenericHmac(const nettle_hash* h)
      : hash(h), outer(h->context_size), inner(h->context_size), state(h->context_size) {}
  static void Update(void* self, size_t n, const uint8_t* data) {
    auto* m = static_cast<GenericHmac*>(self);
    hmac_update(m->state.data(), m->hash, n, data);
  }
  static void Digest(void* self, size_t n, uint8_t* out) {
    auto* m = static_cast<GenericHmac*>(self);
    hmac_digest(m->outer.data(), m->inner.data(), m->state.data(), m->hash, n, out);
  }
  const nettle_hash* hash;
  std::vector<uint8_t> outer, inner, state;
};

// nettle's block cipher for a LUKS cipher name and key length; nullptr if none.
const nettle_cipher* BlockCipherFor(const std::string& name, size_t key_bytes) {
  if (name == "aes") {
    return key_bytes == 16 ? &nettle_aes128 : key_bytes == 24 ? &nettle_aes192
         : key_bytes == 32 ? &nettle_aes256 : nullptr;
  }
  if (name == "serpent") {
    return key_bytes == 16 ? &nettle_serpent128 : key_bytes == 24 ? &nettle_serpent192
         : key_bytes == 32 ? &nettle_serpent256 : nullptr;
  }
  if (name == "twofish") {
    return key_bytes == 16 ? &nettle_twofish128 : key_bytes == 24 ? &nettle_twofish192
         : key_bytes == 32 ? &nettle_twofish256 : nullptr;
  }
  if (name == "cast5") return key_bytes == 16 ? &nettle_cast128 : nullptr;
  return nullptr;
}

// One block cipher's key schedules, both directions.
struct BlockKey {
  const nettle_cipher* cipher = nullptr;
  std::vector<uint8_t> enc, dec;

  void Set(const nettle_cipher* c, const uint8_t* key) {
    cipher = c;
    enc.resize(c->context_size);
    dec.resize(c->context_size);
    c->set_encrypt_key(enc.data(), key);
    c->set_decrypt_key(dec.data(), key);
  }
  size_t block() const { return cipher->block_size; }
};

// A sector cipher on nettle's generic block-cipher interface: ECB, CBC, CTR or XTS over
// any of the block ciphers above, the IV made per sector (plain, plain64, essiv) and as
// long as the cipher's block.
class NettleSectorCipher : public SectorCipher {
 public:
  NettleSectorCipher(const std::string& mode, const std::string& ivgen, size_t unit)
      : mode_(mode), ivgen_(ivgen), unit_(unit) {}

  // The data key (both halves for XTS), the ESSIV key schedule if any.
  void Init(const nettle_cipher* data, const std::vector<uint8_t>& key,
            const nettle_cipher* essiv, const std::vector<uint8_t>& essiv_key) {
    const size_t half = key.size() / 2;
    if (mode_ == "xts") {
      data_.Set(data, key.data());
      tweak_.Set(data, key.data() + half);
    } else {
      data_.Set(data, key.data());
    }
    if (essiv != nullptr) essiv_.Set(essiv, essiv_key.data());
    // AES-128/256-XTS through GnuTLS, whose XTS uses the CPU's AES instructions for the
    // whole sector (nettle's generic XTS calls the block cipher per 16 bytes).
    if (mode_ == "xts" && (data == &nettle_aes128 || data == &nettle_aes256) &&
        essiv == nullptr) {
      gnutls_alg_ = data == &nettle_aes128 ? GNUTLS_CIPHER_AES_128_XTS : GNUTLS_CIPHER_AES_256_XTS;
      key_ = key;
    }
  }

  void Encrypt(uint64_t first, uint8_t* data, size_t len) const override {
    if (gnutls_alg_ != GNUTLS_CIPHER_UNKNOWN && GnutlsXts(true, first, data, len)) return;
    const size_t bs = data_.block();
    for (size_t pos = 0; pos < len; pos += unit_) {
      uint8_t iv[kMaxBlock];
      MakeIv(first + pos / kSector, iv);
      uint8_t* p = data + pos;
      if (mode_ == "xts") {
        uint8_t out[kMaxUnit];
        xts_encrypt_message(data_.enc.data(), tweak_.enc.data(), data_.cipher->encrypt, iv,
                            unit_, out, p);
        std::memcpy(p, out, unit_);
      } else if (mode_ == "cbc") {
        cbc_encrypt(data_.enc.data(), data_.cipher->encrypt, bs, iv, unit_, p, p);
      } else if (mode_ == "ctr") {
        ctr_crypt(data_.enc.data(), data_.cipher->encrypt, bs, iv, unit_, p, p);
      } else {  // ecb
        data_.cipher->encrypt(data_.enc.data(), unit_, p, p);
      }
    }
  }
  void Decrypt(uint64_t first, uint8_t* data, size_t len) const override {
    if (gnutls_alg_ != GNUTLS_CIPHER_UNKNOWN && GnutlsXts(false, first, data, len)) return;
    const size_t bs = data_.block();
    for (size_t pos = 0; pos < len; pos += unit_) {
      uint8_t iv[kMaxBlock];
      MakeIv(first + pos / kSector, iv);
      uint8_t* p = data + pos;
      uint8_t out[kMaxUnit];
      if (mode_ == "xts") {
        xts_decrypt_message(data_.dec.data(), tweak_.enc.data(), data_.cipher->decrypt,
                            tweak_.cipher->encrypt, iv, unit_, out, p);
        std::memcpy(p, out, unit_);
      } else if (mode_ == "cbc") {
        cbc_decrypt(data_.dec.data(), data_.cipher->decrypt, bs, iv, unit_, out, p);
        std::memcpy(p, out, unit_);
      } else if (mode_ == "ctr") {
        ctr_crypt(data_.enc.data(), data_.cipher->encrypt, bs, iv, unit_, p, p);
      } else {  // ecb
        data_.cipher->decrypt(data_.dec.data(), unit_, p, p);
      }
    }
  }

 private:
  // The sector number, little-endian (plain: its low 32 bits), zero padded to the block;
  // essiv encrypts that with the hashed key's cipher.
  void MakeIv(uint64_t sector, uint8_t* iv) const {
    const size_t bs = data_.block();
    std::memset(iv, 0, bs);
    const uint64_t n = ivgen_ == "plain" ? (sector & 0xffffffffu) : sector;
    for (size_t i = 0; i < std::min<size_t>(8, bs); ++i) iv[i] = static_cast<uint8_t>(n >> (8 * i));
    if (essiv_.cipher != nullptr) essiv_.cipher->encrypt(essiv_.enc.data(), bs, iv, iv);
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
    for (size_t pos = 0; ok && pos < len; pos += unit_) {
      MakeIv(first + pos / kSector, iv);
      gnutls_cipher_set_iv(h, iv, sizeof(iv));
      ok = (encrypt ? gnutls_cipher_encrypt2(h, data + pos, unit_, data + pos, unit_)
                    : gnutls_cipher_decrypt2(h, data + pos, unit_, data + pos, unit_)) >= 0;
    }
    gnutls_cipher_deinit(h);
    return ok;
  }

  const std::string mode_, ivgen_;
  const size_t unit_;  // bytes encrypted as one unit under one IV
  gnutls_cipher_algorithm_t gnutls_alg_ = GNUTLS_CIPHER_UNKNOWN;
  std::vector<uint8_t> key_;
  BlockKey data_, tweak_, essiv_;
};

// The name QEMU gives a cipher in its messages ("aes-256", "cast5-128").
std::string QemuCipherName(const std::string& name, size_t key_bytes) {
  return absl::StrCat(name, "-", key_bytes * 8);
}

}  // namespace

size_t HashLength(const std::string& hash) {
  const nettle_hash* h = HashFor(hash);
  return h == nullptr ? 0 : h->digest_size;
}

absl::StatusOr<std::vector<uint8_t>> Pbkdf2(const std::string& hash, const std::string& password,
                                            const uint8_t* salt, size_t salt_len,
                                            uint32_t iterations, size_t out_len) {
  std::vector<uint8_t> out(out_len);
  const auto* pw = reinterpret_cast<const uint8_t*>(password.data());
  // nettle's ready-made instances for the common hashes; its generic HMAC for the rest.
  if (hash == "sha1") {
    pbkdf2_hmac_sha1(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else if (hash == "sha256") {
    pbkdf2_hmac_sha256(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else if (hash == "sha512") {
    pbkdf2_hmac_sha512(password.size(), pw, iterations, salt_len, salt, out_len, out.data());
  } else if (const nettle_hash* h = HashFor(hash)) {
    GenericHmac mac(h);
    hmac_set_key(mac.outer.data(), mac.inner.data(), mac.state.data(), h, password.size(), pw);
    pbkdf2(&mac, &GenericHmac::Update, &GenericHmac::Digest, h->digest_size, iterations,
           salt_len, salt, out_len, out.data());
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
    const std::string& ivgen_hash, const std::vector<uint8_t>& key, size_t unit) {
  if (unit < kSector || unit > kMaxUnit || (unit & (unit - 1)) != 0) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported encryption sector size ", unit));
  }
  if (mode != "xts" && mode != "cbc" && mode != "ctr" && mode != "ecb") {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported cipher mode ", mode));
  }
  if (ivgen != "plain" && ivgen != "plain64" && ivgen != "essiv") {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported IV generator ", ivgen));
  }
  const size_t data_key = mode == "xts" ? key.size() / 2 : key.size();
  const nettle_cipher* data = BlockCipherFor(cipher, data_key);
  if (data == nullptr || (mode == "xts" && key.size() % 2 != 0)) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported cipher algorithm ", cipher, " with ",
                                            key.size(), " byte key"));
  }
  // XTS needs a 16-byte block (QEMU's words for CAST5).
  if (mode == "xts" && data->block_size != 16) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported cipher mode ", mode));
  }
  // ESSIV: the same cipher family keyed with the digest of the key, so the digest must
  // be one of the family's key lengths (QEMU's rule and messages).
  const nettle_cipher* essiv = nullptr;
  std::vector<uint8_t> essiv_key;
  if (ivgen == "essiv") {
    essiv_key = Digest(ivgen_hash, {{key.data(), key.size()}});
    if (essiv_key.empty()) {
      return ErrnoError(ENOTSUP, absl::StrCat("Unsupported IV hash ", ivgen_hash));
    }
    essiv = BlockCipherFor(cipher, essiv_key.size());
    if (essiv == nullptr) {
      if (cipher == "aes" || cipher == "serpent" || cipher == "twofish") {
        const std::string family =
            cipher == "aes" ? "AES" : cipher == "serpent" ? "Serpent" : "Twofish";
        return ErrnoError(EINVAL, absl::StrCat("No ", family, " cipher with key size ",
                                               essiv_key.size(), " available"));
      }
      return ErrnoError(EINVAL, absl::StrCat("Cipher ", QemuCipherName(cipher, data_key),
                                             " not supported with essiv"));
    }
  }
  auto c = std::make_unique<NettleSectorCipher>(mode, ivgen, unit);
  c->Init(data, key, essiv, essiv_key);
  return std::unique_ptr<SectorCipher>(std::move(c));
}

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  (void)gnutls_rnd(GNUTLS_RND_KEY, out.data(), out.size());
  return out;
}

}  // namespace strata::luks
