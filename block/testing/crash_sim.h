// strata testing: a crash simulator. `SimDisk` is an in-memory disk with a volatile write
// cache: everything written before the last flush is durable, the writes after it are
// not. `CrashState` builds what the disk could hold after a power loss at this instant:
// the durable bytes plus any subset of the later writes, in any order, each possibly torn
// at 512-byte disk sector boundaries. The `crash-sim` protocol driver (option `name`) serves a
// registered SimDisk to a block graph.
#ifndef STRATA_BLOCK_TESTING_CRASH_SIM_H_
#define STRATA_BLOCK_TESTING_CRASH_SIM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace strata::testing {

// Thread-safe.
class SimDisk {
 public:
  explicit SimDisk(std::vector<uint8_t> initial);

  void Read(uint64_t offset, uint64_t bytes, uint8_t* out);
  void Write(uint64_t offset, uint64_t bytes, const uint8_t* data);
  // Everything written so far becomes durable. The observer (SetBeforeFlush) runs first,
  // on the flushing thread, without the disk's lock held.
  void Flush();
  // Calls `observer` at the start of every Flush that has pending writes (empty: none),
  // so a test can take crash states between the ordered steps of a multi-flush
  // operation. It may call CrashState and PendingWrites; it must not write or flush.
  void SetBeforeFlush(std::function<void()> observer);
  // Length changes are treated as durable at once (qcow2 only ever grows its file).
  void Truncate(uint64_t length);
  uint64_t Length();
  // Writes since the last flush.
  size_t PendingWrites();
  // The sizes of those writes (as they reach the disk: whole sectors), in order.
  std::vector<uint64_t> PendingWriteSizes();

  // A possible post-crash content: durable bytes, then each pending write (in a random
  // order) dropped, applied whole, or applied torn (a random subset of its sectors).
  std::vector<uint8_t> CrashState(std::mt19937_64& rng);

  // Makes `disk` reachable as `{"driver": "crash-sim", "name": name}` until unregistered.
  static void Register(const std::string& name, std::shared_ptr<SimDisk> disk);
  static void Unregister(const std::string& name);
  static std::shared_ptr<SimDisk> Find(const std::string& name);

 private:
  struct PendingWrite {
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  absl::Mutex observer_mu_;
  std::function<void()> before_flush_ ABSL_GUARDED_BY(observer_mu_);
  absl::Mutex mu_;
  std::vector<uint8_t> current_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> durable_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingWrite> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::testing

#endif  // STRATA_BLOCK_TESTING_CRASH_SIM_H_
