// strata qcow2: a flush on a loop writes the metadata back on that loop (refcount blocks,
// the disk flush ordering them, L2 tables, the L1 table), with qcow2's lock held across
// the writes and no pool thread, and what it writes is complete: right after the flush,
// with the image still open, `qemu-img check` finds nothing and `qemu-img compare` reads
// the data back. A flush with clusters to free frees them on the loop too (their
// refcount blocks are cached) and discards them there; before, it ran the synchronous
// write-back on the pool. Writes that flush after every allocation (writethrough) fill
// the refcount pool on the loop too. (The loop is kept busy during the flushes, as under
// load: a loop serving a single request may run blocking steps inline instead.)
#include <sys/wait.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "aio/io_context.h"
#include "aio/offload.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/pattern_runner.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kImageBytes = uint64_t{64} << 20;
constexpr int kWrites = 256;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TempDir() { return getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp"; }

// Every write in a cluster of its own, spread over the image (several L2 ranges).
uint64_t OffsetOf(int i) { return static_cast<uint64_t>(i) * (kCluster + 4096) % kImageBytes; }

// Runs one request on the loop and waits for it.
absl::Status SubmitAndWait(BlockBackend& blk, aio::IoContext& loop, IoRequest request) {
  absl::Status result;
  absl::Notification done;
  blk.Submit(loop, std::move(request), [&](absl::Status s) {
    result = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

IoRequest Request(IoOp op, uint64_t offset = 0, uint64_t bytes = 0) {
  IoRequest r;
  r.op = op;
  r.offset = offset;
  r.bytes = bytes;
  return r;
}

class AsyncFlushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = TempDir() + "/flush.qcow2";
    model_ = TempDir() + "/flush_model.raw";
    ASSERT_EQ(Shell("qemu-img create -q -f qcow2 " + image_ + " " +
                    std::to_string(kImageBytes)),
              0);
    ASSERT_EQ(Shell("qemu-img create -q -f raw " + model_ + " " + std::to_string(kImageBytes)),
              0);
    ImageOpenRequest req;
    req.filename = image_;
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    blk_ = std::make_unique<BlockBackend>(std::move(opened.root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }

  void TearDown() override {
    loop_.reset();
    if (blk_) {
      EXPECT_OK(blk_->Close());
    }
    ::unlink(image_.c_str());
    ::unlink(model_.c_str());
  }

  // Allocating writes on the loop, the same bytes into the model with qemu-io.
  void WriteAll() {
    PatternRunner::Options run{.requests = kWrites, .depth = 32, .bytes = 4096,
                               .offset_of = OffsetOf};
    PatternRunner writer(blk_.get(), &loop_->context(), run);
    writer.Run();
    ASSERT_EQ(writer.failures(), 0);
    std::string script;
    for (int i = 0; i < kWrites; ++i) {
      script += " -c 'write -q -P " + std::to_string(PatternRunner::PatternOf(i)) + " " +
                std::to_string(OffsetOf(i)) + " 4096'";
    }
    ASSERT_EQ(Shell("qemu-io -f raw" + script + " " + model_), 0);
  }

  // Counts one more request on the loop while `busy` (on the loop's thread): with two,
  // nothing runs inline on it, so a step that needs the pool shows as an offload.
  void SetLoopBusy(bool busy) {
    absl::Notification done;
    loop_->context().Post([&] {
      if (busy) {
        pinned_.emplace();
      } else {
        pinned_.reset();
      }
      done.Notify();
    });
    done.WaitForNotification();
  }

  // What is on disk now, read by QEMU beside the open image (-U: strata holds the lock).
  void ExpectOnDiskComplete() {
    EXPECT_EQ(Shell("qemu-img check -q -U -f qcow2 " + image_), 0);
    EXPECT_EQ(Shell("qemu-img compare -q -U -f raw -F qcow2 " + model_ + " " + image_), 0);
  }

  std::string image_, model_;
  std::unique_ptr<BlockBackend> blk_;
  std::unique_ptr<aio::LoopThread> loop_;
  std::optional<aio::RequestScope> pinned_;  // on the loop's thread only
};

TEST_F(AsyncFlushTest, WritesMetadataBackOnTheLoop) {
  WriteAll();
  SetLoopBusy(true);
  const uint64_t before = aio::OffloadedWork::Total();
  ASSERT_OK(SubmitAndWait(*blk_, loop_->context(), Request(IoOp::kFlush)));
  EXPECT_EQ(aio::OffloadedWork::Total() - before, 0u) << "the flush went to the pool";
  SetLoopBusy(false);
  ExpectOnDiskComplete();
}

TEST_F(AsyncFlushTest, AFlushWithClustersToFreeIsComplete) {
  WriteAll();
  ASSERT_OK(SubmitAndWait(*blk_, loop_->context(), Request(IoOp::kFlush)));
  // A discard of written clusters queues them for freeing after the next write-back.
  ASSERT_OK(SubmitAndWait(*blk_, loop_->context(),
                          Request(IoOp::kDiscard, 0, 4 * kCluster)));
  ASSERT_EQ(Shell("qemu-io -f raw -c 'write -q -z 0 " + std::to_string(4 * kCluster) + "' " +
                  model_),
            0);
  SetLoopBusy(true);
  const uint64_t before = aio::OffloadedWork::Total();
  ASSERT_OK(SubmitAndWait(*blk_, loop_->context(), Request(IoOp::kFlush)));
  EXPECT_EQ(aio::OffloadedWork::Total() - before, 0u) << "the frees went to the pool";
  SetLoopBusy(false);
  ExpectOnDiskComplete();  // a cluster left unfreed would be a leak
}

// Each allocating write followed by a flush, as writethrough does: after two such
// flushes the refcount pool is filled (clusters counted ahead, so later allocations
// need no ordering flush). The fill finds its clusters in cached refcount blocks and
// runs on the loop.
TEST_F(AsyncFlushTest, WritesFlushedOneByOneFillTheRefcountPoolOnTheLoop) {
  SetLoopBusy(true);
  const uint64_t before = aio::OffloadedWork::Total();
  std::string script;
  for (int i = 0; i < 64; ++i) {
    IoRequest write = Request(IoOp::kWrite, OffsetOf(i), 4096);
    std::vector<uint8_t> data(4096, static_cast<uint8_t>(PatternRunner::PatternOf(i)));
    write.qiov = IoVector(data.data(), data.size());
    ASSERT_OK(SubmitAndWait(*blk_, loop_->context(), std::move(write)));
    ASSERT_OK(SubmitAndWait(*blk_, loop_->context(), Request(IoOp::kFlush)));
    script += " -c 'write -q -P " + std::to_string(PatternRunner::PatternOf(i)) + " " +
              std::to_string(OffsetOf(i)) + " 4096'";
  }
  const uint64_t offloads = aio::OffloadedWork::Total() - before;
  SetLoopBusy(false);
  EXPECT_LE(offloads, 2u) << "the pool fills went to the pool";
  ASSERT_EQ(Shell("qemu-io -f raw" + script + " " + model_), 0);
  ExpectOnDiskComplete();
}

}  // namespace
}  // namespace strata
