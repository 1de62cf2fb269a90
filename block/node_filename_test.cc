// Tests for QEMU's node names (node_filename.h), through the open path. QEMU 7.2's own
// names for the same options are in the drop-in corpus's "node names" group; these pin
// the rules: which options name a node, how values print, when a file's name is taken.
#include "block/node_filename.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "block/graph_builder.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

class NodeFilenameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    dir_ = std::string(t ? t : "/tmp") + "/node_filename_" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    raw_ = dir_ + "/raw.img";
    std::ofstream(raw_) << std::string(65536, 'r');
  }

  // The name the root of `spec` gets ("json:..." or key=value options).
  std::string NameOf(const std::string& spec) {
    absl::StatusOr<OpenedImage> img = OpenReadOnly(spec);
    if (!img.ok()) return "error: " + std::string(img.status().message());
    return img->root->filename();
  }

  // The backing file name `backing` as resolved below the root of `spec`.
  std::string FullBackingOf(const std::string& spec, const std::string& backing) {
    absl::StatusOr<OpenedImage> img = OpenReadOnly(spec);
    if (!img.ok()) return "error: " + std::string(img.status().message());
    absl::StatusOr<std::string> full = FullBackingFilename(*img->root, backing);
    return full.ok() ? *full : "error: " + std::string(full.status().message());
  }

  static absl::StatusOr<OpenedImage> OpenReadOnly(const std::string& spec) {
    ImageOpenRequest r;
    r.filename = spec;
    r.image_opts = !absl::StartsWith(spec, "json:");
    r.flags.read_only = true;
    return OpenImage(r);
  }

  std::string dir_, raw_;
};

TEST_F(NodeFilenameTest, AFormatWithoutStrongOptionsTakesItsFilesName) {
  EXPECT_EQ(NameOf("driver=raw,file.filename=" + raw_), raw_);
  // Options that do not change the data name nothing.
  EXPECT_EQ(NameOf("driver=raw,file.filename=" + raw_ + ",cache.no-flush=on,file.locking=off"),
            raw_);
}

TEST_F(NodeFilenameTest, StrongOptionsNameTheNodeByOptionsAsGiven) {
  // key=value values are strings; JSON numbers stay numbers; QEMU's dict order.
  EXPECT_EQ(NameOf("driver=raw,offset=512,file.filename=" + raw_),
            "json:{\"offset\": \"512\", \"driver\": \"raw\", \"file\": {\"driver\": \"file\", "
            "\"filename\": \"" + raw_ + "\"}}");
  EXPECT_EQ(NameOf("json:{\"driver\":\"raw\",\"size\":4096.0,\"file\":{\"filename\":\"" + raw_ +
                   "\"}}"),
            "json:{\"driver\": \"raw\", \"size\": 4096, \"file\": {\"driver\": \"file\", "
            "\"filename\": \"" + raw_ + "\"}}");
  // null and empty containers take no option but still name the node.
  EXPECT_EQ(NameOf("json:{\"driver\":\"raw\",\"size\":{},\"file\":{\"filename\":\"" + raw_ +
                   "\"}}"),
            "json:{\"driver\": \"raw\", \"size\": {}, \"file\": {\"driver\": \"file\", "
            "\"filename\": \"" + raw_ + "\"}}");
}

TEST_F(NodeFilenameTest, AFormatOverANonProtocolNodeIsNamedByOptions) {
  EXPECT_EQ(NameOf("driver=raw,file.driver=raw,file.file.filename=" + raw_),
            "json:{\"driver\": \"raw\", \"file\": {\"driver\": \"raw\", \"file\": {\"driver\": "
            "\"file\", \"filename\": \"" + raw_ + "\"}}}");
}

