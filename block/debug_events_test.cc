// strata: the debug event table matches QEMU 7.2's BlkdebugEvent enum.
#include "block/debug_events.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(DebugEventsTest, HasQemusFortyEightEventsInOrder) {
  EXPECT_EQ(kDebugEventCount, 48);
  EXPECT_EQ(DebugEventName(DebugEvent::kL1Update), "l1_update");
  EXPECT_EQ(DebugEventName(DebugEvent::kRefblockAllocSwitchTable),
            "refblock_alloc_switch_table");
  EXPECT_EQ(DebugEventName(DebugEvent::kEmptyImagePrepare), "empty_image_prepare");
  EXPECT_EQ(static_cast<int>(DebugEvent::kEmptyImagePrepare), 42);
  EXPECT_EQ(static_cast<int>(DebugEvent::kClusterAllocSpace), 46);
  EXPECT_EQ(DebugEventName(DebugEvent::kNone), "none");
}

TEST(DebugEventsTest, NamesRoundTripAndAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < kDebugEventCount; ++i) {
    auto event = static_cast<DebugEvent>(i);
    std::string name(DebugEventName(event));
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_EQ(ParseDebugEvent(name), event);
  }
}

TEST(DebugEventsTest, RejectsOldDottedSpellings) {
  EXPECT_FALSE(ParseDebugEvent("l1_grow.alloc_table").has_value());
  EXPECT_FALSE(ParseDebugEvent("refblock_alloc.hookup").has_value());
  EXPECT_FALSE(ParseDebugEvent("").has_value());
}

}  // namespace
}  // namespace strata
