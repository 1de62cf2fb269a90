// strata: secrets (block/secrets.h): QEMU's loading rules and words.
#include "block/secrets.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

std::string Message(const absl::StatusOr<std::string>& s) {
  return s.ok() ? "ok: " + *s : std::string(s.status().message());
}

TEST(DecodeBase64, StandardAndGlibLeniency) {
  EXPECT_EQ(Message(DecodeBase64("YQ==")), "ok: a");
  EXPECT_EQ(Message(DecodeBase64("aGVsbG8=")), "ok: hello");
  EXPECT_EQ(Message(DecodeBase64("YQ")), "ok: ");  // a partial group is dropped
  EXPECT_EQ(Message(DecodeBase64("a b")), "Base64 data contains invalid characters");
  EXPECT_EQ(Message(DecodeBase64("@@")), "Base64 data contains invalid characters");
}

TEST(LoadSecret, DataFileAndFormat) {
  SecretDefinition d;
  d.id = "s";
  EXPECT_EQ(Message(LoadSecret(d)), "Either 'file' or 'data' must be provided");
  d.data = "x";
  d.file = "/nonexistent";
  EXPECT_EQ(Message(LoadSecret(d)), "'file' and 'data' are mutually exclusive");
  d.file.reset();
  EXPECT_EQ(Message(LoadSecret(d)), "ok: x");
  d.data = "aGVsbG8=";
  d.format = "base64";
  EXPECT_EQ(Message(LoadSecret(d)), "ok: hello");
  d.data.reset();
  d.file = "/nonexistent/secret";
  EXPECT_EQ(Message(LoadSecret(d)),
            "Unable to read /nonexistent/secret: Failed to open file \xe2\x80\x9c"
            "/nonexistent/secret\xe2\x80\x9d: No such file or directory");
}

TEST(LoadSecret, DecryptsWithAKeySecret) {
  RegisterSecret("master", std::string(32, '\0'));
  RegisterSecret("short", "abc");
  SecretDefinition d;
  d.id = "s";
  // openssl enc -aes-256-cbc, key of 32 zero bytes, IV of 16 0x11 bytes, "hello secret".
  d.data = "poo2gOF5J6PlIctmt1BLAw==";
  d.format = "base64";
  d.keyid = "missing";
  EXPECT_EQ(Message(LoadSecret(d)), "No secret with id 'missing'");
  d.keyid = "short";
  EXPECT_EQ(Message(LoadSecret(d)), "Key should be 32 bytes in length");
  d.keyid = "master";
  EXPECT_EQ(Message(LoadSecret(d)), "IV is required to decrypt secret");
  d.iv = "AAAA";
  EXPECT_EQ(Message(LoadSecret(d)), "IV should be 16 bytes in length not 3");
  d.iv = "EREREREREREREREREREREQ==";
  EXPECT_EQ(Message(LoadSecret(d)), "ok: hello secret");
  d.format = "raw";  // the base64 text itself is not a whole number of blocks
  EXPECT_EQ(Message(LoadSecret(d)), "Length 24 must be a multiple of block size 16");
  d.data = std::string(16, '\0');
  EXPECT_EQ(Message(LoadSecret(d)).rfind("Incorrect number of padding bytes (", 0), 0u);
  d.keyid = "s";
  EXPECT_EQ(Message(LoadSecret(d)), "Secret with id 's' has no data");
}

TEST(Secrets, LookupByIdAndAsBase64) {
  RegisterSecret("k", "\x01\x02\x03");
  EXPECT_EQ(Message(LookupSecret("k")), "ok: \x01\x02\x03");
  EXPECT_EQ(Message(LookupSecretAsBase64("k")), "ok: AQID");
  EXPECT_EQ(Message(LookupSecret("nope")), "No secret with id 'nope'");
}

}  // namespace
}  // namespace strata
