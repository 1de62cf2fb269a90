// Tests of the blkdebug rule engine: states, the active list, once, sectors, iotypes,
// breakpoints.
#include "blkdebug/blkdebug_rules.h"

#include "gtest/gtest.h"

namespace strata::blkdebug {
namespace {

InjectErrorRule Inject(DebugEvent event, int64_t error = 5) {
  InjectErrorRule r;
  r.event = event;
  r.error_number = error;
  return r;
}

TEST(RuleEngineTest, NothingFailsBeforeTheEventFires) {
  RuleEngine engine;
  engine.AddInjectError(Inject(DebugEvent::kL2Load));
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 0);
  engine.OnEvent(DebugEvent::kL1Update);
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 0);
  engine.OnEvent(DebugEvent::kL2Load);
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 5);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 5);  // not once: keeps failing
}

TEST(RuleEngineTest, OnceRuleIsDeletedForGood) {
  RuleEngine engine;
  InjectErrorRule r = Inject(DebugEvent::kWriteAio, 28);
  r.once = true;
  engine.AddInjectError(r);
  engine.OnEvent(DebugEvent::kWriteAio);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 28);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 0);
  engine.OnEvent(DebugEvent::kWriteAio);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 0);
}

TEST(RuleEngineTest, SetStateAndInjectSeeTheOldState) {
  // QEMU's classic pattern: the first write_aio only switches to state 2, the second arms.
  RuleEngine engine;
  engine.AddSetState({.event = DebugEvent::kWriteAio, .state = 0, .new_state = 2});
  InjectErrorRule r = Inject(DebugEvent::kWriteAio);
  r.state = 2;
  engine.AddInjectError(r);
  engine.OnEvent(DebugEvent::kWriteAio);
  EXPECT_EQ(engine.state(), 2);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 0);
  engine.OnEvent(DebugEvent::kWriteAio);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 512), 5);
}

TEST(RuleEngineTest, AnEventWithInjectRulesReplacesTheActiveList) {
  RuleEngine engine;
  engine.AddInjectError(Inject(DebugEvent::kL2Load, 5));
  InjectErrorRule zero = Inject(DebugEvent::kL1Update, 0);  // errno 0: let requests through
  engine.AddInjectError(zero);
  engine.OnEvent(DebugEvent::kL2Load);
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 5);
  engine.OnEvent(DebugEvent::kCowRead);  // no rules: active list stays
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 5);
  engine.OnEvent(DebugEvent::kL1Update);  // its rule clears the list
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 0, 512), 0);
}

TEST(RuleEngineTest, SectorAndIoTypeFilters) {
  RuleEngine engine;
  InjectErrorRule r = Inject(DebugEvent::kWriteAio);
  r.offset = 130 * 512;
  r.iotype_mask = 1u << static_cast<int>(IoType::kWrite);
  engine.AddInjectError(r);
  engine.OnEvent(DebugEvent::kWriteAio);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 0, 130 * 512), 0);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 130 * 512, 512), 5);
  EXPECT_EQ(engine.CheckRequest(IoType::kRead, 130 * 512, 512), 0);
  EXPECT_EQ(engine.CheckRequest(IoType::kWrite, 130 * 512, 0), 0);  // flush-like: no bytes
}

TEST(RuleEngineTest, DefaultMaskSparesBlockStatus) {
  RuleEngine engine;
  engine.AddInjectError(Inject(DebugEvent::kNone));
  engine.OnEvent(DebugEvent::kNone);
  EXPECT_EQ(engine.CheckRequest(IoType::kFlush, 0, 0), 5);
  EXPECT_EQ(engine.CheckRequest(IoType::kBlockStatus, 0, 512), 0);
}

TEST(RuleEngineTest, BreakpointsAreOneShot) {
  RuleEngine engine;
  engine.AddBreakpoint(DebugEvent::kCowRead, "A");
  engine.AddBreakpoint(DebugEvent::kCowRead, "B");
  EXPECT_EQ(engine.OnEvent(DebugEvent::kCowRead), (std::vector<std::string>{"B", "A"}));
  EXPECT_TRUE(engine.OnEvent(DebugEvent::kCowRead).empty());
  engine.AddBreakpoint(DebugEvent::kL2Load, "C");
  EXPECT_TRUE(engine.RemoveBreakpoints("C"));
  EXPECT_FALSE(engine.RemoveBreakpoints("C"));
  EXPECT_TRUE(engine.OnEvent(DebugEvent::kL2Load).empty());
}

TEST(RuleEngineTest, ParsesIoTypes) {
  EXPECT_EQ(ParseIoType("write-zeroes"), IoType::kWriteZeroes);
  EXPECT_EQ(ParseIoType("block-status"), IoType::kBlockStatus);
  EXPECT_FALSE(ParseIoType("write_zeroes").has_value());
}

}  // namespace
}  // namespace strata::blkdebug
