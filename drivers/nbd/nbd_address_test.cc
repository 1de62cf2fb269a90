// Tests for the nbd driver's address forms. The expectations are QEMU 7.2's answers for
// the same strings (qemu-img info on each, recorded by hand once; the differential test
// in tests/nbd checks the messages against qemu-img itself).
#include "drivers/nbd/nbd_address.h"

#include "gtest/gtest.h"

namespace strata::nbd {
namespace {

NbdAddress Parse(const std::string& s) {
  absl::StatusOr<NbdAddress> a = ParseNbdFilename(s);
  EXPECT_TRUE(a.ok()) << s << ": " << a.status();
  return a.ok() ? *a : NbdAddress{};
}

std::string Error(const std::string& s) {
  absl::StatusOr<NbdAddress> a = ParseNbdFilename(s);
  EXPECT_FALSE(a.ok()) << s;
  return a.ok() ? "" : std::string(a.status().message());
}

TEST(NbdAddress, TcpUrls) {
  NbdAddress a = Parse("nbd://localhost:1234/exp");
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, "1234");
  EXPECT_EQ(a.export_name, "exp");
  EXPECT_TRUE(a.unix_path.empty());
  a = Parse("nbd+tcp://h");
  EXPECT_EQ(a.port, "10809");
  EXPECT_EQ(a.export_name, "");
  a = Parse("nbd://[::1]:5/a%20b");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.export_name, "a b");
  EXPECT_EQ(Parse("nbd://user@h:1/x#frag").host, "h");
  EXPECT_EQ(DisplayName(Parse("nbd://h:1/x")), "nbd://h:1/x");
  EXPECT_EQ(DisplayName(Parse("nbd://h")), "nbd://h:10809");
}

TEST(NbdAddress, UnixUrls) {
  NbdAddress a = Parse("nbd+unix:///exp?socket=/tmp/s");
  EXPECT_EQ(a.unix_path, "/tmp/s");
  EXPECT_EQ(a.export_name, "exp");
  EXPECT_EQ(DisplayName(a), "nbd+unix:///exp?socket=/tmp/s");
  EXPECT_EQ(DisplayName(Parse("nbd+unix://?socket=/s")), "nbd+unix://?socket=/s");
}

TEST(NbdAddress, BadUrls) {
  for (const char* s : {"nbd+unix:///exp", "nbd+unix:///e?socket=/s&x=1", "nbd://h/x?socket=1",
                        "nbd://:10809/", "nbd://h:abc/x", "nbd://h:1:2/x", "nbd://[::1/x",
                        "nbd+unix://h/x?socket=/s", "nbd+unix:///x?sock=/s"}) {
    EXPECT_EQ(Error(s), "No valid URL specified") << s;
  }
}

TEST(NbdAddress, LegacyForms) {
  NbdAddress a = Parse("nbd:unix:/tmp/s:exportname=e");
  EXPECT_EQ(a.unix_path, "/tmp/s");
  EXPECT_EQ(a.export_name, "e");
  a = Parse("nbd:localhost:1");
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, "1");
  EXPECT_EQ(Parse("nbd:[::1]:1").host, "::1");
  EXPECT_EQ(Error("nbd:localhost"), "error parsing address 'localhost'");
  EXPECT_EQ(Error("nbd:"), "NBD server address missing");
  EXPECT_EQ(Error("nbd:localhost:1:exportname="), "NBD server address missing");
}

TEST(NbdAddress, Options) {
  proto::NbdOptions o;
  EXPECT_EQ(NbdAddressFromOptions(o).status().message(), "NBD server address missing");
  o.mutable_server()->set_type("inet");
  o.mutable_server()->set_port("1");
  EXPECT_EQ(NbdAddressFromOptions(o).status().message(), "Parameter 'host' is missing");
  o.mutable_server()->set_host("h");
  o.set_export_("e");
  absl::StatusOr<NbdAddress> a = NbdAddressFromOptions(o);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(DisplayName(*a), "nbd://h:1/e");
  o.set_path("/x");
  EXPECT_EQ(NbdAddressFromOptions(o).status().message(),
            "Cannot use 'server' and path/host/port at the same time");
  proto::NbdOptions legacy;
  legacy.set_host("h");
  EXPECT_EQ(NbdAddressFromOptions(legacy)->port, "10809");
  proto::NbdOptions unix_only;
  unix_only.mutable_server()->set_type("unix");
  EXPECT_EQ(NbdAddressFromOptions(unix_only).status().message(), "Parameter 'path' is missing");
}

}  // namespace
}  // namespace strata::nbd
