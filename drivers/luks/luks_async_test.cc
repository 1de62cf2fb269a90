// strata luks: a LUKS volume's requests run on their loop, not on the blocking pool: the
// transfer is awaited on the file child and the cipher runs on the loop. QEMU reads what
// strata wrote, and strata reads what QEMU wrote, with many requests in flight.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "aio/loop_thread.h"
#include "aio/offload.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/pattern_runner.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "strata/secrets.h"

namespace strata {
namespace {

constexpr int kRequests = 256;
constexpr uint64_t kBytes = 4096;
constexpr uint64_t kVolumeBytes = uint64_t{16} << 20;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TempDir() { return getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp"; }

// Request i: 4 KiB at a scattered, 512-aligned place in the first half (odd multiples
// of 512 included); `half` 1 moves it to the second half.
uint64_t OffsetOf(int i, int half = 0) {
  const uint64_t span = kVolumeBytes / 2;
  return half * span + (static_cast<uint64_t>(i) * 61 % kRequests) * (span / kRequests) +
         (i % 7) * 512;
}

// One qemu-io command per request, run in one qemu-io process; its output.
std::string RunQemuIo(const std::string& args, const std::string& verb, int half) {
  std::ostringstream script;
  for (int i = 0; i < kRequests; ++i) {
    script << verb << " -P " << int{PatternRunner::PatternOf(i)} << " " << OffsetOf(i, half)
           << " " << kBytes << "\n";
  }
  const std::string script_file = TempDir() + "/luks_script.txt";
  std::ofstream(script_file) << script.str();
  const std::string out_file = TempDir() + "/luks_out.txt";
  EXPECT_EQ(Shell("qemu-io " + args + " < " + script_file + " > " + out_file + " 2>&1"), 0);
  std::ifstream in(out_file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(LuksAsyncTest, RequestsRunOnTheLoopAndAgreeWithQemu) {
  const std::string volume = TempDir() + "/async.luks";
  const std::string secret = " --object secret,id=s0,data=hunter2 ";
  const std::string opts = "driver=luks,key-secret=s0,file.filename=" + volume;
  // A tiny iter-time sometimes makes qemu-img fail under load ("Unable to get accurate
  // CPU usage"): retried.
  int rc = -1;
  for (int attempt = 0; attempt < 30 && rc != 0; ++attempt) {
    rc = Shell("qemu-img create -q -f luks" + secret + "-o key-secret=s0,iter-time=10 " +
               volume + " " + std::to_string(kVolumeBytes));
  }
  ASSERT_EQ(rc, 0);
  // QEMU writes the first half; strata reads it, then writes the second half, which
  // QEMU then checks.
  RunQemuIo(secret + "--image-opts " + opts, "write", 0);

  RegisterSecret("s0", "hunter2");
  uint64_t read_offloads = 0, write_offloads = 0;
  {
    ImageOpenRequest req;
    req.filename = opts;
    req.image_opts = true;
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    PatternRunner::Options run{.reads = true, .requests = kRequests, .depth = 16,
                               .bytes = kBytes, .offset_of = [](int i) { return OffsetOf(i); }};
    PatternRunner reader(&blk, &(*loop)->context(), run);
    uint64_t before = aio::OffloadedWork::Total();
    reader.Run();
    read_offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(reader.failures(), 0);
    run.reads = false;
    run.offset_of = [](int i) { return OffsetOf(i, 1); };
    PatternRunner writer(&blk, &(*loop)->context(), run);
    before = aio::OffloadedWork::Total();
    writer.Run();
    write_offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(writer.failures(), 0);
    loop->reset();
    ASSERT_OK(blk.Close());
  }
  std::printf("%d reads, %llu offloads; %d writes, %llu offloads\n", kRequests,
              static_cast<unsigned long long>(read_offloads), kRequests,
              static_cast<unsigned long long>(write_offloads));
  EXPECT_EQ(read_offloads, 0u) << "reads went to the pool";
  EXPECT_EQ(write_offloads, 0u) << "writes went to the pool";
  const std::string out = RunQemuIo(secret + "--image-opts " + opts, "read", 1);
  EXPECT_EQ(out.find("Pattern verification failed"), std::string::npos) << out;
  EXPECT_NE(out.find("read 4096/4096 bytes"), std::string::npos) << out;
}

}  // namespace
}  // namespace strata
