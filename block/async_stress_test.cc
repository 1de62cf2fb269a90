// strata: the asynchronous request path under load, checked against a model.
//
// Several queues (a loop thread each) keep many requests in flight on one image: random
// reads, writes, zero writes, discards and flushes. Each queue owns every Q-th 64 KiB
// block, and a block has at most one request in flight, so the expected content of every
// byte is known (the model); reads check it when they complete. Afterwards the image is
// closed, `qemu-img check` must find nothing, and `qemu-img compare` against a raw file
// holding the model must find the images identical: QEMU is the judge of the result.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kBlock = 64 * 1024;
constexpr uint64_t kBlocks = 256;  // a 16 MiB image
constexpr uint64_t kImageBytes = kBlock * kBlocks;

struct Params {
  aio::Engine engine;
  std::string format;
  bool direct;
  int queues;
  // qemu-img create -o for qcow2 ("" for none); "extended_l2=on" runs the subcluster
  // allocation path.
  std::string create_options = "";
  // Requests are whole units of this many bytes at offsets that are multiples of it; 0
  // for the node's own alignment (4096 with O_DIRECT, else 512). 1 with O_DIRECT sends
  // unaligned requests, padded by read-modify-write on the loop.
  uint64_t unit = 0;
  // Open options added to the qcow2 node (",l2-cache-size=8k": two 4 KiB tables of
  // cache, so L2 tables are evicted and loaded again while requests run on every queue).
  std::string open_options = "";
};

std::string ParamName(const ::testing::TestParamInfo<Params>& info) {
  std::string name = std::string(aio::EngineName(info.param.engine)) + "_" +
                     info.param.format + (info.param.direct ? "_direct" : "_writeback") +
                     "_q" + std::to_string(info.param.queues);
  if (info.param.create_options.find("extended_l2") != std::string::npos) name += "_extended_l2";
  if (!info.param.open_options.empty()) name += "_small_l2_cache";
  if (info.param.unit != 0) name += "_unit" + std::to_string(info.param.unit);
  return name;
}

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One queue's client: `depth` request slots, each with its own buffer, issuing `total`
// random requests on the blocks this queue owns. Runs only on its loop's thread.
class Client {
 public:
  Client(BlockBackend* blk, aio::IoContext* loop, int index, int queues, int depth, int total,
         uint8_t* model, uint64_t alignment)
      : blk_(blk), loop_(loop), index_(index), queues_(queues), total_(total), model_(model),
        alignment_(alignment), rng_(1234 + index) {
    for (int i = 0; i < depth; ++i) buffers_.emplace_back(kBlock, 4096);
    busy_.assign(kBlocks, false);
  }

  // Starts the first `depth` requests (on the loop thread).
  void Begin() {
    for (size_t slot = 0; slot < buffers_.size(); ++slot) Issue(slot);
  }

  absl::Notification finished;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  int reads = 0, writes = 0, zeroes = 0, discards = 0, flushes = 0;

 private:
  uint64_t PickBlock() {
    for (;;) {
      uint64_t b = rng_() % (kBlocks / queues_) * queues_ + index_;
      if (!busy_[b]) return b;
    }
  }

  void Issue(size_t slot) {
    if (issued_ == total_) {
      if (completed_ == total_) finished.Notify();
      return;
    }
    ++issued_;
    const uint64_t block = PickBlock();
    busy_[block] = true;
    // A random aligned range inside the block.
    const uint64_t units = kBlock / alignment_;
    const uint64_t first = rng_() % units;
    const uint64_t count = 1 + rng_() % (units - first);
    const uint64_t offset = block * kBlock + first * alignment_;
    const uint64_t bytes = count * alignment_;
    uint8_t* buf = buffers_[slot].data();
    BlockBackend::Request r;
    r.offset = offset;
    r.bytes = bytes;
    const int kind = rng_() % 100;
    if (kind < 45) {
      r.op = BlockBackend::Op::kRead;
      ++reads;
    } else if (kind < 85) {
      r.op = BlockBackend::Op::kWrite;
      const uint8_t seed = static_cast<uint8_t>(rng_());
      for (uint64_t i = 0; i < bytes; ++i) buf[i] = static_cast<uint8_t>(seed + i * 7);
      std::memcpy(model_ + offset, buf, bytes);
      ++writes;
    } else if (kind < 93) {
      r.op = BlockBackend::Op::kWriteZeroes;
      std::memset(model_ + offset, 0, bytes);
      ++zeroes;
    } else if (kind < 97) {
      // Whole blocks (= clusters): both drivers then read zeroes afterwards.
      r.op = BlockBackend::Op::kDiscard;
      r.offset = block * kBlock;
      r.bytes = kBlock;
      std::memset(model_ + r.offset, 0, kBlock);
      ++discards;
    } else {
      r.op = BlockBackend::Op::kFlush;
      ++flushes;
    }
    if (r.op == BlockBackend::Op::kRead || r.op == BlockBackend::Op::kWrite) {
      r.qiov = IoVector(buf, bytes);
    }
    const BlockBackend::Op op = r.op;
    const uint64_t at = r.offset, len = r.bytes;
    blk_->Submit(*loop_, std::move(r), [this, slot, block, op, at, len, buf](absl::Status s) {
      EXPECT_EQ(aio::IoContext::Current(), loop_);
      if (!s.ok()) {
        ++failures;
        ADD_FAILURE() << "request failed: " << s;
      } else if (op == BlockBackend::Op::kRead && std::memcmp(buf, model_ + at, len) != 0) {
        ++mismatches;
      }
      busy_[block] = false;
      ++completed_;
      Issue(slot);
    });
  }

