#include "drivers/luks/luks_crypto.h"

#include <gtest/gtest.h>

#include "drivers/luks/luks_header.h"

namespace strata::luks {
namespace {

TEST(LuksCryptoTest, Pbkdf2Sha256MatchesRfc7914) {
  const std::string salt = "salt";
  auto out = Pbkdf2("sha256", "passwd", reinterpret_cast<const uint8_t*>(salt.data()),
                    salt.size(), 1, 64);
  ASSERT_TRUE(out.ok());
  const uint8_t expected[8] = {0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f};
  EXPECT_EQ(std::vector<uint8_t>(out->begin(), out->begin() + 8),
            std::vector<uint8_t>(expected, expected + 8));
  EXPECT_FALSE(Pbkdf2("md4", "x", nullptr, 0, 1, 16).ok());
}

TEST(LuksCryptoTest, AfSplitThenMergeGivesTheKeyBack) {
  const std::vector<uint8_t> key = RandomBytes(64);
  for (const char* hash : {"sha1", "sha256", "sha512"}) {
    std::vector<uint8_t> split = AfSplit(hash, key, 4000, RandomBytes(64 * 3999));
    EXPECT_EQ(AfMerge(hash, split.data(), key.size(), 4000), key) << hash;
    split[100] ^= 1;  // one flipped bit anywhere loses the key
    EXPECT_NE(AfMerge(hash, split.data(), key.size(), 4000), key) << hash;
  }
}

TEST(LuksCryptoTest, SectorCiphersRoundTripAndDependOnTheSector) {
  struct Kind {
    const char *cipher, *mode, *ivgen, *ivhash;
    size_t key;
  } kinds[] = {{"aes", "xts", "plain64", "", 64},      {"aes", "xts", "plain64", "", 32},
               {"aes", "cbc", "essiv", "sha256", 32},  {"aes", "cbc", "plain", "", 16},
               {"aes", "xts", "plain", "", 48},        {"aes", "ctr", "plain64", "", 16},
               {"serpent", "xts", "plain64", "", 64},  {"serpent", "cbc", "essiv", "md5", 24},
               {"twofish", "xts", "essiv", "sha256", 48}, {"twofish", "ctr", "plain", "", 32},
               {"cast5", "cbc", "plain64", "", 16},    {"cast5", "cbc", "essiv", "md5", 16},
               {"cast5", "ctr", "plain64", "", 16}};
  for (const Kind& k : kinds) {
    auto c = SectorCipher::Create(k.cipher, k.mode, k.ivgen, k.ivhash, RandomBytes(k.key));
    ASSERT_TRUE(c.ok()) << k.cipher << " " << k.mode << " " << k.key << ": " << c.status();
    std::vector<uint8_t> plain(1024, 0x5a), data = plain;
    (*c)->Encrypt(7, data.data(), data.size());
    EXPECT_NE(data, plain);
    // Same plaintext, different sectors: different ciphertext.
    EXPECT_NE(std::vector<uint8_t>(data.begin(), data.begin() + 512),
              std::vector<uint8_t>(data.begin() + 512, data.end()))
        << k.cipher << " " << k.mode;
    (*c)->Decrypt(7, data.data(), data.size());
    EXPECT_EQ(data, plain) << k.cipher << " " << k.mode;
  }
  // ECB has no IV: equal sectors encrypt alike, but still round-trip.
  for (const char* cipher : {"aes", "serpent", "twofish", "cast5"}) {
    auto c = SectorCipher::Create(cipher, "ecb", "plain64", "", RandomBytes(16));
    ASSERT_TRUE(c.ok()) << cipher;
    std::vector<uint8_t> plain(1024, 0x11), data = plain;
    (*c)->Encrypt(3, data.data(), data.size());
    EXPECT_NE(data, plain);
    (*c)->Decrypt(3, data.data(), data.size());
    EXPECT_EQ(data, plain);
  }
  EXPECT_FALSE(SectorCipher::Create("blowfish", "cbc", "plain64", "", RandomBytes(16)).ok());
  EXPECT_FALSE(SectorCipher::Create("aes", "xts", "plain64", "", RandomBytes(40)).ok());
  EXPECT_FALSE(SectorCipher::Create("aes", "gcm", "plain64", "", RandomBytes(16)).ok());
  // QEMU's refusals: XTS needs 16-byte blocks; ESSIV keys of a length the family lacks.
  EXPECT_EQ(SectorCipher::Create("cast5", "xts", "plain64", "", RandomBytes(32)).status().message(),
            "Unsupported cipher mode xts");
  EXPECT_EQ(SectorCipher::Create("aes", "cbc", "essiv", "sha1", RandomBytes(16)).status().message(),
            "No AES cipher with key size 20 available");
  EXPECT_EQ(
      SectorCipher::Create("cast5", "cbc", "essiv", "sha256", RandomBytes(16)).status().message(),
      "Cipher cast5-128 not supported with essiv");
}

TEST(LuksCryptoTest, Pbkdf2OverEveryHash) {
  // RFC 6070's first vector (PBKDF2-HMAC-SHA1), then every hash gives a key of its own
  // that depends on the password.
  const std::string salt = "salt";
  auto sha1 = Pbkdf2("sha1", "password", reinterpret_cast<const uint8_t*>(salt.data()),
                     salt.size(), 1, 20);
  ASSERT_TRUE(sha1.ok());
  const uint8_t want[20] = {0x0c, 0x60, 0xc8, 0x0f, 0x96, 0x1f, 0x0e, 0x71, 0xf3, 0xa9,
                            0xb5, 0x24, 0xaf, 0x60, 0x12, 0x06, 0x2f, 0xe0, 0x37, 0xa6};
  EXPECT_EQ(*sha1, std::vector<uint8_t>(want, want + 20));
  std::vector<std::vector<uint8_t>> keys;
  for (const char* hash : {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160"}) {
    EXPECT_GT(HashLength(hash), 0u) << hash;
    auto a = Pbkdf2(hash, "pw", reinterpret_cast<const uint8_t*>(salt.data()), salt.size(), 10, 32);
    auto b = Pbkdf2(hash, "pX", reinterpret_cast<const uint8_t*>(salt.data()), salt.size(), 10, 32);
    ASSERT_TRUE(a.ok() && b.ok()) << hash;
    EXPECT_NE(*a, *b) << hash;
    for (const auto& k : keys) EXPECT_NE(k, *a) << hash;
    keys.push_back(*a);
  }
  EXPECT_EQ(HashLength("sha3"), 0u);
  EXPECT_FALSE(Pbkdf2("sha3", "pw", nullptr, 0, 1, 16).ok());
}

TEST(LuksHeaderTest, RoundTripsAndRefusesOtherVolumes) {
  LuksHeader h;
  h.cipher_name = "aes";
  h.cipher_mode = "cbc-essiv:sha256";
  h.hash_spec = "sha1";
  h.payload_offset = 4040;
  h.key_bytes = 32;
  h.uuid = "ee32ddf5-1600-45e0-93c7-0d02ce6b98d2";
  h.slots[3].active = kSlotActive;
  h.slots[3].iterations = 1234;
  std::vector<uint8_t> bytes = SerializeHeader(h);
  auto back = ParseHeader(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->mode(), "cbc");
  EXPECT_EQ(back->ivgen(), "essiv");
  EXPECT_EQ(back->ivgen_hash(), "sha256");
  EXPECT_EQ(back->uuid, h.uuid);
  EXPECT_EQ(back->slots[3].iterations, 1234u);
  bytes[0] = 'X';
  EXPECT_FALSE(ParseHeader(bytes).ok());
}

}  // namespace
}  // namespace strata::luks
