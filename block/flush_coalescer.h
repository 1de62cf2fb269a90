// strata: one flush at a time per node, and flushes that waited for it skip their own
// when it already covered them.
//
// A guest in writethrough mode (or one that flushes after every write) issues as many
// flushes as writes, all at once. Each flush writes back the driver's caches (for qcow2,
// dirty L2 and refcount tables, work that runs on the blocking pool) and syncs the disk.
// Run side by side, N flushes cost N write-backs and N syncs, and as many pool threads.
// Run one at a time, a flush that waited behind another is covered by it if that other
// flush started after every write the waiter must cover had completed; then it has
// nothing left to do. QEMU serialises a node's flushes the same way.
//
// Write generations (BlockDriverState::write_generation_) tell which writes a flush
// covers: a flush that read generation G before writing back anything covers every write
// counted in G, once it (with its children) has succeeded.
#ifndef STRATA_BLOCK_FLUSH_COALESCER_H_
#define STRATA_BLOCK_FLUSH_COALESCER_H_

#include <coroutine>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "aio/io_context.h"
#include "aio/task.h"

namespace strata {

// Serialises the coroutine flushes of one node. Thread-safe: coroutines of several loops
// may flush the same node; each waiter resumes on the loop it waited on.
class FlushCoalescer {
 public:
  // The right to flush, held by the one coroutine flushing now. Ending it (with or
  // without Succeeded) lets the next waiter in.
  class Turn {
   public:
    Turn() = default;
    Turn(Turn&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Turn& operator=(Turn&&) = delete;
    ~Turn();
    // The flush that read `generation` before it wrote back anything has succeeded, its
    // children included: waiters with writes up to `generation` need no flush of their own.
    void Succeeded(uint64_t generation);
    bool held() const { return owner_ != nullptr; }

   private:
    friend class FlushCoalescer;
    explicit Turn(FlushCoalescer* owner) : owner_(owner) {}
    FlushCoalescer* owner_ = nullptr;
  };

  // Called on a loop by a flush that must cover every write counted in `generation`
  // (read at its start). Returns a held Turn once no other flush runs, or an empty one if
  // it had to wait and a flush that succeeded meanwhile covers `generation`. A flush that
  // finds none running always runs (the covering rests on both being in flight at once).
  aio::Task<Turn> CoTakeTurn(uint64_t generation);

 private:
  struct Waiter {
    aio::IoContext* context;
    std::coroutine_handle<> handle;
  };
  // Parks the awaiting coroutine until the running flush ends; does not suspend (and
  // takes the turn) if none runs.
  struct AwaitTurn {
    FlushCoalescer* self;
    bool await_ready() noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() noexcept {}
  };
  bool CoveredLocked(uint64_t generation) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return covered_through_.has_value() && *covered_through_ >= generation;
  }
  void EndTurn();

  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  // The highest generation a successful flush covered, once one has succeeded.
  std::optional<uint64_t> covered_through_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // What the running flush covered, set by Turn::Succeeded; read when its turn ends.
  std::optional<uint64_t> turn_covers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata

#endif  // STRATA_BLOCK_FLUSH_COALESCER_H_
