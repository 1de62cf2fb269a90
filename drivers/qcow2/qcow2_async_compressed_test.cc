// strata qcow2: compressed clusters on the coroutine path. Reads of compressed clusters,
// and copy-on-write out of them, run on their loop (the bytes read on the ring, inflated
// there), not on the blocking pool, and give what QEMU wrote.
//
// QEMU makes the image (qemu-img convert -c, zlib and zstd): 256 clusters of 64 KiB, each
// with one 4 KiB pattern somewhere in it. 32 requests in flight on one loop read the
// patterns back, then write each pattern at a new place in its cluster (a partial write
// into a compressed cluster: a new cluster, the rest copied out of the compressed one).
// Not even the L2 table load uses the pool. Before the coroutine path every one of
// these requests was offloaded.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "aio/loop_thread.h"
#include "aio/offload.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/pattern_runner.h"
#include "block/testing/shell.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using testing_shell::Shell;
using testing_shell::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kPiece = 4096;
constexpr int kClusters = 256;
constexpr uint64_t kImageBytes = kCluster * kClusters;

// Where cluster i's pattern is first (as written by QEMU), and where it is written again.
uint64_t FirstPlace(int i) { return i * kCluster + (i % 16) * kPiece; }
uint64_t SecondPlace(int i) { return i * kCluster + ((i + 5) % 16) * kPiece; }

class AsyncCompressedTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AsyncCompressedTest, ReadsAndCopyOnWriteRunOnTheLoop) {
  const std::string type = GetParam();
  const std::string dir = TempDir();
  const std::string raw = dir + "/compressed_src_" + type + ".raw";
  const std::string image = dir + "/compressed_" + type + ".qcow2";
  const std::string model_file = dir + "/compressed_model_" + type + ".raw";
  std::vector<uint8_t> model(kImageBytes, 0);
  for (int i = 0; i < kClusters; ++i) {
    std::memset(&model[FirstPlace(i)], PatternRunner::PatternOf(i), kPiece);
  }
  auto write_file = [](const std::string& path, const std::vector<uint8_t>& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  };
  write_file(raw, model);
  ASSERT_EQ(Shell("qemu-img convert -c -f raw -O qcow2 -o compression_type=" + type + " " +
                  raw + " " + image),
            0);
  // Every cluster is stored compressed (QEMU's map says so only through its absent
  // offsets: a compressed cluster has none).
  ASSERT_EQ(Shell("qemu-img map --output=json " + image + " | grep -q '\"offset\"'"), 1);

  uint64_t read_offloads = 0, write_offloads = 0;
  {
    ImageOpenRequest req;
    req.filename = image;
    req.format = "qcow2";
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    PatternRunner::Options run{.reads = true, .requests = kClusters, .depth = 32,
                               .bytes = kPiece, .offset_of = FirstPlace};
    PatternRunner reader(&blk, &(*loop)->context(), run);
    uint64_t before = aio::OffloadedWork::Total();
    reader.Run();
    read_offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(reader.failures(), 0);

    run.reads = false;
    run.offset_of = SecondPlace;
    PatternRunner writer(&blk, &(*loop)->context(), run);
    before = aio::OffloadedWork::Total();
    writer.Run();
    write_offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(writer.failures(), 0);
    loop->reset();
    for (int i = 0; i < kClusters; ++i) {
      std::memset(&model[SecondPlace(i)], PatternRunner::PatternOf(i), kPiece);
    }
    std::vector<uint8_t> back(kImageBytes);
    ASSERT_OK(blk.Pread(0, kImageBytes, back.data()));
    EXPECT_TRUE(back == model);
    ASSERT_OK(blk.Close());
  }
  // The one L2 table is read on the loop too; the writes may add a few pool steps for
  // the file's reserved tail, never one per request.
  EXPECT_EQ(read_offloads, 0u) << "compressed reads (or the L2 table load) went to the pool";
  EXPECT_LT(write_offloads, static_cast<uint64_t>(kClusters / 8))
      << "copy-on-write from compressed clusters went to the pool";
  EXPECT_EQ(Shell("qemu-img check -q " + image), 0);
  write_file(model_file, model);
  EXPECT_EQ(Shell("qemu-img compare -q -f raw -F qcow2 " + model_file + " " + image), 0);
  ::unlink(raw.c_str());
  ::unlink(image.c_str());
  ::unlink(model_file.c_str());
}

INSTANTIATE_TEST_SUITE_P(Compression, AsyncCompressedTest, ::testing::Values("zlib", "zstd"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace strata
