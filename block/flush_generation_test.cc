// strata: a flush covers exactly the writes that completed before it was issued.
//
// A node skips the disk flush when nothing was written since the last one. The count it
// compares must move when a write completes, not when it starts: otherwise a flush that
// runs while a write is still on its way records that write as flushed, and the flush
// after the write completes skips fdatasync although the data was never made stable.
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "block/driver.h"
#include "block/driver_instance.h"
#include "block/node.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

// A protocol driver whose writes wait for `release` (after saying they started) and that
// counts disk flushes.
class GatedInstance : public DriverInstance {
 public:
  absl::Status Preadv(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    write_started.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  }
  absl::Status FlushToDisk() override {
    ++disk_flushes;
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> GetLength() override { return uint64_t{1} << 20; }

  absl::Notification write_started;
  absl::Notification release;
  std::atomic<int> disk_flushes{0};
};

class GatedDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "gated"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext&) const override {
    return absl::UnimplementedError("test driver");
  }
};

TEST(FlushGenerationTest, FlushDuringAWriteDoesNotCountTheWriteAsFlushed) {
  GatedDriver driver;
  BlockDriverState node(driver, "gated", OpenFlags{});
  auto owned = std::make_unique<GatedInstance>();
  GatedInstance* gated = owned.get();
  node.SetInstance(std::move(owned));

  uint8_t byte = 1;
  std::thread writer([&] { EXPECT_OK(node.Pwrite(0, 1, &byte)); });
  gated->write_started.WaitForNotification();
  // The write is inside the driver, not complete: this flush cannot cover it.
  ASSERT_OK(node.Flush());
  const int before = gated->disk_flushes.load();
  gated->release.Notify();
  writer.join();
  // The write has completed since the last flush: this one must reach the disk.
  ASSERT_OK(node.Flush());
  EXPECT_EQ(gated->disk_flushes.load(), before + 1);
}

TEST(FlushGenerationTest, FlushWithNothingWrittenSkipsTheDisk) {
  GatedDriver driver;
  BlockDriverState node(driver, "gated", OpenFlags{});
  auto owned = std::make_unique<GatedInstance>();
  GatedInstance* gated = owned.get();
  node.SetInstance(std::move(owned));
  gated->release.Notify();
  uint8_t byte = 1;
  ASSERT_OK(node.Pwrite(0, 1, &byte));
  ASSERT_OK(node.Flush());
  ASSERT_OK(node.Flush());
  EXPECT_EQ(gated->disk_flushes.load(), 1);
}

}  // namespace
}  // namespace strata
