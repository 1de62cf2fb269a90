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

TEST(RbdSpec, ServersSecretsAndAuthModes) {
  proto::RbdOptions o;
  o.set_pool("rbd");
  o.set_image("d");
  o.set_key_secret("sec0");
  o.add_auth_client_required("cephx");
  o.add_auth_client_required("none");
  proto::RbdServer* a = o.add_server();
  a->set_host("127.0.0.1");
  a->set_port("6789");
  proto::RbdServer* b = o.add_server();
  b->set_host("::1");
  b->set_port("3300");
  absl::StatusOr<RbdSpec> s = RbdSpecFromOptions(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(MonHost(*s), "127.0.0.1:6789;[::1]:3300");
  EXPECT_EQ(s->key_secret, "sec0");
  EXPECT_EQ(s->auth_client_required.size(), 2u);
  // QEMU's name: server entries flattened, key-secret and auth modes left out.
  EXPECT_EQ(RbdDisplayName(*s),
            "json:{\"pool\": \"rbd\", \"image\": \"d\", \"server.1.host\": \"::1\", "
            "\"server.0.host\": \"127.0.0.1\", \"driver\": \"rbd\", "
            "\"server.1.port\": \"3300\", \"server.0.port\": \"6789\"}");
  b->clear_port();
  EXPECT_EQ(RbdSpecFromOptions(o).status().message(), "Parameter 'server.1.port' is missing");
  b->set_port("1");
  b->clear_host();
  EXPECT_EQ(RbdSpecFromOptions(o).status().message(), "Parameter 'server.1.host' is missing");
  o.clear_server();
  o.add_auth_client_required("kerberos");
  EXPECT_EQ(RbdSpecFromOptions(o).status().message(),
            "Parameter 'null' does not accept value 'kerberos'");
}

}  // namespace
}  // namespace strata::rbd
