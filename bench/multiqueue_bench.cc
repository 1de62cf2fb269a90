// strata multi-queue benchmark: one image served by N loops (one per queue, as a VMM with
// N virtio queues would use it), each keeping `depth` random 4 KiB reads in flight through
// BlockBackend::Submit. Prints the IOPS of the whole run. Also a small example of the
// embedding API: open, start loops, submit with callbacks, close.
//
//   multiqueue_bench [--queues N] [--depth D] [--count C] [--engine io_uring|threads] IMAGE
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"

namespace strata {
namespace {

// One queue: `depth` slots on one loop, each issuing its next read when one completes.
class Queue {
 public:
  Queue(BlockBackend* blk, aio::IoContext* loop, int depth, int64_t count, uint64_t blocks,
        int seed)
      : blk_(blk), loop_(loop), count_(count), blocks_(blocks), rng_(seed) {
    for (int i = 0; i < depth; ++i) buffers_.emplace_back(4096, 4096);
  }
  void Begin() {
    for (size_t s = 0; s < buffers_.size(); ++s) Issue(s);
  }
  absl::Notification done;
  std::atomic<bool> failed{false};

 private:
  void Issue(size_t slot) {
    if (issued_ == count_) return;
    ++issued_;
    BlockBackend::Request r;
    r.offset = (rng_() % blocks_) * 4096;
    r.qiov = buffers_[slot].AsIoVector();
    blk_->Submit(*loop_, std::move(r), [this, slot](absl::Status s) {
      if (!s.ok()) failed = true;
      if (++completed_ == count_) done.Notify();
      Issue(slot);
    });
  }
  BlockBackend* const blk_;
  aio::IoContext* const loop_;
  const int64_t count_;
  const uint64_t blocks_;
  std::mt19937_64 rng_;
  std::vector<AlignedBuffer> buffers_;
  int64_t issued_ = 0, completed_ = 0;
};

int Main(int argc, char** argv) {
  int queues = 1, depth = 64;
  int64_t count = 400000;
  std::string engine_name = "io_uring", image;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--queues") queues = std::atoi(value());
    else if (a == "--depth") depth = std::atoi(value());
    else if (a == "--count") count = std::atoll(value());
    else if (a == "--engine") engine_name = value();
    else image = a;
  }
  absl::StatusOr<aio::Engine> engine = aio::ParseEngine(engine_name);
  if (image.empty() || queues < 1 || depth < 1 || !engine.ok()) {
    std::fprintf(stderr, "usage: multiqueue_bench [--queues N] [--depth D] [--count C] "
                         "[--engine io_uring|threads] IMAGE\n");
    return 2;
  }
  ImageOpenRequest req;
  req.filename = image;
  absl::StatusOr<OpenedImage> opened = OpenImage(req);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", std::string(opened.status().message()).c_str());
    return 1;
  }
  BlockBackend blk(std::move(opened->root), false);
  const uint64_t blocks = blk.GetLength().value_or(4096) / 4096;
  std::vector<std::unique_ptr<aio::LoopThread>> loops;
  std::vector<std::unique_ptr<Queue>> qs;
  for (int q = 0; q < queues; ++q) {
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop = aio::LoopThread::Start({*engine});
    if (!loop.ok()) {
      std::fprintf(stderr, "%s\n", std::string(loop.status().message()).c_str());
      return 1;
    }
    loops.push_back(*std::move(loop));
    qs.push_back(std::make_unique<Queue>(&blk, &loops.back()->context(), depth,
                                         count / queues, blocks, 7 + q));
  }
  auto start = std::chrono::steady_clock::now();
  for (int q = 0; q < queues; ++q) {
    Queue* queue = qs[q].get();
    loops[q]->context().Post([queue] { queue->Begin(); });
  }
  bool failed = false;
  for (auto& q : qs) {
    q->done.WaitForNotification();
    failed = failed || q->failed;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loops.clear();
  std::printf("queues=%d depth=%d requests=%lld seconds=%.3f iops=%.0f\n", queues, depth,
              static_cast<long long>(count / queues * queues), secs,
              (count / queues * queues) / secs);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) { return strata::Main(argc, argv); }
