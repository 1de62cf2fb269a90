// strata: the file driver's QEMU-compatible locks, checked against a second opener in the
// same process (a different open file description behaves like another process).
#include "drivers/file/file_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "block/graph_builder.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

std::string TempFile() {
  std::string path = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
                     "/file_driver_test_" + std::to_string(getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(ftruncate(fd, 65536), 0);
  close(fd);
  return path;
}

absl::StatusOr<std::unique_ptr<BlockDriverState>> OpenFile(const std::string& path,
                                                           PermissionSet perms,
                                                           bool read_only) {
  proto::BlockdevOptions o;
  o.set_driver("file");
  o.mutable_file()->set_filename(path);
  OpenFlags flags;
  flags.read_only = read_only;
  return OpenGraph(o, flags, perms);
}

TEST(FileLockTest, SecondWriterOfAFormatImageIsRefused) {
  std::string path = TempFile();
  ASSERT_OK_AND_ASSIGN(auto writer, OpenFile(path, FormatChildPermissions(false), false));
  auto second = OpenFile(path, FormatChildPermissions(false), false);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "Failed to get \"write\" lock\nIs another process using the image [" + path + "]?");
  auto reader = OpenFile(path, FormatChildPermissions(true), true);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().message(), "Failed to get shared \"write\" lock\n"
                                       "Is another process using the image [" + path + "]?");
}

TEST(FileLockTest, LocksGoAwayWithTheNodeAndRawSharesWrites) {
  std::string path = TempFile();
  {
    ASSERT_OK_AND_ASSIGN(auto writer, OpenFile(path, FormatChildPermissions(false), false));
  }
  ASSERT_OK_AND_ASSIGN(auto w1, OpenFile(path, PassThroughPermissions(false), false));
  ASSERT_OK_AND_ASSIGN(auto w2, OpenFile(path, PassThroughPermissions(false), false));
}

TEST(FileLockTest, ForceShareOpensNextToAWriter) {
  std::string path = TempFile();
  ASSERT_OK_AND_ASSIGN(auto writer, OpenFile(path, FormatChildPermissions(false), false));
  proto::BlockdevOptions o;
  o.set_driver("file");
  o.mutable_file()->set_filename(path);
  OpenFlags flags;
  flags.read_only = true;
  flags.force_share = true;
  EXPECT_OK(OpenGraph(o, flags, FormatChildPermissions(true)));
}

TEST(FileDriverTest, ReadsPastEndOfFileReturnZeroes) {
  std::string path = TempFile();
  ASSERT_OK_AND_ASSIGN(auto node, OpenFile(path, PassThroughPermissions(false), false));
  uint8_t b = 0x42;
  ASSERT_OK(node->Pwrite(65535, 1, &b));
  uint8_t buf[4] = {1, 1, 1, 1};
  ASSERT_OK(node->Pread(65535, 4, buf));
  EXPECT_EQ(buf[0], 0x42);
  EXPECT_EQ(buf[1], 0);
  EXPECT_EQ(buf[3], 0);
}

// Block status remembers the data run it found (no lseek inside it); a discard or
// write-zeroes of ours must forget it, or a punched hole would still read as data.
TEST(FileDriverTest, BlockStatusSeesHolesPunchedAfterItLooked) {
  std::string path = TempFile();
  ASSERT_OK_AND_ASSIGN(auto node, OpenFile(path, PassThroughPermissions(false), false));
  std::vector<uint8_t> data(65536, 0x5a);
  ASSERT_OK(node->Pwrite(0, data.size(), data.data()));
  ASSERT_OK_AND_ASSIGN(BlockStatus before, node->GetBlockStatus(0, 65536));
  EXPECT_TRUE(before.data);
  ASSERT_OK_AND_ASSIGN(BlockStatus inside, node->GetBlockStatus(32768, 4096));
  EXPECT_TRUE(inside.data);
  ASSERT_OK(node->Pdiscard(16384, 16384));
  ASSERT_OK_AND_ASSIGN(BlockStatus punched, node->GetBlockStatus(16384, 4096));
  // A file system without hole punching keeps data there; one with it must say so.
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  if (st.st_blocks * 512 < 65536) {
    EXPECT_FALSE(punched.data);
    EXPECT_TRUE(punched.zero);
  }
  ASSERT_OK(node->Pwrite(16384, 4096, data.data()));
  ASSERT_OK_AND_ASSIGN(BlockStatus rewritten, node->GetBlockStatus(16384, 4096));
  EXPECT_TRUE(rewritten.data);
}

}  // namespace
}  // namespace strata
