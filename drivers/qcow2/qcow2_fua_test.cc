// strata qcow2: a request with FUA is stable when it completes. qcow2 sends its data down
// without FUA, so it owes the metadata write-back and the flushes afterwards; on the
// coroutine path (native writes and zero writes) and on the synchronous path alike.
//
// The image lives on a SimDisk (crash_sim.h), whose volatile write cache holds every
// write since the last flush. One request at a time; after each FUA request completes,
// nothing may be left in that cache: data, L2 entries, refcounts and all. Before
// CoFlushForFua, a FUA zero write left its L2 change (and the FUA write its file
// flush) in the cache.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/crash_sim.h"
#include "block/testing/shell.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using testing_shell::Shell;
using testing_shell::TempDir;

constexpr uint64_t kCluster = 64 * 1024;

struct Step {
  const char* what;
  IoOp op;
  uint64_t offset, bytes;
};

// Allocating and in-place writes, whole-cluster zero writes (native) over nothing and
// over data, and a partial one (the synchronous path on the pool).
const Step kSteps[] = {
    {"allocating write", IoOp::kWrite, 0, 4096},
    {"in-place write", IoOp::kWrite, 8192, 4096},
    {"allocating partial write", IoOp::kWrite, 16 * kCluster + 512, 1024},
    {"zero write over nothing", IoOp::kWriteZeroes, 32 * kCluster, kCluster},
    {"zero write over data", IoOp::kWriteZeroes, 0, kCluster},
    {"partial zero write", IoOp::kWriteZeroes, 16 * kCluster + 100, 300},
    {"in-place write after zeroes", IoOp::kWrite, 16 * kCluster, 4096},
};

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

class FuaTest : public ::testing::TestWithParam<bool> {};

TEST_P(FuaTest, NothingStaysInTheVolatileCache) {
  const bool on_loop = GetParam();
  const std::string image = TempDir() + "/fua" + std::to_string(on_loop) + ".qcow2";
  ASSERT_EQ(Shell("qemu-img create -q -f qcow2 " + image + " 16M"), 0);
  auto disk = std::make_shared<testing::SimDisk>(ReadFile(image));
  const std::string name = on_loop ? "fua_loop" : "fua_sync";
  testing::SimDisk::Register(name, disk);
  ImageOpenRequest open;
  open.filename =
      "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"crash-sim\",\"name\":\"" + name + "\"}}";
  ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(open));
  BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
      aio::LoopThread::Start({aio::Engine::kIoUring, 8});
  ASSERT_TRUE(loop.ok()) << loop.status();
  std::vector<uint8_t> data(kCluster, 0x5c);
  for (const Step& step : kSteps) {
    BlockBackend::Request r;
    r.op = step.op;
    r.offset = step.offset;
    r.bytes = step.bytes;
    r.flags = kReqFua;
    if (step.op == IoOp::kWrite) r.qiov = IoVector(data.data(), step.bytes);
    absl::Status status;
    if (on_loop) {
      absl::Notification done;
      blk.Submit((*loop)->context(), std::move(r), [&](absl::Status s) {
        status = s;
        done.Notify();
      });
      done.WaitForNotification();
    } else if (step.op == IoOp::kWrite) {
      status = blk.Pwrite(step.offset, step.bytes, data.data(), kReqFua);
    } else {
      status = blk.PwriteZeroes(step.offset, step.bytes, kReqFua);
    }
    ASSERT_OK(status) << step.what;
    EXPECT_EQ(disk->PendingWrites(), 0u) << step.what << " left writes in the volatile cache";
  }
  loop->reset();
  ASSERT_OK(blk.Close());
  testing::SimDisk::Unregister(name);
  ::unlink(image.c_str());
}

INSTANTIATE_TEST_SUITE_P(Paths, FuaTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "coroutine" : "synchronous");
                         });

}  // namespace
}  // namespace strata
