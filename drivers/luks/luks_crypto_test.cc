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
    const char *mode, *ivgen;
    size_t key;
  } kinds[] = {{"xts", "plain64", 64}, {"xts", "plain64", 32}, {"cbc", "essiv", 32},
               {"cbc", "plain", 16}, {"xts", "plain", 48}};
  for (const Kind& k : kinds) {
    auto c = SectorCipher::Create("aes", k.mode, k.ivgen, "sha256", RandomBytes(k.key));
    ASSERT_TRUE(c.ok()) << k.mode << " " << k.key;
    std::vector<uint8_t> plain(1024, 0x5a), data = plain;
    (*c)->Encrypt(7, data.data(), data.size());
    EXPECT_NE(data, plain);
    // Same plaintext, different sectors: different ciphertext.
    EXPECT_NE(std::vector<uint8_t>(data.begin(), data.begin() + 512),
              std::vector<uint8_t>(data.begin() + 512, data.end()));
    (*c)->Decrypt(7, data.data(), data.size());
    EXPECT_EQ(data, plain);
  }
  EXPECT_FALSE(SectorCipher::Create("serpent", "xts", "plain64", "", RandomBytes(64)).ok());
  EXPECT_FALSE(SectorCipher::Create("aes", "xts", "plain64", "", RandomBytes(40)).ok());
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
