// strata qcow2: one thread for every image's cache-clean-interval timer.
//
// QEMU drops metadata cache entries unused for an interval (cache-clean-interval). A
// thread per open image would scale with the length of a backing chain (thousands of
// nodes are legal), so every qcow2 node registers a callback here instead and a single
// process-wide thread, started on the first registration, calls each when its interval
// has passed.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_CACHE_CLEANER_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_CACHE_CLEANER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace strata::qcow2 {

class CacheCleaner {
 public:
  // Unregisters on destruction; after the destructor returns the callback is not running
  // and will never run again.
  class Registration {
   public:
    Registration() = default;
    Registration(CacheCleaner* owner, uint64_t id) : owner_(owner), id_(id) {}
    Registration(Registration&& other) noexcept { *this = std::move(other); }
    Registration& operator=(Registration&& other) noexcept;
    ~Registration() { Reset(); }
    void Reset();

   private:
    CacheCleaner* owner_ = nullptr;
    uint64_t id_ = 0;
  };

  // The process-wide cleaner.
  static CacheCleaner& Global();

  // Calls `clean` every `interval` (first after one interval) on the cleaner thread, with
  // no lock of the caller held; `clean` must not register or unregister anything.
  Registration Register(absl::Duration interval, std::function<void()> clean);

  ~CacheCleaner();

 private:
  struct Entry {
    absl::Duration interval;
    absl::Time next;
    std::function<void()> clean;
  };
  void Unregister(uint64_t id);
  void Run();

  absl::Mutex mu_;
  uint64_t running_ ABSL_GUARDED_BY(mu_) = 0;  // id whose callback runs now, or 0
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started on the first registration
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_CACHE_CLEANER_H_
