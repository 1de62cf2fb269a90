// Tests for rbd pseudo-filenames and the name QEMU shows for them (its answers for the
// same strings, recorded from qemu-img info on a test cluster).
#include "drivers/rbd/rbd_spec.h"

#include "gtest/gtest.h"

namespace strata::rbd {
namespace {

TEST(RbdSpec, PoolImageSnapshotAndOptions) {
  absl::StatusOr<RbdSpec> s = ParseRbdFilename("rbd:rbd/t1@s1:conf=/c/ceph.conf:id=admin");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->pool, "rbd");
  EXPECT_EQ(s->image, "t1");
  EXPECT_EQ(s->snapshot, "s1");
  EXPECT_EQ(s->conf, "/c/ceph.conf");
  EXPECT_EQ(s->user, "admin");
  EXPECT_EQ(RbdDisplayName(*s),
            "json:{\"pool\": \"rbd\", \"image\": \"t1\", \"conf\": \"/c/ceph.conf\", "
            "\"snapshot\": \"s1\", \"driver\": \"rbd\", \"namespace\": \"\", "
            "\"user\": \"admin\"}");
}

TEST(RbdSpec, NamespacesEscapesAndSettings) {
  absl::StatusOr<RbdSpec> s = ParseRbdFilename("rbd:p/ns/im\\:g:rbd_cache=false");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ns, "ns");
  EXPECT_EQ(s->image, "im:g");
  ASSERT_EQ(s->settings.size(), 1u);
  EXPECT_EQ(s->settings[0].first, "rbd_cache");
  EXPECT_EQ(s->settings[0].second, "false");
}

TEST(RbdSpec, Errors) {
  EXPECT_EQ(ParseRbdFilename("rbd:").status().message(), "Pool name is required");
  EXPECT_EQ(ParseRbdFilename("rbd:pool").status().message(), "Image name is required");
  EXPECT_FALSE(ParseRbdFilename("rbd:p/i:conf").ok());
  proto::RbdOptions o;
  o.set_pool("p");
  EXPECT_EQ(RbdSpecFromOptions(o).status().message(), "Parameter 'image' is missing");
}

}  // namespace
}  // namespace strata::rbd
