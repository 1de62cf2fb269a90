// strata qcow2: zero writes and discards on the coroutine path run on their loop, not on
// the blocking pool, and leave the image QEMU leaves after the same requests.
//
// The image (4 KiB clusters, so the requests span many L2 tables) is filled with a
// pattern per 64 KiB slot. Each slot then gets one generated request (a fixed seed): a
// zero write of whole clusters with or without unmap, a discard (whole clusters or a
// range with partial clusters at its ends), an unaligned zero write (with or without
// unmap), a data overwrite, or nothing; over data, over zero clusters or over nothing.
// strata runs them 16 at a time on one loop; qemu-io runs the same requests on a copy. Both images must then hold the same bytes and map alike (zero clusters kept
// or given back, freed clusters), and pass `qemu-img check`. Nothing uses the pool, not
// even the loading of L2 tables (partial clusters are zeroed again, or a zero buffer is
// written through the write path); before this path every request did.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "aio/offload.h"
#include "aio/loop_thread.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kCluster = 4096;
constexpr uint64_t kSlot = 16 * kCluster;
constexpr uint64_t kImageBytes = uint64_t{32} << 20;
constexpr int kSlots = static_cast<int>(kImageBytes / kSlot);
constexpr int kDepth = 16;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ShellOutput(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

std::string TempDir() { return getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp"; }

// One generated request, inside its own slot.
struct Op {
  BlockBackend::Op op;
  uint64_t offset, bytes;
  uint32_t flags;
  uint8_t pattern;  // kWrite
  std::string qemu_io;  // the same request as a qemu-io command
};

std::vector<Op> GenerateOps(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Op> ops;
  for (int slot = 0; slot < kSlots; ++slot) {
    const uint64_t base = static_cast<uint64_t>(slot) * kSlot;
    const uint64_t first = rng() % 16, count = 1 + rng() % (16 - first);
    const uint64_t off = base + first * kCluster, len = count * kCluster;
    Op o{BlockBackend::Op::kWriteZeroes, off, len, 0, 0, ""};
    switch (rng() % 7) {
      case 0:
        o.qemu_io = absl::StrCat("write -z ", off, " ", len);
        break;
      case 1:
        o.flags = kReqMayUnmap;
        o.qemu_io = absl::StrCat("write -z -u ", off, " ", len);
        break;
      case 2:
        o.op = BlockBackend::Op::kDiscard;
        o.qemu_io = absl::StrCat("discard ", off, " ", len);
        break;
      case 3: {  // partial clusters at both ends: only the whole ones in between go
        o.op = BlockBackend::Op::kDiscard;
        o.offset = off + 512;
        o.bytes = len + kCluster - 1024;
        o.qemu_io = absl::StrCat("discard ", o.offset, " ", o.bytes);
        break;
      }
      case 4:  // partial clusters at both ends
        o.offset = off + 512;
        o.bytes = len;
        o.flags = rng() % 2 ? kReqMayUnmap : 0;
        o.qemu_io = absl::StrCat("write -z ", o.flags ? "-u " : "", o.offset, " ", o.bytes);
        break;
      case 5:
        // Data only over data: an allocation's place would follow the completion order
        // of the requests in flight, which qemu-io (one at a time) cannot reproduce.
        if (slot % 5 < 2) continue;
        o.op = BlockBackend::Op::kWrite;
        o.pattern = static_cast<uint8_t>(0x80 + slot % 64);
        o.qemu_io = absl::StrCat("write -P ", int{o.pattern}, " ", off, " ", len);
        break;
      default:
        continue;  // the slot keeps its data
    }
    ops.push_back(std::move(o));
  }
  return ops;
}

// Runs `ops`, kDepth at a time, from `loop`'s thread; returns once all completed.
class Runner {
 public:
  Runner(BlockBackend* blk, aio::IoContext* loop, const std::vector<Op>& ops)
      : blk_(blk), loop_(loop), ops_(ops) {
    for (const Op& o : ops) {
      if (o.op == BlockBackend::Op::kWrite) {
        buffers_.emplace_back(o.bytes, 4096);
        std::memset(buffers_.back().data(), o.pattern, o.bytes);
      } else {
        buffers_.emplace_back(0, 4096);
      }
    }
  }
  void Run() {
    loop_->Post([this] {
      for (int i = 0; i < kDepth; ++i) Issue();
    });
    ASSERT_TRUE(done_.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }
  int failures() const { return failures_; }

 private:
  void Issue() {
    if (next_ == ops_.size()) {
      if (completed_ == ops_.size() && !notified_) {
        notified_ = true;
        done_.Notify();
      }
      return;
    }
    const size_t i = next_++;
    const Op& o = ops_[i];
    BlockBackend::Request r;
    r.op = o.op;
    r.offset = o.offset;
    r.bytes = o.bytes;
    r.flags = o.flags;
    if (o.op == BlockBackend::Op::kWrite) r.qiov = IoVector(buffers_[i].data(), o.bytes);
    blk_->Submit(*loop_, std::move(r), [this, i](absl::Status s) {
      if (!s.ok()) {
        ++failures_;
        ADD_FAILURE() << "request " << i << ": " << s;
      }
      ++completed_;
      Issue();
    });
  }

  BlockBackend* const blk_;
  aio::IoContext* const loop_;
  const std::vector<Op>& ops_;
  std::vector<AlignedBuffer> buffers_;
  size_t next_ = 0, completed_ = 0;
  bool notified_ = false;
  int failures_ = 0;
  absl::Notification done_;
};

TEST(AsyncZeroTest, ZeroWritesAndDiscardsRunOnTheLoopAndLeaveQemusImage) {
  const std::string image = TempDir() + "/zero.qcow2";
  const std::string reference = TempDir() + "/zero_qemu.qcow2";
  ASSERT_EQ(Shell(absl::StrCat("qemu-img create -q -f qcow2 -o cluster_size=", kCluster, " ",
                               image, " ", kImageBytes)),
            0);
  {
    std::ostringstream fill;
    // Most slots hold data; every fifth is left unallocated, and every fifth but one is
    // made of zero clusters (QEMU allocates nothing for them).
    for (int slot = 0; slot < kSlots; ++slot) {
      if (slot % 5 == 0) continue;
      if (slot % 5 == 1) {
        fill << "write -z " << slot * kSlot << " " << kSlot << "\n";
        continue;
      }
      fill << "write -P " << (1 + slot % 120) << " " << slot * kSlot << " " << kSlot << "\n";
    }
    const std::string script = TempDir() + "/zero_fill.txt";
    std::ofstream(script) << fill.str();
    ASSERT_EQ(Shell("qemu-io -f qcow2 " + image + " < " + script + " > /dev/null"), 0);
  }
  ASSERT_EQ(Shell("cp " + image + " " + reference), 0);

  const std::vector<Op> ops = GenerateOps(20261206);
  std::ostringstream script;
  for (const Op& o : ops) {
    script << o.qemu_io << "\n";
  }
  const std::string script_file = TempDir() + "/zero_ops.txt";
  std::ofstream(script_file) << script.str();
  ASSERT_EQ(Shell("qemu-io -d unmap -f qcow2 " + reference + " < " + script_file +
                  " > /dev/null"),
            0);

  uint64_t offloads = 0;
  {
    ImageOpenRequest req;
    req.filename = image;
    req.format = "qcow2";
    ASSERT_OK_AND_ASSIGN(OpenedImage opened, OpenImage(req));
    BlockBackend blk(std::move(opened.root), /*writethrough=*/false);
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring, 64});
    ASSERT_TRUE(loop.ok()) << loop.status();
    Runner runner(&blk, &(*loop)->context(), ops);
    const uint64_t before = aio::OffloadedWork::Total();
    runner.Run();
    offloads = aio::OffloadedWork::Total() - before;
    EXPECT_EQ(runner.failures(), 0);
    loop->reset();
    ASSERT_OK(blk.Close());
  }
  std::printf("%zu requests, %llu offloads\n", ops.size(),
              static_cast<unsigned long long>(offloads));
  // The L2 tables (16) are read on the loop too: nothing needs the pool.
  EXPECT_EQ(offloads, 0u) << "requests (or L2 table loads) went to the pool";
  EXPECT_EQ(Shell("qemu-img check -q " + image), 0);
  EXPECT_EQ(Shell("qemu-img compare -q -f qcow2 -F qcow2 " + reference + " " + image), 0);
  const std::string map = "qemu-img map --output=json -f qcow2 ";
  EXPECT_EQ(ShellOutput(map + image), ShellOutput(map + reference));
  // The same clusters freed and kept: check counts the same allocation.
  const std::string check = "qemu-img check -f qcow2 --output=json ";
  auto allocated = [&](const std::string& file) {
    const std::string out = ShellOutput(check + file);
    const size_t at = out.find("\"allocated-clusters\"");
    return at == std::string::npos ? std::string("?") : out.substr(at, out.find(',', at) - at);
  };
  EXPECT_EQ(allocated(image), allocated(reference));
  ::unlink(image.c_str());
  ::unlink(reference.c_str());
}

}  // namespace
}  // namespace strata
