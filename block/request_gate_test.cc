// strata: RequestGate: a quiescer waits for requests in flight, requests arriving while it
// holds the gate wait (a coroutine parks on its loop), and its own thread passes.
#include "block/request_gate.h"

#include <atomic>
#include <thread>

#include "aio/loop_thread.h"
#include "aio/task.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

// Yields until `cond` holds (bounded: fails the test after many rounds).
template <typename Cond>
bool Eventually(Cond cond) {
  for (int i = 0; i < 10'000'000; ++i) {
    if (cond()) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST(RequestGateTest, QuiesceWaitsForTheRequestInFlight) {
  RequestGate gate;
  gate.Enter();
  std::atomic<bool> quiesced{false}, resume{false};
  std::thread quiescer([&] {
    gate.Quiesce();
    quiesced = true;
    ASSERT_TRUE(Eventually([&] { return resume.load(); }));
    gate.Resume();  // by the thread that quiesced, as the contract asks
  });
  ASSERT_TRUE(Eventually([&] { return gate.quiesced(); }));
  // The gate is closed but one request is still in flight: the quiescer cannot be done.
  EXPECT_FALSE(quiesced.load());
  EXPECT_EQ(gate.in_flight(), 1u);
  gate.Leave();
  ASSERT_TRUE(Eventually([&] { return quiesced.load(); }));
  EXPECT_EQ(gate.in_flight(), 0u);
  resume = true;
  quiescer.join();
  EXPECT_FALSE(gate.quiesced());
}

TEST(RequestGateTest, TheQuiescingThreadPasses) {
  RequestGate gate;
  gate.Quiesce();
  gate.Enter();  // would wait forever if the owner were held too
  EXPECT_EQ(gate.in_flight(), 1u);
  gate.Leave();
  gate.Resume();
}

TEST(RequestGateTest, SynchronousRequestWaitsUntilResume) {
  RequestGate gate;
  gate.Quiesce();
  std::atomic<bool> entered{false};
  std::thread request([&] {
    gate.Enter();
    entered = true;
    gate.Leave();
  });
  // While quiesced, the request's entry is undone (in_flight stays 0) and it waits.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(entered.load());
    std::this_thread::yield();
  }
  gate.Resume();
  request.join();
  EXPECT_TRUE(entered.load());
  EXPECT_EQ(gate.in_flight(), 0u);
}

aio::Task<int> EnterAndLeave(RequestGate& gate, std::atomic<bool>& entered) {
  co_await gate.CoEnter();
  entered = true;
  gate.Leave();
  co_return 0;
}

TEST(RequestGateTest, CoroutineRequestParksOnItsLoopUntilResume) {
  RequestGate gate;
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
      aio::LoopThread::Start({aio::Engine::kThreads});
  ASSERT_TRUE(loop.ok());
  gate.Quiesce();
  std::atomic<bool> entered{false}, done{false};
  (*loop)->context().Post([&] {
    aio::Start(EnterAndLeave(gate, entered), [&](int) { done = true; });
  });
  ASSERT_TRUE(Eventually([&] { return gate.parked() == 1; }));
  EXPECT_FALSE(entered.load());
  // The loop is not blocked by the parked request: other work still runs on it.
  std::atomic<bool> other{false};
  (*loop)->context().Post([&] { other = true; });
  ASSERT_TRUE(Eventually([&] { return other.load(); }));
  gate.Resume();
  ASSERT_TRUE(Eventually([&] { return done.load(); }));
  EXPECT_TRUE(entered.load());
  EXPECT_EQ(gate.in_flight(), 0u);
}

}  // namespace
}  // namespace strata
