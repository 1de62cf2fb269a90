// strata qcow2: allocating writes on the coroutine path run on their loop, not on the
// blocking pool, and write what the synchronous path would: copy-on-write from a backing
// file, zeroes around the data in a fresh image, an image `qemu-img check` accepts. The
// same for encrypted images (LUKS and the legacy AES format, the cipher run on the loop),
// whose reads on the loop are checked too.
//
// Every write goes to a cluster of its own (4 KiB inside a 64 KiB cluster), 32 in flight
// on one loop. Only the steps that need metadata I/O may use the pool: creating the L2
// table and extending the file's reserved tail (a few times, in growing steps), so the
// offload count stays far below the write count. Before the coroutine allocation path
// every one of these writes was offloaded.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "aio/offload.h"
#include "aio/loop_thread.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/pattern_runner.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "strata/secrets.h"

namespace strata {
namespace {

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kWrite = 4096;
constexpr uint64_t kStride = kCluster + kWrite;  // a new cluster, a new place in it
constexpr int kWrites = 512;
constexpr int kDepth = 32;
constexpr uint64_t kImageBytes = uint64_t{64} << 20;
constexpr uint8_t kBackingByte = 0xab;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TempDir() { return getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp"; }

uint64_t OffsetOf(int i) { return static_cast<uint64_t>(i) * kStride % (kImageBytes - kWrite); }

struct Setup {
  bool with_backing;
  const char* encryption;  // "" (none), "luks" or "aes"
  // Extended L2 entries (2 KiB subclusters), with writes of 3 KiB: each write allocates
  // its subclusters only and copies the rest of its last one from the backing file.
  bool extended_l2 = false;
};

// qemu-img create with a small PBKDF2 time, retried: with a tiny iter-time it sometimes
// fails under load with "Unable to get accurate CPU usage".
int CreateImage(const std::string& command) {
  int rc = -1;
  for (int attempt = 0; attempt < 30 && rc != 0; ++attempt) rc = Shell(command);
  return rc;
}

class AsyncAllocatingWriteTest : public ::testing::TestWithParam<Setup> {};

TEST_P(AsyncAllocatingWriteTest, RunsOnTheLoopAndWritesWhatQemuReads) {
  const bool with_backing = GetParam().with_backing;
  const std::string encryption = GetParam().encryption;
  const bool extended_l2 = GetParam().extended_l2;
  const uint64_t write_bytes = extended_l2 ? 3072 : kWrite;
  const std::string image = TempDir() + "/alloc" + std::to_string(with_backing) + encryption +
                            (extended_l2 ? "x" : "") + ".qcow2";
  const std::string backing = TempDir() + "/alloc_base.raw";
  const std::string secret = " --object secret,id=s0,data=hunter2 ";
  std::string create = "qemu-img create -q -f qcow2 -o cluster_size=65536 ";
  if (extended_l2) create += "-o extended_l2=on ";
  if (encryption == "luks") {
    create += secret + "-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 ";
  } else if (encryption == "aes") {
    create += secret + "-o encrypt.format=aes,encrypt.key-secret=s0 ";
  }
  // How QEMU's tools and strata name the image.
  const std::string opts =
      std::string(encryption.empty() ? "driver=qcow2" : "driver=qcow2,encrypt.key-secret=s0") +
      ",file.filename=" + image;
  if (!encryption.empty()) strata::RegisterSecret("s0", "hunter2");
  if (with_backing) {
    std::vector<uint8_t> base(kImageBytes, kBackingByte);
    int fd = ::open(backing.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, base.data(), base.size()), static_cast<ssize_t>(base.size()));
    ::close(fd);
    create += "-b " + backing + " -F raw ";
  }
  ASSERT_EQ(CreateImage(create + image + " " + std::to_string(kImageBytes)), 0);
  // The expected content, as the guest sees it.
  std::vector<uint8_t> model(kImageBytes, with_backing ? kBackingByte : 0);
  for (int i = 0; i < kWrites; ++i) {
    std::memset(&model[OffsetOf(i)], PatternRunner::PatternOf(i), write_bytes);
  }

  uint64_t offloads = 0, read_offloads = 0;
  {
    ImageOpenRequest req;
    req.filename = opts;
    req.image_opts = true;
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    PatternRunner::Options run{.requests = kWrites, .depth = kDepth,
                                        .bytes = write_bytes, .offset_of = OffsetOf};
    PatternRunner writer(&blk, &(*loop)->context(), run);
    uint64_t before = aio::OffloadedWork::Total();
    writer.Run();
    offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(writer.failures(), 0);
    run.reads = true;
    PatternRunner reader(&blk, &(*loop)->context(), run);
    before = aio::OffloadedWork::Total();
    reader.Run();
    read_offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(reader.failures(), 0);
    loop->reset();
    std::vector<uint8_t> back(kImageBytes);
    ASSERT_OK(blk.Pread(0, kImageBytes, back.data()));
    EXPECT_TRUE(back == model);
    ASSERT_OK(blk.Close());
  }
  std::printf("%d writes, %llu offloads; %d reads, %llu offloads\n", kWrites,
              static_cast<unsigned long long>(offloads), kWrites,
              static_cast<unsigned long long>(read_offloads));
  EXPECT_LT(offloads, static_cast<uint64_t>(kWrites / 8)) << "writes went to the pool";
  EXPECT_LT(read_offloads, static_cast<uint64_t>(kWrites / 8)) << "reads went to the pool";
  const std::string secret_opts = encryption.empty() ? "" : secret;
  EXPECT_EQ(Shell("qemu-img check -q" + secret_opts + " --image-opts " + opts), 0);
  const std::string model_file = TempDir() + "/alloc_model.raw";
  int fd = ::open(model_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, model.data(), model.size()), static_cast<ssize_t>(model.size()));
  ::close(fd);
  EXPECT_EQ(Shell("qemu-img compare -q" + secret_opts + " --image-opts driver=raw,file.filename=" +
                  model_file + " " + opts),
            0);
  ::unlink(image.c_str());
  ::unlink(model_file.c_str());
  ::unlink(backing.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Images, AsyncAllocatingWriteTest,
    ::testing::Values(Setup{false, ""}, Setup{true, ""}, Setup{false, "luks"},
                      Setup{true, "luks"}, Setup{false, "aes"}, Setup{true, "", true},
                      Setup{false, "", true}),
    [](const ::testing::TestParamInfo<Setup>& info) {
      std::string name = info.param.with_backing ? "with_backing" : "fresh_image";
      if (*info.param.encryption) name += std::string("_") + info.param.encryption;
      if (info.param.extended_l2) name += "_extended_l2";
      return name;
    });

// Creates `image` (qcow2 with `create_opts`, kImageBytes), writes `writes` sequential
// 4 KiB requests on one io_uring loop, 32 in flight, reads them back, closes it and
// checks it with qemu-img. Returns how many steps went to the blocking pool meanwhile.
uint64_t WriteSequentiallyOnALoop(const std::string& image, const std::string& create_opts,
                                  int writes) {
  EXPECT_EQ(Shell("qemu-img create -q -f qcow2 -o " + create_opts + " " + image + " " +
                  std::to_string(kImageBytes)),
            0);
  auto offset_of = [](int i) { return static_cast<uint64_t>(i) * kWrite; };
  uint64_t offloads = 0;
  {
    ImageOpenRequest req;
    req.filename = image;
    absl::StatusOr<OpenedImage> opened = OpenImage(req);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return UINT64_MAX;
    BlockBackend blk(std::move(opened->root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    EXPECT_TRUE(loop.ok()) << loop.status();
    if (!loop.ok()) return UINT64_MAX;
    PatternRunner::Options run{.requests = writes, .depth = kDepth, .bytes = kWrite,
                               .offset_of = offset_of};
    PatternRunner writer(&blk, &(*loop)->context(), run);
    const uint64_t before = aio::OffloadedWork::Total();
    writer.Run();
    offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(writer.failures(), 0);
    run.reads = true;
    PatternRunner reader(&blk, &(*loop)->context(), run);
    reader.Run();
    EXPECT_EQ(reader.failures(), 0);
    loop->reset();
    EXPECT_OK(blk.Close());
  }
  std::printf("%d sequential writes (%s), %llu offloads\n", writes, create_opts.c_str(),
              static_cast<unsigned long long>(offloads));
  EXPECT_EQ(Shell("qemu-img check -q " + image), 0);
  ::unlink(image.c_str());
  return offloads;
}

// Sequential 4 KiB writes, 16 to a cluster, 32 in flight (as `qemu-img bench -w`): all
// but the first write of a cluster find its allocation in flight. They park on the loop
// until it is linked, then write in place; before, each went to the pool and blocked
// there (and a metadata lock that woke every waiter at each release spun for minutes).
TEST(AsyncSequentialWriteTest, WritesBehindAnAllocationWaitOnTheLoop) {
  constexpr int kSequentialWrites = 2048;  // 128 clusters
  EXPECT_LT(WriteSequentiallyOnALoop(TempDir() + "/sequential.qcow2", "cluster_size=65536",
                                     kSequentialWrites),
            static_cast<uint64_t>(kSequentialWrites / 16))
      << "writes went to the pool";
}

// Sequential 4 KiB writes into a fresh image of 4 KiB clusters: an L2 table covers 2 MiB,
// so the 32 MiB run needs 16 new L2 tables and several tail extensions (1-bit refcounts:
// one refcount block covers 128 MiB, so no new block is needed; making one still takes
// the pool). The tables (their write, the L1 entry, the flushes) and the extensions are
// made on the loop with the lock held across their I/O. Before, each went to the pool:
// 19 offloads for this run, against 0 or 1 now (the first table may find its refcount
// block not yet cached).
TEST(AsyncSequentialWriteTest, NewL2TablesAndTheFileTailAreMadeOnTheLoop) {
  EXPECT_LE(WriteSequentiallyOnALoop(TempDir() + "/small_clusters.qcow2",
                                     "cluster_size=4096,refcount_bits=1", 8192),
            4u)
      << "new tables or tail extensions went to the pool";
}

}  // namespace
}  // namespace strata
