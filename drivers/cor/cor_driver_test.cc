// strata: the copy-on-read filter driver: `bottom` limits what is copied (inclusive),
// a bottom of the filtered node itself copies nothing, and opens QEMU refuses (read-only,
// an unknown bottom) or would hang on (a bottom outside the backing chain) fail clearly.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "block/graph_builder.h"
#include "block/node.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kMiB = 1 << 20;

int Shell(const std::string& command) { return std::system(command.c_str()); }

// base (1 MiB of 0x01 at 0) <- mid (1 MiB of 0x02 at 1 MiB) <- top (empty), 4 MiB each,
// in a fresh directory; returns it.
std::string MakeChain(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(t ? t : "/tmp") + "/" + name + std::to_string(getpid());
  EXPECT_EQ(Shell("rm -rf " + dir + " && mkdir -p " + dir + " && cd " + dir +
                  " && qemu-img create -q -f qcow2 base.qcow2 4M"
                  " && qemu-io -c 'write -P 1 0 1M' base.qcow2 >/dev/null"
                  " && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2"
                  " && qemu-io -c 'write -P 2 1M 1M' mid.qcow2 >/dev/null"
                  " && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2"),
            0);
  return dir;
}

absl::StatusOr<OpenedImage> OpenFilter(const std::string& dir, const std::string& extra,
                                       bool read_only = false) {
  ImageOpenRequest req;
  req.image_opts = true;
  req.filename = "driver=copy-on-read,file.driver=qcow2,file.node-name=top,file.file.filename=" +
                 dir + "/top.qcow2,file.backing.driver=qcow2,file.backing.node-name=mid," +
                 "file.backing.file.filename=" + dir + "/mid.qcow2,file.backing.file.node-name=midfile" +
                 extra;
  req.flags.read_only = read_only;
  return OpenImage(req);
}

bool AllocatedInTop(BlockDriverState& filter, uint64_t offset) {
  bool allocated = false;
  EXPECT_OK(filter.IsAllocated(offset, 512, &allocated).status());
  return allocated;
}

void ReadAll(BlockDriverState& node, uint8_t expect_at_0, uint8_t expect_at_1m) {
  std::vector<uint8_t> buf(3 * kMiB);
  ASSERT_OK(node.Pread(0, buf.size(), buf.data()));
  EXPECT_EQ(buf[0], expect_at_0);
  EXPECT_EQ(buf[kMiB], expect_at_1m);
  EXPECT_EQ(buf[2 * kMiB], 0);
}

TEST(CopyOnReadFilterTest, BottomLimitsTheCopyInclusively) {
  const std::string dir = MakeChain("cor_bottom");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenFilter(dir, ",bottom=mid"));
  ReadAll(*img.root, 1, 2);
  EXPECT_FALSE(AllocatedInTop(*img.root, 0));         // only in base: below the bottom
  EXPECT_TRUE(AllocatedInTop(*img.root, kMiB));       // in mid: copied
  EXPECT_FALSE(AllocatedInTop(*img.root, 2 * kMiB));  // nowhere: not copied
  ASSERT_OK(img.root->Close());
  img.root.reset();  // releases the image locks
  EXPECT_EQ(Shell("qemu-img check -q " + dir + "/top.qcow2"), 0);
  EXPECT_EQ(Shell("qemu-io -c 'read -P 2 1M 1M' " + dir + "/top.qcow2 | grep -q Pattern; "
                  "test $? -ne 0"),
            0);
}

TEST(CopyOnReadFilterTest, NoBottomCopiesEverythingZeroesAsZeroes) {
  const std::string dir = MakeChain("cor_nobottom");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenFilter(dir, ""));
  // A copy step with no data is written as zeroes; one with any data is written whole
  // as data (QEMU's layout), so the zero range is read alone first.
  std::vector<uint8_t> buf(4096);
  ASSERT_OK(img.root->Pread(2 * kMiB, buf.size(), buf.data()));
  ReadAll(*img.root, 1, 2);
  EXPECT_TRUE(AllocatedInTop(*img.root, 0));
  EXPECT_TRUE(AllocatedInTop(*img.root, kMiB));
  ASSERT_OK_AND_ASSIGN(BlockStatus zero, img.root->GetBlockStatus(2 * kMiB, 4096));
  EXPECT_TRUE(zero.allocated);
  EXPECT_TRUE(zero.zero);
  EXPECT_FALSE(zero.data);
  ASSERT_OK(img.root->Close());
  img.root.reset();  // releases the image locks
  EXPECT_EQ(Shell("qemu-img check -q " + dir + "/top.qcow2"), 0);
}

TEST(CopyOnReadFilterTest, BottomAtTheFilteredNodeCopiesNothing) {
  const std::string dir = MakeChain("cor_self");
  ASSERT_OK_AND_ASSIGN(OpenedImage img, OpenFilter(dir, ",bottom=top"));
  ReadAll(*img.root, 1, 2);
  EXPECT_FALSE(AllocatedInTop(*img.root, 0));
  EXPECT_FALSE(AllocatedInTop(*img.root, kMiB));
  EXPECT_FALSE(AllocatedInTop(*img.root, 2 * kMiB));
}

TEST(CopyOnReadFilterTest, RefusedOpens) {
  const std::string dir = MakeChain("cor_refuse");
  EXPECT_EQ(OpenFilter(dir, ",bottom=nope").status().message(), "Bottom node 'nope' not found");
  EXPECT_EQ(OpenFilter(dir, ",bottom=midfile").status().message(),
            "Bottom node 'midfile' is not in the backing chain of the filtered node");
  EXPECT_EQ(OpenFilter(dir, "", /*read_only=*/true).status().message(),
            "Block node is read-only");
  // Nothing was written by any of them.
  EXPECT_EQ(Shell("qemu-img map --output=json " + dir +
                  "/top.qcow2 | grep -q '\"depth\": 0'; test $? -ne 0"),
            0);
}

}  // namespace
}  // namespace strata
