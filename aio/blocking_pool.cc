// strata aio: the blocking pool (see blocking_pool.h).
#include "aio/blocking_pool.h"

#include <atomic>
#include <cstdlib>
#include <algorithm>
#include <memory>

namespace strata::aio {
namespace {

std::atomic<int> g_shared_size{0};  // 0: DefaultSize()
std::atomic<bool> g_shared_created{false};

}  // namespace

BlockingPool::BlockingPool(int base_threads, int max_threads)
    : base_(std::max(base_threads, 1)), max_(std::max(max_threads, std::max(base_threads, 1))) {}

BlockingPool::~BlockingPool() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  // The threads are detached: wait until every one has left (they touch nothing of the
  // pool after releasing mu_ for the last time).
  mu_.Await(absl::Condition(
      +[](BlockingPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->alive_ == 0; },
      this));
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
  // Released on purpose: joining at exit could wait on work that never ends (a request
  // parked at a breakpoint).
  static BlockingPool& pool = []() -> BlockingPool& {
    g_shared_created.store(true);
    int n = g_shared_size.load();
    n = n > 0 ? n : DefaultSize();
    return *std::make_unique<BlockingPool>(n, std::max(n, 64)).release();
  }();
  return pool;
}

BlockingPool& BlockingPool::SharedIo() {
  static BlockingPool& pool = []() -> BlockingPool& {
    return *std::make_unique<BlockingPool>(8, 64).release();
  }();
  return pool;
}

int BlockingPool::size() {
  absl::MutexLock lock(&mu_);
  return alive_;
}

uint64_t BlockingPool::runs() {
  absl::MutexLock lock(&mu_);
  return runs_;
}

void BlockingPool::Run(absl::AnyInvocable<void() &&> work) {
  bool add = false, persistent = false;
  {
    absl::MutexLock lock(&mu_);
    ++runs_;
    queue_.push_back(std::move(work));
    // Threads start when work needs them: the first `base_` stay, later ones leave when
    // idle.
    if (idle_ < static_cast<int>(queue_.size()) && alive_ < max_) {
      persistent = alive_ < base_;
      ++alive_;
      add = true;
    }
  }
  if (add) std::thread([this, persistent] { WorkerLoop(!persistent); }).detach();
}

void BlockingPool::WorkerLoop(bool extra) {
  for (;;) {
    absl::AnyInvocable<void() &&> work;
    {
      absl::MutexLock lock(&mu_);
      ++idle_;
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      bool woke = true;
      if (extra) {
        woke = mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(5));
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      --idle_;
      if (queue_.empty() && (stopping_ || !woke)) {
        --alive_;
        return;
      }
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(work)();
  }
}

}  // namespace strata::aio
