// Tests for AlignedBufferRecycler: sizes, reuse, the cap.
#include "block/buffer_recycler.h"

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(AlignedBufferRecycler, SmallBuffersAreExactAndNotKept) {
  AlignedBufferRecycler r;
  AlignedBuffer b = r.Take(1000);
  EXPECT_EQ(b.size(), 1000u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
  uint8_t* p = b.data();
  r.Give(std::move(b));
  AlignedBuffer again = r.Take(1000);
  EXPECT_EQ(again.size(), 1000u);
  (void)p;  // small buffers come from malloc: no promise about reuse
}

TEST(AlignedBufferRecycler, LargeBuffersAreRoundedAndReused) {
  AlignedBufferRecycler r;
  AlignedBuffer b = r.Take(1000000);
  EXPECT_EQ(b.size(), 1u << 20);
  uint8_t* p = b.data();
  r.Give(std::move(b));
  AlignedBuffer again = r.Take(600000);  // same class
  EXPECT_EQ(again.data(), p);
  AlignedBuffer other = r.Take(600000);  // the list is empty now: a new one
  EXPECT_NE(other.data(), p);
}

TEST(AlignedBufferRecycler, KeepsNoMoreThanTheCap) {
  AlignedBufferRecycler r(/*max_cached_bytes=*/2 << 20);
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < 3; ++i) bufs.push_back(r.Take(1 << 20));
  std::vector<uint8_t*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  for (auto& b : bufs) r.Give(std::move(b));
  // The first two fit under the cap (the third was freed) and come back, last in first.
  AlignedBuffer x = r.Take(1 << 20);
  AlignedBuffer y = r.Take(1 << 20);
  EXPECT_EQ(x.data(), ptrs[1]);
  EXPECT_EQ(y.data(), ptrs[0]);
}

}  // namespace
}  // namespace strata
