// strata: IoVector slicing and copying across piece boundaries.
#include "block/io_vector.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(IoVectorTest, SliceSpansPieces) {
  char a[4] = {'a', 'b', 'c', 'd'}, b[4] = {'e', 'f', 'g', 'h'};
  IoVector v;
  v.Append(a, 4);
  v.Append(b, 4);
  IoVector s = v.Slice(2, 4);
  ASSERT_EQ(s.size(), 4u);
  ASSERT_EQ(s.iovecs().size(), 2u);
  char out[4];
  s.CopyTo(0, out, 4);
  EXPECT_EQ(std::string(out, 4), "cdef");
}

TEST(IoVectorTest, CopyFromAndMemsetWriteThroughToPieces) {
  std::vector<char> a(3), b(5);
  IoVector v;
  v.Append(a.data(), a.size());
  v.Append(b.data(), b.size());
  v.CopyFrom(1, "XYZW", 4);
  EXPECT_EQ(std::string(a.data(), 3), std::string("\0XY", 3));
  EXPECT_EQ(b[0], 'Z');
  EXPECT_EQ(b[1], 'W');
  v.Memset(0, 0, 8);
  EXPECT_TRUE(v.IsZero());
}

TEST(IoVectorTest, DropsEmptyPiecesAndChecksAlignment) {
  AlignedBuffer buf(8192, 4096);
  IoVector v;
  v.Append(buf.data(), 0);
  EXPECT_EQ(v.iovecs().size(), 0u);
  v.Append(buf.data(), 4096);
  EXPECT_TRUE(v.IsAligned(512, 512));
  IoVector odd(buf.data() + 1, 512);
  EXPECT_FALSE(odd.IsAligned(512, 512));
}

TEST(BufferIsZeroTest, FindsALateNonZeroByte) {
  std::vector<uint8_t> z(1000, 0);
  EXPECT_TRUE(BufferIsZero(z.data() + 1, 999));
  z[997] = 1;
  EXPECT_FALSE(BufferIsZero(z.data() + 1, 999));
}

}  // namespace
}  // namespace strata