TEST_F(NodeFilenameTest, BlkdebugNamesItselfUnlessGivenStrongOptions) {
  EXPECT_EQ(NameOf("driver=raw,file.driver=blkdebug,file.image.filename=" + raw_),
            "blkdebug::" + raw_);
  EXPECT_EQ(NameOf("driver=raw,file.driver=blkdebug,file.align=4096,file.image.filename=" +
                   raw_),
            "json:{\"driver\": \"raw\", \"file\": {\"image\": {\"driver\": \"file\", "
            "\"filename\": \"" + raw_ + "\"}, \"driver\": \"blkdebug\", \"align\": \"4096\"}}");
  // Inline rules flatten to dotted keys.
  EXPECT_EQ(NameOf("driver=raw,file.driver=blkdebug,file.inject-error.0.event=read_aio,"
                   "file.image.filename=" + raw_),
            "json:{\"driver\": \"raw\", \"file\": {\"image\": {\"driver\": \"file\", "
            "\"filename\": \"" + raw_ + "\"}, \"driver\": \"blkdebug\", "
            "\"inject-error.0.event\": \"read_aio\"}}");
}

TEST_F(NodeFilenameTest, NullNodesArePseudoFilenamesUnlessSized) {
  EXPECT_EQ(NameOf("driver=null-co"), "null-co://");
  EXPECT_EQ(NameOf("driver=null-aio,latency-ns=0"), "null-aio://");
  EXPECT_EQ(NameOf("driver=null-co,size=4096"), "json:{\"driver\": \"null-co\", \"size\": \"4096\"}");
  EXPECT_EQ(NameOf("json:{\"driver\":\"null-co\",\"read-zeroes\":null}"),
            "json:{\"read-zeroes\": null, \"driver\": \"null-co\"}");
}

TEST_F(NodeFilenameTest, RelativeBackingNamesResolveInTheDirectoryOfTheFileBelow) {
  const std::string dir = dir_ + "/";
  // Through format and filter nodes down to the file, whatever the root is named.
  EXPECT_EQ(FullBackingOf("driver=raw,file.filename=" + raw_, "b.qcow2"), dir + "b.qcow2");
  EXPECT_EQ(FullBackingOf("driver=raw,offset=512,file.filename=" + raw_, "b.qcow2"),
            dir + "b.qcow2");
  EXPECT_EQ(FullBackingOf("driver=raw,file.driver=blkdebug,file.image.filename=" + raw_,
                          "b.qcow2"),
            dir + "b.qcow2");
  EXPECT_EQ(FullBackingOf("driver=raw,file.driver=raw,file.file.filename=" + raw_, "sub/b"),
            dir + "sub/b");
  // Absolute and protocol names stand alone.
  EXPECT_EQ(FullBackingOf("driver=raw,file.filename=" + raw_, "/abs/b"), "/abs/b");
  EXPECT_EQ(FullBackingOf("driver=raw,file.filename=" + raw_, "nbd://h/e"), "nbd://h/e");
  // A node with no file below it and no name of its own has no directory.
  EXPECT_EQ(FullBackingOf("driver=null-co,size=512", "b.qcow2"),
            "error: Cannot generate a base directory for null-co nodes");
  EXPECT_EQ(FullBackingOf("driver=null-co,size=512", "/abs/b"), "/abs/b");
}

TEST(NamingOptionsOfTreeTest, KeepsDriverFilenameAndStrongOptionsFlattened) {
  absl::StatusOr<google::protobuf::Struct> tree = ParseJsonObject(
      "{\"driver\":\"blkdebug\",\"align\":-0,\"max-transfer\":1e6,\"inject-error\":"
      "[{\"event\":\"l2_load\",\"once\":true}],\"image\":{\"filename\":\"x\"},\"x\":1}");
  ASSERT_OK(tree.status());
  const BlockDriver* blkdebug = DriverRegistry::Global().Find("blkdebug");
  ASSERT_NE(blkdebug, nullptr);
  auto members = NamingOptionsOfTree(*tree, *blkdebug);
  std::map<std::string, std::string> got(members.begin(), members.end());
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"driver", "\"blkdebug\""},
                                                     {"align", "0"},
                                                     {"max-transfer", "1000000"},
                                                     {"inject-error.0.event", "\"l2_load\""},
                                                     {"inject-error.0.once", "true"}}));
}

}  // namespace
}  // namespace strata
