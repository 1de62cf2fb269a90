// strata aio: the blocking pool (see blocking_pool.h).
#include "aio/blocking_pool.h"

#include <atomic>
#include <cstdlib>
#include <memory>

namespace strata::aio {
namespace {

std::atomic<int> g_shared_size{0};  // 0: DefaultSize()
std::atomic<bool> g_shared_created{false};

}  // namespace

BlockingPool::BlockingPool(int threads) {
  if (threads < 1) threads = 1;
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

BlockingPool::~BlockingPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

int BlockingPool::DefaultSize() {
  if (const char* env = std::getenv("STRATA_AIO_POOL_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 256) return n;
  }
  return 8;
}

bool BlockingPool::SetSharedSize(int threads) {
  if (g_shared_created.load()) return false;
  g_shared_size.store(threads);
  return true;
}

BlockingPool& BlockingPool::Shared() {
  // Never destroyed: detached work may still be queued when static destructors run.
  // released on purpose: joining at exit could wait on work that never ends (a request
  // parked at a breakpoint).
  static BlockingPool& pool = [] () -> BlockingPool& {
    g_shared_created.store(true);
    int n = g_shared_size.load();
    return *std::make_unique<BlockingPool>(n > 0 ? n : DefaultSize()).release();
  }();
  return pool;
}

void BlockingPool::Run(absl::AnyInvocable<void() &&> work) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(work));
}

void BlockingPool::WorkerLoop() {
  for (;;) {
    absl::AnyInvocable<void() &&> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](BlockingPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, nothing left
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(work)();
  }
}

}  // namespace strata::aio