  BlockBackend* const blk_;
  aio::IoContext* const loop_;
  const int index_, queues_, total_;
  uint8_t* const model_;
  const uint64_t alignment_;
  std::mt19937_64 rng_;
  std::vector<AlignedBuffer> buffers_;
  std::vector<bool> busy_;
  int issued_ = 0, completed_ = 0;
};

class AsyncStressTest : public ::testing::TestWithParam<Params> {};

TEST_P(AsyncStressTest, ManyQueuesAgreeWithTheModelAndWithQemu) {
  const Params p = GetParam();
  const std::string dir = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  const std::string image = dir + "/stress_" + ParamName({p, 0}) + "." + p.format;
  const std::string model_file = dir + "/stress_" + ParamName({p, 0}) + ".model";
  const std::string options = p.create_options.empty() ? "" : "-o " + p.create_options + " ";
  ASSERT_EQ(Shell("qemu-img create -q -f " + p.format + " " + options + image + " " +
                  std::to_string(kImageBytes)),
            0);
  std::vector<uint8_t> model(kImageBytes, 0);
  {
    ImageOpenRequest req;
    if (p.open_options.empty()) {
      req.filename = image;
      req.format = p.format;
    } else {
      req.image_opts = true;
      req.filename = "driver=" + p.format + ",file.filename=" + image + p.open_options;
    }
    req.flags.cache.direct = p.direct;
    req.flags.discard_unmap = true;
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
    const uint64_t alignment = p.unit != 0 ? p.unit : p.direct ? 4096 : 512;
    std::vector<std::unique_ptr<aio::LoopThread>> loops;
    std::vector<std::unique_ptr<Client>> clients;
    for (int q = 0; q < p.queues; ++q) {
      absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
          aio::LoopThread::Start({p.engine, 64});
      ASSERT_TRUE(loop.ok()) << loop.status();
      loops.push_back(*std::move(loop));
      clients.push_back(std::make_unique<Client>(&blk, &loops.back()->context(), q, p.queues,
                                                 /*depth=*/32, /*total=*/3000, model.data(),
                                                 alignment));
    }
    for (int q = 0; q < p.queues; ++q) {
      Client* c = clients[q].get();
      loops[q]->context().Post([c] { c->Begin(); });
    }
    for (auto& c : clients) {
      ASSERT_TRUE(c->finished.WaitForNotificationWithTimeout(absl::Seconds(60)));
      EXPECT_EQ(c->mismatches.load(), 0);
      EXPECT_EQ(c->failures.load(), 0);
      EXPECT_GT(c->reads, 0);
      EXPECT_GT(c->writes, 0);
      EXPECT_GT(c->zeroes + c->discards + c->flushes, 0);
    }
    loops.clear();
    // Everything again through the synchronous path.
    std::vector<uint8_t> back(kImageBytes);
    ASSERT_OK(blk.Pread(0, kImageBytes, back.data()));
    EXPECT_TRUE(back == model);
    ASSERT_OK(blk.Close());
  }
  int fd = ::open(model_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, model.data(), model.size()), static_cast<ssize_t>(model.size()));
  ::close(fd);
  if (p.format == "qcow2") {
    EXPECT_EQ(Shell("qemu-img check -q " + image), 0);
  }
  EXPECT_EQ(Shell("qemu-img compare -q -f raw -F " + p.format + " " + model_file + " " + image),
            0);
  ::unlink(image.c_str());
  ::unlink(model_file.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, AsyncStressTest,
    ::testing::Values(Params{aio::Engine::kIoUring, "qcow2", false, 2},
                      Params{aio::Engine::kIoUring, "qcow2", true, 2},
                      Params{aio::Engine::kThreads, "qcow2", false, 2},
                      Params{aio::Engine::kIoUring, "raw", false, 2},
                      Params{aio::Engine::kIoUring, "raw", true, 1},
                      Params{aio::Engine::kThreads, "raw", true, 2},
                      Params{aio::Engine::kIoUring, "qcow2", false, 4},
                      Params{aio::Engine::kIoUring, "qcow2", false, 2, "extended_l2=on"},
                      Params{aio::Engine::kIoUring, "qcow2", true, 2, "extended_l2=on", 1},
                      Params{aio::Engine::kIoUring, "raw", true, 2, "", 1},
                      Params{aio::Engine::kIoUring, "qcow2", false, 4, "cluster_size=4096", 0,
                             ",l2-cache-size=8k"}),
    ParamName);

}  // namespace
}  // namespace strata
