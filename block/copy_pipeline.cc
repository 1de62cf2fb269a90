// strata: the copy pipeline (see copy_pipeline.h).
#include "block/copy_pipeline.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace strata {
namespace {

// "It is chunk `index`'s turn" as an absl::Condition.
struct TurnIs {
  const uint64_t* turn;
  uint64_t index;
  bool Ready() const { return *turn == index; }
};

}  // namespace

absl::Status RunCopyPipeline(uint64_t chunks, int workers, bool in_order, CopyChunkFn fn) {
  absl::Mutex mu;
  uint64_t next = 0;  // next chunk to hand out
  uint64_t turn = 0;  // with in_order: the chunk allowed past wait_turn
  absl::Status first_error;          // of the lowest-numbered chunk that failed
  uint64_t first_error_index = UINT64_MAX;
  auto worker = [&] {
    for (;;) {
      uint64_t index;
      {
        absl::MutexLock lock(&mu);
        if (next >= chunks || !first_error.ok()) return;
        index = next++;
      }
      bool waited = false;
      auto wait_turn = [&] {
        if (!in_order || waited) return;
        waited = true;
        const TurnIs ready{&turn, index};
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(&ready, &TurnIs::Ready));
      };
      absl::Status s = fn(index, wait_turn);
      wait_turn();  // a chunk that wrote nothing still hands the turn on in order
      absl::MutexLock lock(&mu);
      if (!s.ok() && index < first_error_index) {
        first_error = s;
        first_error_index = index;
      }
      if (in_order) turn = index + 1;
    }
  };
  const int n = static_cast<int>(std::clamp<uint64_t>(chunks, 1, std::max(workers, 1)));
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return first_error;
}

}  // namespace strata
