// strata aio: the coroutine frame cache (see task.h).
#include <array>
#include <cstdlib>
#include <vector>

#include "aio/task.h"

namespace strata::aio::internal {
namespace {

constexpr std::size_t kGranule = 64;     // size classes of 64 bytes
constexpr std::size_t kClasses = 32;     // frames up to 2 KiB are cached
constexpr std::size_t kMaxPerClass = 256;

// Freed frames of this thread, by size class. Destroyed at thread exit (frees them all).
struct FrameCache {
  std::array<std::vector<void*>, kClasses> free;
  ~FrameCache() {
    for (auto& list : free) {
      for (void* p : list) std::free(p);
    }
  }
};

thread_local FrameCache t_cache;

std::size_t ClassOf(std::size_t size) { return (size + kGranule - 1) / kGranule; }

}  // namespace

void* AllocateFrame(std::size_t size) {
  const std::size_t c = ClassOf(size);
  if (c < kClasses) {
    std::vector<void*>& list = t_cache.free[c];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      return p;
    }
    void* p = std::malloc(c * kGranule);
    if (p == nullptr) std::abort();  // as operator new would fail
    return p;
  }
  void* p = std::malloc(size);
  if (p == nullptr) std::abort();
  return p;
}

void FreeFrame(void* frame, std::size_t size) noexcept {
  const std::size_t c = ClassOf(size);
  if (c < kClasses && t_cache.free[c].size() < kMaxPerClass) {
    t_cache.free[c].push_back(frame);
    return;
  }
  std::free(frame);
}

}  // namespace strata::aio::internal
