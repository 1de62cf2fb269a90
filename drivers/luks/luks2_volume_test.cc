// strata luks: LUKS2 volumes made by cryptsetup unlock through OpenLuks2Volume; a wrong
// passphrase, damaged or truncated headers and absurd header sizes are refused with an
// error (never a crash), and nothing is written to the volume.
#include "drivers/luks/luks2_volume.h"

#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata::luks {
namespace {

std::string TempDir() { return getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp"; }

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A 4 MiB LUKS2 volume made by cryptsetup (sector size `sector`), as bytes.
std::vector<uint8_t> MakeVolume(int sector) {
  const std::string path = TempDir() + "/v" + std::to_string(sector) + ".luks2";
  const std::string cmd =
      "rm -f " + path + " && truncate -s 4M " + path +
      " && printf pw | cryptsetup luksFormat --type luks2 -q --pbkdf pbkdf2 "
      "--pbkdf-force-iterations 1000 --luks2-keyslots-size 1m --luks2-metadata-size 16k "
      "--sector-size " + std::to_string(sector) + " --key-file=- " + path + " >/dev/null 2>&1";
  if (Shell(cmd) != 0) return {};
  return ReadFile(path);
}

// The data segment's offset as `cryptsetup luksDump` prints it for MakeVolume(sector).
uint64_t DumpedDataOffset(int sector) {
  const std::string path = TempDir() + "/v" + std::to_string(sector) + ".luks2";
  const std::string out = TempDir() + "/dump.txt";
  if (Shell("cryptsetup luksDump " + path + " | sed -n 's/.*offset: *\\([0-9]*\\) \\[bytes\\].*/\\1/p' > " +
            out) != 0) {
    return 0;
  }
  std::ifstream in(out);
  uint64_t offset = 0;
  in >> offset;
  return offset;
}

// Opens `bytes` as a volume (reads past the end fail, as a short file's would).
absl::StatusOr<Luks2Volume> Open(const std::vector<uint8_t>& bytes,
                                 const std::optional<std::string>& passphrase) {
  auto read = [&](uint64_t offset, uint64_t len, uint8_t* out) -> absl::Status {
    if (offset > bytes.size() || len > bytes.size() - offset) {
      return absl::OutOfRangeError("read past the end");
    }
    std::memcpy(out, bytes.data() + offset, len);
    return absl::OkStatus();
  };
  return OpenLuks2Volume(read, bytes.size(), passphrase);
}

class Luks2VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Shell("command -v cryptsetup >/dev/null") != 0) GTEST_SKIP() << "no cryptsetup";
  }
};

TEST_F(Luks2VolumeTest, UnlocksWithThePassphraseAndKnowsTheSegment) {
  for (int sector : {512, 4096}) {
    std::vector<uint8_t> bytes = MakeVolume(sector);
    ASSERT_FALSE(bytes.empty());
    EXPECT_TRUE(IsLuks2Header(bytes));
    const std::vector<uint8_t> before = bytes;
    absl::StatusOr<Luks2Volume> v = Open(bytes, std::string("pw"));
    ASSERT_OK(v.status());
    EXPECT_EQ(v->cipher, "aes");
    EXPECT_EQ(v->cipher_mode, "xts-plain64");
    EXPECT_EQ(v->sector_size, static_cast<uint32_t>(sector));
    EXPECT_EQ(v->volume_key.size(), 64u);
    EXPECT_EQ(v->data_offset, DumpedDataOffset(sector)) << "not where cryptsetup says";
    EXPECT_EQ(bytes, before);

    absl::StatusOr<Luks2Volume> meta = Open(bytes, std::nullopt);
    ASSERT_OK(meta.status());
    EXPECT_TRUE(meta->volume_key.empty());
    EXPECT_EQ(meta->uuid, v->uuid);

    absl::StatusOr<Luks2Volume> wrong = Open(bytes, std::string("nope"));
    EXPECT_EQ(wrong.status().message(), "Invalid password, cannot unlock any keyslot");
  }
}

TEST_F(Luks2VolumeTest, RefusesDamagedHeadersWithoutCrashing) {
  const std::vector<uint8_t> good = MakeVolume(512);
  ASSERT_FALSE(good.empty());
  struct Damage {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> apply;
  };
  const std::vector<Damage> damages = {
      {"header size 2^62", [](std::vector<uint8_t>& b) { b[8] = 0x40; }},
      {"header size 0", [](std::vector<uint8_t>& b) { std::memset(&b[8], 0, 8); }},
      {"both JSON areas overwritten",
       [](std::vector<uint8_t>& b) {
         std::memset(&b[4096], '{', 12288);
         std::memset(&b[16384 + 4096], '{', 12288);
       }},
      {"both checksums flipped",
       [](std::vector<uint8_t>& b) {
         b[0x1C0] ^= 1;
         b[16384 + 0x1C0] ^= 1;
       }},
      {"truncated to the first header copy", [](std::vector<uint8_t>& b) { b.resize(20000); }},
      {"truncated before the key slots", [](std::vector<uint8_t>& b) { b.resize(40000); }},
  };
  for (const Damage& d : damages) {
    std::vector<uint8_t> bytes = good;
    d.apply(bytes);
    absl::StatusOr<Luks2Volume> v = Open(bytes, std::string("pw"));
    EXPECT_FALSE(v.ok()) << d.what << " was accepted";
  }
  // One intact copy is enough (LUKS2 keeps two).
  std::vector<uint8_t> one_copy = good;
  std::memset(&one_copy[16384 + 4096], '{', 12288);
  EXPECT_OK(Open(one_copy, std::string("pw")).status());
}

}  // namespace
}  // namespace strata::luks
