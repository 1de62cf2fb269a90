// Tests of the blkdebug config file parser: QEMU's grammar quirks and error sentences
// (checked against qemu-io 7.2).
#include "blkdebug/blkdebug_config.h"

#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata::blkdebug {
namespace {

std::string ErrorOf(absl::string_view text) {
  proto::BlkdebugOptions options;
  absl::Status s = ParseConfigText(text, &options);
  if (s.ok()) {
    RuleEngine engine;
    s = AddRules(options, &engine);
  }
  return s.ok() ? "ok" : std::string(s.message());
}

TEST(BlkdebugConfigTest, ParsesSections) {
  proto::BlkdebugOptions options;
  ASSERT_OK(ParseConfigText("# comment\n\n[inject-error]\nevent = \"write_aio\"\n"
                            "errno = \"28\"\nonce = \"on\"\nsector = \"0x10\"\n"
                            "[set-state]\nevent  =  \"l2_load\"\nstate = \"1\"\n"
                            "new_state = \"2\"\n[inject-error \"id\"]\nevent = \"l1_update\"\n"
                            "immediately = \"yes\"\niotype = \"flush\"\n",
                            &options));
  ASSERT_EQ(options.inject_error_size(), 2);
  EXPECT_EQ(options.inject_error(0).event(), "write_aio");
  EXPECT_EQ(options.inject_error(0).error_number(), 28);
  EXPECT_TRUE(options.inject_error(0).once());
  EXPECT_EQ(options.inject_error(0).sector(), 16);
  EXPECT_TRUE(options.inject_error(1).immediately());
  EXPECT_EQ(options.inject_error(1).iotype(), "flush");
  ASSERT_EQ(options.set_state_size(), 1);
  EXPECT_EQ(options.set_state(0).new_state(), 2);
}

TEST(BlkdebugConfigTest, QemuErrorSentences) {
  EXPECT_EQ(ErrorOf("[inject-error]\nevent=\"l2_load\"\n"), "Invalid parameter 'event=\"l2_load\"'");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = \"bogus\"\n"), "invalid parameter value: bogus");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = l2_load\n"), "invalid parameter value: ");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = \"l1_update\"\nerrno = \"abc\"\n"),
            "Parameter 'errno' expects a number");
  EXPECT_EQ(ErrorOf("[foo]\n"), "There is no option group 'foo'");
  EXPECT_EQ(ErrorOf("[inject-error]\nbogus = \"1\"\n"), "Invalid parameter 'bogus'");
  EXPECT_EQ(ErrorOf("[inject-error]\nerrno = \"5\"\n"), "Missing event name for rule");
  EXPECT_EQ(ErrorOf("[inject-error]\nhello\n"), "Invalid parameter 'hello'");
  EXPECT_EQ(ErrorOf("[inject-error]\n  # c\n"), "Invalid parameter '#'");
  EXPECT_EQ(ErrorOf("[inject-error]\n   \n"), "parse error");
  EXPECT_EQ(ErrorOf("event = \"x\"\n"), "no group defined");
  EXPECT_EQ(ErrorOf("[inject-error]\nonce = \"maybe\"\n"), "Parameter 'once' expects 'on' or 'off'");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = \"l1_update\"\niotype = \"bogus\"\n"),
            "invalid parameter value: bogus");
  EXPECT_EQ(ErrorOf("[set-state]\nevent = \"l1_update\"\nnew_state=\"2\"\n"),
            "Invalid parameter 'new_state=\"2\"'");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = \"l1_grow.alloc_table\"\n"),
            "invalid parameter value: l1_grow.alloc_table");
  EXPECT_EQ(ErrorOf("[inject-error]\nevent = \"write_aio\" trailing\n"), "ok");
}

TEST(BlkdebugConfigTest, MissingFile) {
  proto::BlkdebugOptions options;
  absl::Status s = ParseConfigFile("/nonexistent/blkdebug.conf", &options);
  EXPECT_EQ(s.message(), "Could not read blkdebug config file: No such file or directory");
}

}  // namespace
}  // namespace strata::blkdebug
