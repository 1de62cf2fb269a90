// strata: BufferPool hands buffers back out instead of allocating new ones.
#include "block/buffer_pool.h"

#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(BufferPoolTest, ReturnedBuffersAreReused) {
  BufferPool pool(1 << 20);
  std::set<uint8_t*> seen;
  {
    BufferPool::Lease a = pool.Take();
    BufferPool::Lease b = pool.Take();
    EXPECT_NE(a.data(), b.data());
    EXPECT_EQ(a.size(), 1u << 20);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 4096, 0u);
    seen = {a.data(), b.data()};
  }
  for (int round = 0; round < 10; ++round) {
    BufferPool::Lease c = pool.Take();
    BufferPool::Lease d = pool.Take();
    EXPECT_TRUE(seen.count(c.data()) && seen.count(d.data())) << "round " << round;
  }
}

TEST(BufferPoolTest, MovedLeaseReturnsOnce) {
  BufferPool pool(4096);
  uint8_t* first;
  {
    BufferPool::Lease a = pool.Take();
    first = a.data();
    std::vector<BufferPool::Lease> held;
    held.push_back(std::move(a));
  }
  BufferPool::Lease b = pool.Take();
  BufferPool::Lease c = pool.Take();
  EXPECT_EQ(b.data(), first);
  EXPECT_NE(c.data(), first);
}

}  // namespace
}  // namespace strata
