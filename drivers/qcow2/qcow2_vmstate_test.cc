// strata qcow2: the VM state area (savevm's RAM image; qemu-io read/write -b). It lies
// past the guest's data, from the first L1 entry beyond the virtual size: writing it
// leaves the guest's bytes and length alone, reads back after a reopen, keeps the image
// consistent, and is reached through a blkdebug node above the qcow2 node. Formats
// without one say ENOTSUP; read-only nodes refuse writes; ranges past the block layer's
// maximum are EIO.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kSize = 64 << 20;

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
}

absl::StatusOr<OpenedImage> Open(const std::string& filename, const std::string& format,
                                 bool read_only = false) {
  ImageOpenRequest r;
  r.filename = filename;
  r.format = format;
  r.flags.read_only = read_only;
  return OpenImage(r);
}

TEST(Qcow2VmStateTest, LivesBesideTheGuestData) {
  const std::string path = TempPath("vmstate.qcow2");
  ASSERT_OK(DriverRegistry::Global().Find("qcow2")->Create({path, kSize, {}}));
  std::vector<uint8_t> state(8192, 0x5a), guest(8192, 0x11), back(8192);
  {
    ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, "qcow2"));
    ASSERT_OK(img.root->Pwrite(0, guest.size(), guest.data()));
    ASSERT_OK(img.root->WriteVmState(0, state.size(), state.data()));
    ASSERT_OK(img.root->Pread(0, back.size(), back.data()));
    EXPECT_EQ(back, guest);
    ASSERT_OK_AND_ASSIGN(uint64_t length, img.root->GetLength());
    EXPECT_EQ(length, kSize);
    ASSERT_OK(img.root->Close());
  }
  ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, "qcow2", /*read_only=*/true));
  ASSERT_OK(img.root->ReadVmState(0, back.size(), back.data()));
  EXPECT_EQ(back, state);
  ASSERT_OK(img.root->ReadVmState(1 << 20, back.size(), back.data()));
  EXPECT_EQ(back, std::vector<uint8_t>(back.size(), 0));
  EXPECT_EQ(ErrnoOf(img.root->WriteVmState(0, 512, state.data())), EPERM);
  ASSERT_OK_AND_ASSIGN(CheckResult check, img.root->instance().Check(0));
  EXPECT_EQ(check.corruptions, 0u);
  EXPECT_EQ(check.leaks, 0u);
  ASSERT_OK(img.root->Close());
}

TEST(Qcow2VmStateTest, ReachedThroughBlkdebugAndRefusedByRaw) {
  const std::string path = TempPath("vmstate-chain.qcow2");
  ASSERT_OK(DriverRegistry::Global().Find("qcow2")->Create({path, kSize, {}}));
  std::vector<uint8_t> state(512, 0x7e), back(512);
  {
    const std::string above = R"(json:{"driver":"blkdebug","image":{"driver":"qcow2",)"
                              R"("file":{"driver":"file","filename":")" + path + "\"}}}";
    ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(above, ""));
    ASSERT_OK(img.root->WriteVmState(512, state.size(), state.data()));
    EXPECT_EQ(ErrnoOf(img.root->ReadVmState(uint64_t{1} << 63, 512, back.data())), EIO);
    ASSERT_OK(img.root->Close());
  }
  {
    ASSERT_OK_AND_ASSIGN(OpenedImage img, Open(path, "qcow2"));
    ASSERT_OK(img.root->ReadVmState(512, back.size(), back.data()));
    EXPECT_EQ(back, state);
    ASSERT_OK(img.root->Close());
  }
  ASSERT_OK_AND_ASSIGN(OpenedImage raw, Open(path, "raw"));
  EXPECT_EQ(ErrnoOf(raw.root->ReadVmState(0, back.size(), back.data())), ENOTSUP);
  ASSERT_OK(raw.root->Close());
}

}  // namespace
}  // namespace strata
