#include "drivers/qcow2/qcow2_transfer_epochs.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace strata::qcow2 {
namespace {

TEST(TransferEpochsTest, NothingInFlightAtFirst) {
  TransferEpochs epochs;
  EXPECT_EQ(epochs.OldestInFlight(), UINT64_MAX);
}

// A free tagged at an advance waits for the transfers begun before it, not for later
// ones.
TEST(TransferEpochsTest, AFreeWaitsForTheTransfersBegunBeforeIt) {
  TransferEpochs epochs;
  const uint64_t before = epochs.Begin();
  const uint64_t tag = epochs.Advance();
  EXPECT_EQ(tag, before);
  const uint64_t after = epochs.Begin();
  EXPECT_GT(after, tag);
  EXPECT_LE(epochs.OldestInFlight(), tag);  // the free must wait
  epochs.End(before);
  EXPECT_EQ(epochs.OldestInFlight(), after);
  EXPECT_GT(epochs.OldestInFlight(), tag);  // the free may go
  epochs.End(after);
  EXPECT_EQ(epochs.OldestInFlight(), UINT64_MAX);
}

// A transfer older than the ring keeps the epoch from advancing into its slot: frees
// tagged meanwhile share its epoch and wait for it and for everything begun later.
TEST(TransferEpochsTest, ABusySlotStopsTheEpochInsteadOfMixingTwo) {
  TransferEpochs epochs;
  const uint64_t old = epochs.Begin();
  for (uint64_t i = 0; i < TransferEpochs::kSlots - 1; ++i) epochs.Advance();
  const uint64_t last = epochs.Begin();
  EXPECT_EQ(last, old + TransferEpochs::kSlots - 1);
  // The next slot is the old transfer's: the epoch stays.
  EXPECT_EQ(epochs.Advance(), last);
  const uint64_t stuck = epochs.Begin();
  EXPECT_EQ(stuck, last);
  EXPECT_EQ(epochs.OldestInFlight(), old);
  epochs.End(old);
  EXPECT_EQ(epochs.OldestInFlight(), last);
  EXPECT_EQ(epochs.Advance(), last);  // now it moves on
  EXPECT_EQ(epochs.Begin(), last + 1);
  epochs.End(last);
  epochs.End(stuck);
  EXPECT_EQ(epochs.OldestInFlight(), last + 1);
  epochs.End(last + 1);
  EXPECT_EQ(epochs.OldestInFlight(), UINT64_MAX);
}

// Ends come from other threads without the lock; begins and advances are serialised
// (here: by one thread). Afterwards nothing is in flight.
TEST(TransferEpochsTest, EndsFromOtherThreadsBalanceBegins) {
  TransferEpochs epochs;
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::vector<uint64_t>> begun(kThreads);
  for (int i = 0; i < kPerThread; ++i) {
    for (int t = 0; t < kThreads; ++t) begun[t].push_back(epochs.Begin());
    if (i % 100 == 0) epochs.Advance();
  }
  std::vector<std::thread> enders;
  for (int t = 0; t < kThreads; ++t) {
    enders.emplace_back([&, t] {
      for (uint64_t e : begun[t]) epochs.End(e);
    });
  }
  for (std::thread& t : enders) t.join();
  EXPECT_EQ(epochs.OldestInFlight(), UINT64_MAX);
}

}  // namespace
}  // namespace strata::qcow2
