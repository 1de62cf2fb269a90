// strata: concurrent coroutine flushes of a node run one at a time, and a flush that
// waited is skipped only when a successful flush covered every write it must cover.
#include "block/flush_coalescer.h"

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "aio/task.h"
#include "block/driver.h"
#include "block/driver_instance.h"
#include "block/node.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

// A protocol driver that counts write-backs (FlushToOs) and disk flushes. The first
// write-back waits for `release`, so that the flushes issued meanwhile queue up behind
// it; the first `failing_disk_flushes` disk flushes fail.
class CountingInstance : public DriverInstance {
 public:
  absl::Status Preadv(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    return absl::OkStatus();
  }
  absl::Status FlushToOs() override {
    if (write_backs.fetch_add(1) == 0) {
      first_write_back_started.Notify();
      release.WaitForNotification();
    }
    return absl::OkStatus();
  }
  absl::Status FlushToDisk() override {
    if (disk_flushes.fetch_add(1) < failing_disk_flushes) return absl::DataLossError("EIO");
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> GetLength() override { return uint64_t{1} << 20; }

  int failing_disk_flushes = 0;
  absl::Notification first_write_back_started;
  absl::Notification release;
  std::atomic<int> write_backs{0};
  std::atomic<int> disk_flushes{0};
};

class CountingDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "counting"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext&) const override {
    return absl::UnimplementedError("test driver");
  }
};

// A flush counted as a request on its loop, as BlockBackend counts the ones it submits.
aio::Task<absl::Status> CountedFlush(BlockDriverState* node) {
  aio::RequestScope request;
  co_return co_await node->CoFlush();
}

class FlushCoalescerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto owned = std::make_unique<CountingInstance>();
    instance_ = owned.get();
    node_.SetInstance(std::move(owned));
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    // One request counted on the loop for the whole test, so that with the flushes the
    // loop never serves a single request and never runs blocking work inline (it would
    // block in the first write-back and never start the flushes behind it).
    RunOnLoop([this] { pinned_.emplace(); });
  }
  void TearDown() override {
    RunOnLoop([this] { pinned_.reset(); });
    loop_.reset();
  }
  void RunOnLoop(absl::AnyInvocable<void() &&> work) {
    absl::Notification ran;
    loop_->context().Post([&] {
      std::move(work)();
      ran.Notify();
    });
    ran.WaitForNotification();
  }

  void Write() {
    uint8_t byte = 1;
    ASSERT_OK(node_.Pwrite(0, 1, &byte));
  }
  // Starts `n` flushes on the loop; returns once every one has run up to its first wait.
  void StartFlushes(int n) {
    absl::Notification started;
    loop_->context().Post([this, n, &started] {
      for (int i = 0; i < n; ++i) {
        results_.emplace_back();
        const size_t index = results_.size() - 1;
        aio::Start(CountedFlush(&node_), [this, index](absl::Status s) {
          absl::MutexLock lock(&mu_);
          results_[index] = std::move(s);
          ++finished_;
        });
      }
      started.Notify();
    });
    started.WaitForNotification();
  }
  void WaitForFlushes(size_t n) {
    absl::MutexLock lock(&mu_);
    wanted_ = n;
    mu_.Await(absl::Condition(this, &FlushCoalescerTest::EnoughFinished));
  }
  bool EnoughFinished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= wanted_; }

  CountingDriver driver_;
  BlockDriverState node_{driver_, "counting", OpenFlags{}};
  CountingInstance* instance_ = nullptr;
  std::unique_ptr<aio::LoopThread> loop_;
  std::optional<aio::RequestScope> pinned_;  // on the loop's thread only
  absl::Mutex mu_;
  std::vector<absl::Status> results_;  // by start order; filled on the loop
  size_t finished_ = 0, wanted_ = 0;
};

TEST_F(FlushCoalescerTest, FlushesIssuedTogetherAfterAWriteShareOneFlush) {
  Write();
  StartFlushes(32);
  instance_->first_write_back_started.WaitForNotification();
  instance_->release.Notify();
  WaitForFlushes(32);
  absl::MutexLock lock(&mu_);
  for (const absl::Status& s : results_) EXPECT_OK(s);
  EXPECT_EQ(instance_->write_backs.load(), 1);
  EXPECT_EQ(instance_->disk_flushes.load(), 1);
}

TEST_F(FlushCoalescerTest, AWriteCompletedDuringAFlushGetsAFlushOfItsOwn) {
  Write();
  StartFlushes(1);
  instance_->first_write_back_started.WaitForNotification();
  // The running flush read its generation before this write completed: it cannot cover
  // it, so the flush issued after it must run.
  Write();
  StartFlushes(4);
  instance_->release.Notify();
  WaitForFlushes(5);
  absl::MutexLock lock(&mu_);
  for (const absl::Status& s : results_) EXPECT_OK(s);
  EXPECT_EQ(instance_->write_backs.load(), 2);
  // The first flush's disk flush (generation read after its write-back, once the second
  // write had completed) already made the second write stable: the second one skips it.
  EXPECT_EQ(instance_->disk_flushes.load(), 1);
}

TEST_F(FlushCoalescerTest, AFailedFlushCoversNothing) {
  instance_->failing_disk_flushes = 1;
  Write();
  StartFlushes(3);
  instance_->first_write_back_started.WaitForNotification();
  instance_->release.Notify();
  WaitForFlushes(3);
  absl::MutexLock lock(&mu_);
  EXPECT_FALSE(results_[0].ok());
  // The waiters ran a flush of their own (one of them; it covered the other).
  EXPECT_OK(results_[1]);
  EXPECT_OK(results_[2]);
  EXPECT_EQ(instance_->write_backs.load(), 2);
  EXPECT_EQ(instance_->disk_flushes.load(), 2);
}

TEST_F(FlushCoalescerTest, AFlushIssuedAloneAlwaysRuns) {
  Write();
  StartFlushes(1);
  instance_->first_write_back_started.WaitForNotification();
  instance_->release.Notify();
  WaitForFlushes(1);
  // Nothing written since, but no flush ran alongside this one: it writes back (the disk
  // flush is skipped by the write generations, as before).
  StartFlushes(1);
  WaitForFlushes(2);
  absl::MutexLock lock(&mu_);
  EXPECT_OK(results_[1]);
  EXPECT_EQ(instance_->write_backs.load(), 2);
  EXPECT_EQ(instance_->disk_flushes.load(), 1);
}

}  // namespace
}  // namespace strata
