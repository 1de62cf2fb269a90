// strata: the byte ranges of a node's read-modify-write requests, kept apart.
//
// A write that is not aligned to the node's request alignment reads the blocks around it
// and writes them back whole. Two such writes touching one block would each write back
// the other's old bytes, so a write holds its range, widened to whole blocks, for as long
// as it runs, and overlapping writes take turns. Aligned writes hold their range too, so
// that they cannot slip between another write's read and write-back.
//
// Threads and coroutines share one set: a thread waits blocked (Begin), a coroutine on a
// loop parks and its loop goes on serving others (Released); End wakes both kinds.
#ifndef STRATA_BLOCK_SERIALISED_RANGES_H_
#define STRATA_BLOCK_SERIALISED_RANGES_H_

#include <coroutine>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "aio/io_context.h"

namespace strata {

// A set of disjoint held ranges [begin, end). Thread-safe. Every range passed in is
// already widened by the caller (whole blocks); End must name exactly a range that was
// begun and not yet ended.
class SerialisedRanges {
 public:
  // Blocks the calling thread until no held range overlaps [begin, end), then holds it.
  void Begin(uint64_t begin, uint64_t end);
  // Holds [begin, end) if nothing overlaps it; false (nothing held) otherwise.
  bool TryBegin(uint64_t begin, uint64_t end);
  // Releases a held range and lets every parked coroutine look again.
  void End(uint64_t begin, uint64_t end);

  // What a coroutine awaits after TryBegin failed:
  //   while (!ranges.TryBegin(b, e)) co_await ranges.Released(b, e);
  // On a loop it parks until some held range ends (resuming on the same loop), or does not
  // suspend if [begin, end) is already free. Off a loop it blocks the thread until then.
  struct AwaitRelease {
    SerialisedRanges* self;
    uint64_t begin, end;
    bool await_ready() noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() noexcept {}
  };
  AwaitRelease Released(uint64_t begin, uint64_t end) { return {this, begin, end}; }

 private:
  // "[begin, end) overlaps no held range" as an absl::Condition. Await evaluates it with
  // mu_ held, which the analysis cannot see through the condition's function pointer.
  struct RangeFree {
    const SerialisedRanges* ranges;
    uint64_t begin, end;
    bool Holds() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return ranges->FreeLocked(begin, end); }
  };
  bool FreeLocked(uint64_t begin, uint64_t end) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  struct Range {
    uint64_t begin, end;
  };
  struct Waiter {
    aio::IoContext* context;
    std::coroutine_handle<> handle;
  };

  absl::Mutex mu_;
  std::vector<Range> held_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata

#endif  // STRATA_BLOCK_SERIALISED_RANGES_H_
