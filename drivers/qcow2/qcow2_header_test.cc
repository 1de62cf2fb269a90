// strata qcow2: header parsing, validation messages and rewrite layout.
#include "drivers/qcow2/qcow2_header.h"

#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "drivers/qcow2/qcow2_format.h"
#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

// A v3 header as create writes it, for a 64 MiB image with 64 KiB clusters.
Qcow2Header Fresh(uint32_t version) {
  Qcow2Header h;
  h.version = version;
  h.size = 64 << 20;
  h.l1_size = 1;
  h.l1_table_offset = 0x30000;
  h.refcount_table_offset = 0x10000;
  h.refcount_table_clusters = 1;
  return h;
}

TEST(Qcow2HeaderTest, RoundTripsAndMatchesQemuLayout) {
  Qcow2Header h = Fresh(3);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> c0, SerializeHeader(h));
  ASSERT_EQ(c0.size(), 65536u);
  EXPECT_EQ(h.header_length, 112u);
  EXPECT_EQ(LoadBe32(&c0[112]), kExtFeatureTable);  // feature table right after the header
  EXPECT_EQ(LoadBe32(&c0[116]), 384u);
  EXPECT_EQ(LoadBe32(&c0[0x1f8]), 0u);  // end marker
  ASSERT_OK_AND_ASSIGN(Qcow2Header back, ParseHeader(c0, 0x40000));
  EXPECT_EQ(back.size, h.size);
  EXPECT_EQ(back.feature_table.size(), 8u);
  EXPECT_EQ(back.feature_table[5].name, "lazy refcounts");
}

TEST(Qcow2HeaderTest, UnknownExtensionSurvivesRewriteAndBackingGoesLast) {
  for (uint32_t version : {2u, 3u}) {
    Qcow2Header h = Fresh(version);
    std::string text = "This is a test header extension";
    h.other_extensions.push_back({0x12345678, std::vector<uint8_t>(text.begin(), text.end())});
    h.backing_file = "/some/backing/file/path";
    h.backing_format = "host_device";
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> c0, SerializeHeader(h));
    EXPECT_EQ(h.backing_file_offset, version == 2 ? 0x90u : 0x240u);
    EXPECT_EQ(h.backing_file_size, 0x17u);
    ASSERT_OK_AND_ASSIGN(Qcow2Header back, ParseHeader(c0, 0x40000));
    ASSERT_EQ(back.other_extensions.size(), 1u);
    EXPECT_EQ(back.other_extensions[0].magic, 0x12345678u);
    EXPECT_EQ(back.backing_format, "host_device");
    EXPECT_EQ(back.backing_file, "/some/backing/file/path");
  }
}

TEST(Qcow2HeaderTest, UnknownIncompatibleBitsAreNamedFromTheTable) {
  Qcow2Header h = Fresh(3);
  h.incompatible_features = (1ull << 63) | (1ull << 62) | (1ull << 61);
  h.has_feature_table = true;
  h.feature_table = {{0, 63, "Test feature"}, {1, 62, "compatible ignored"}};
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> c0, SerializeHeader(h));
  auto parsed = ParseHeader(c0, 0x40000);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "Unsupported qcow2 feature(s): Test feature, Unknown incompatible feature: "
            "6000000000000000");
}

TEST(Qcow2HeaderTest, RejectsBadHeadersWithQemusMessages) {
  Qcow2Header h = Fresh(3);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> good, SerializeHeader(h));
  auto expect = [&](auto mutate, const char* message, uint64_t file_length = 0x40000) {
    std::vector<uint8_t> c0 = good;
    mutate(c0);
    auto parsed = ParseHeader(c0, file_length);
    ASSERT_FALSE(parsed.ok()) << message;
    EXPECT_EQ(parsed.status().message(), message);
  };
  expect([](auto& c) { c[0] = 0; }, "Image is not in qcow2 format");
  expect([](auto& c) { StoreBe32(&c[4], 4); }, "Unsupported qcow2 version 4");
  expect([](auto& c) { StoreBe32(&c[20], 30); }, "Unsupported cluster size: 2^30");
  expect([](auto& c) { StoreBe32(&c[100], 100); }, "qcow2 header too short");
  expect([](auto& c) { StoreBe32(&c[96], 7); },
         "Reference count entry width too large; may not exceed 64 bits");
  expect([](auto& c) { StoreBe64(&c[48], 0x10001); }, "Reference count table offset invalid");
  expect([](auto& c) { StoreBe32(&c[56], 0); },
         "Image does not contain a reference count table");
  expect([](auto& c) { StoreBe32(&c[36], 0); }, "L1 table is too small");
  expect([](auto& c) { StoreBe64(&c[40], 0x1000008); }, "Active L1 table offset invalid");
  expect([](auto& c) {
    StoreBe64(&c[40], 0x7fffffffffff0000);
    StoreBe32(&c[36], 0x400000);
  }, "Active L1 table offset invalid");
  expect([](auto& c) { StoreBe32(&c[116], 0x7fffffff); }, "Header extension too large");
  expect([](auto& c) {}, "Reference count table offset invalid", 0x10000);  // truncated file
}

// QEMU opens an image whose active L1 table lies past the end of the file (it reads as
// zeroes there); only its alignment and size are checked.
TEST(Qcow2HeaderTest, AcceptsActiveL1PastTheEndOfTheFile) {
  Qcow2Header h = Fresh(3);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> c0, SerializeHeader(h));
  StoreBe64(&c0[40], uint64_t{1} << 40);
  ASSERT_OK_AND_ASSIGN(Qcow2Header parsed, ParseHeader(c0, 0x40000));
  EXPECT_EQ(parsed.l1_table_offset, uint64_t{1} << 40);
}

}  // namespace
}  // namespace strata::qcow2
