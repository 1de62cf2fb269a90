// strata qcow2: counts the data transfers in flight on clusters mapped under the
// metadata lock, by epoch, so that a cluster freed meanwhile is handed back only once
// no transfer that may still use it is in flight.
//
//   const uint64_t e = epochs.Begin();    // metadata lock held: the mapping is done
//   ... read or write the mapped clusters, lock released ...
//   epochs.End(e);                        // any thread, no lock
//
// Why not a map under the lock (the first design): ending a transfer took the metadata
// lock a second time per request, and two loops reading one image spent much of their
// time taking it from each other. Ending is now one atomic decrement.
//
// How: the epoch advances (Advance) when frees reach the disk; a free tagged with epoch
// E waits for every transfer of epoch E or older (OldestInFlight). Counts live in a
// ring of kSlots counters, slot E % kSlots counting the transfers of epoch E; the epoch
// advances into a slot only when it is empty, so a slot never mixes two epochs. When
// the next slot is still busy (a transfer older than kSlots epochs is in flight), the
// epoch stays: frees tagged with it then also wait for the transfers begun after them,
// later than needed but never too early.
//
// Memory order: End's decrement releases, OldestInFlight's loads acquire, so a caller
// that finds an epoch drained also sees the I/O of its transfers complete before it
// reuses their clusters.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_TRANSFER_EPOCHS_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_TRANSFER_EPOCHS_H_

#include <array>
#include <atomic>
#include <cstdint>

namespace strata::qcow2 {

class TransferEpochs {
 public:
  static constexpr uint64_t kSlots = 64;

  // Begins a transfer in the current epoch and returns it. Caller: holds the lock that
  // also serialises Advance and OldestInFlight.
  uint64_t Begin() {
    slots_[epoch_ % kSlots].fetch_add(1, std::memory_order_relaxed);
    return epoch_;
  }
  // Ends a transfer Begin returned `epoch` for. Any thread, no lock.
  void End(uint64_t epoch) { slots_[epoch % kSlots].fetch_sub(1, std::memory_order_release); }

  // Returns the epoch to tag frees that just reached the disk with, and moves later
  // transfers to the next epoch if its slot is empty. Under the lock.
  uint64_t Advance() {
    const uint64_t tag = epoch_;
    if (slots_[(epoch_ + 1) % kSlots].load(std::memory_order_acquire) == 0) ++epoch_;
    return tag;
  }
  // The oldest epoch with a transfer in flight, or UINT64_MAX if none. Under the lock.
  uint64_t OldestInFlight() const {
    const uint64_t first = epoch_ >= kSlots - 1 ? epoch_ - (kSlots - 1) : 0;
    for (uint64_t e = first; e <= epoch_; ++e) {
      if (slots_[e % kSlots].load(std::memory_order_acquire) != 0) return e;
    }
    return UINT64_MAX;
  }

 private:
  uint64_t epoch_ = 0;
  std::array<std::atomic<int64_t>, kSlots> slots_{};
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_TRANSFER_EPOCHS_H_
