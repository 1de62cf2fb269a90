// strata's C++ public API, used the way an embedder uses it: only <strata/*.h>.
//
//  - The handles offer no way to the driver API (checked at compile time).
//  - Control operations go through the node: they check writability, and they quiesce it
//    while I/O runs on several queues. Writers on four queues keep requests in flight
//    while snapshots are created and deleted and options amended (every byte is then
//    checked against the writers' model), and while make_empty drops the overlay's
//    clusters (every block then reads as the backing file or as its last write). QEMU's
//    `qemu-img check` judges the images afterwards.
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "strata/errors.h"
#include "strata/formats.h"
#include "strata/image.h"
#include "strata/node.h"
#include "strata/queue.h"

namespace {

// --- What a caller cannot do (each would compile if the handles leaked the internals) ---
template <typename T>
concept ExposesInstance = requires(T t) { t.instance(); };
template <typename T>
concept ExposesDriver = requires(T t) { t.driver(); };
template <typename T>
concept ExposesBackend = requires(T t) { t.backend(); };
template <typename T>
concept ExposesContext = requires(T t) { t.context(); };
static_assert(!ExposesInstance<strata::Node> && !ExposesDriver<strata::Node>);
static_assert(!ExposesInstance<strata::Image> && !ExposesBackend<strata::Image>);
static_assert(!ExposesContext<strata::Queue>);
// A Node is made only by the library (its constructor from the node itself is private).
static_assert(!std::is_constructible_v<strata::Node, strata::BlockDriverState*>);
static_assert(std::is_default_constructible_v<strata::Node>);

constexpr uint64_t kBlock = 64 * 1024;
constexpr uint64_t kBlocks = 64;  // 4 MiB
constexpr int kQueues = 4;

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

std::unique_ptr<strata::Image> OpenRw(const std::string& path) {
  strata::ImageSpec spec;
  spec.filename = path;
  spec.options.read_only = false;
  absl::StatusOr<std::unique_ptr<strata::Image>> image = strata::Image::Open(spec);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *std::move(image) : nullptr;
}

void CreateQcow2(const std::string& path, const std::string& backing = "") {
  strata::CreateRequest r;
  r.filename = path;
  r.size_bytes = kBlock * kBlocks;
  if (!backing.empty()) {
    r.options["backing_file"] = backing;
    r.options["backing_fmt"] = "qcow2";
  }
  ASSERT_TRUE(strata::CreateImage("qcow2", r).ok());
}

// The byte every byte of `block` holds after its `seq`-th write: never 0 or 0x11 (the
// backing file's byte in the make_empty test).
uint8_t Pattern(uint64_t block, uint64_t seq) {
  return static_cast<uint8_t>(0x20 + (block * 31 + seq * 7) % 0xd0);
}

// Keeps writes (each followed by a read-back check) in flight on the blocks one queue
// owns, until stopped. Runs on its queue's thread only, except the atomics.
class Writer {
 public:
  Writer(strata::Image* image, strata::Queue* queue, int index)
      : image_(image), queue_(queue), index_(index) {
    for (uint64_t b = index; b < kBlocks; b += kQueues) {
      blocks_.push_back(b);
      buffers_.emplace_back(kBlock);
      last_.push_back(0);
    }
  }
  void Start() {
    queue_->Post([this] {
      for (size_t i = 0; i < blocks_.size(); ++i) Write(i);
    });
  }
  void Stop() { stop_ = true; }
  bool Idle() const { return in_flight_.load() == 0; }
  int errors() const { return errors_.load(); }
  uint64_t writes() const { return writes_.load(); }
  // Last pattern written to each owned block (0: none); read after Idle().
  const std::vector<uint64_t>& blocks() const { return blocks_; }
  uint64_t last_seq(size_t i) const { return last_[i]; }

 private:
  void Write(size_t i) {
    if (stop_) return;
    ++in_flight_;
    const uint64_t seq = last_[i] + 1;
    buffers_[i].assign(kBlock, static_cast<char>(Pattern(blocks_[i], seq)));
    strata::IoRequest r;
    r.op = strata::IoOp::kWrite;
    r.offset = blocks_[i] * kBlock;
    r.qiov = strata::IoVector(buffers_[i].data(), kBlock);
    image_->Submit(*queue_, std::move(r), [this, i, seq](absl::Status s) {
      if (!s.ok()) ++errors_;
      last_[i] = seq;
      ++writes_;
      Read(i);
      --in_flight_;
    });
  }
  void Read(size_t i) {
    ++in_flight_;
    buffers_[i].assign(kBlock, 0);
    strata::IoRequest r;
    r.op = strata::IoOp::kRead;
    r.offset = blocks_[i] * kBlock;
    r.qiov = strata::IoVector(buffers_[i].data(), kBlock);
    image_->Submit(*queue_, std::move(r), [this, i](absl::Status s) {
      const char want = static_cast<char>(Pattern(blocks_[i], last_[i]));
      // A make_empty may run between the write and this read: the backing data is then
      // what the block holds, until the next write.
      if (!s.ok() || (buffers_[i] != std::vector<char>(kBlock, want) &&
                      buffers_[i] != std::vector<char>(kBlock, 0x11))) {
        ++errors_;
      }
      Write(i);
      --in_flight_;
    });
  }

  strata::Image* const image_;
  strata::Queue* const queue_;
  const int index_;
  std::vector<uint64_t> blocks_;
  std::vector<std::vector<char>> buffers_;
  std::vector<uint64_t> last_;
  std::atomic<bool> stop_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<int> errors_{0};
  std::atomic<uint64_t> writes_{0};
};

// Runs writers on kQueues queues while `control(round)` runs `rounds` times on this
// thread, then stops them and waits until none has a request in flight.
template <typename Control>
std::vector<std::unique_ptr<Writer>> RunWithControl(strata::Image& image, int rounds,
                                                    Control control) {
  std::vector<std::unique_ptr<strata::Queue>> queues;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int q = 0; q < kQueues; ++q) {
    absl::StatusOr<std::unique_ptr<strata::Queue>> queue = strata::Queue::Start({});
    EXPECT_TRUE(queue.ok());
    queues.push_back(*std::move(queue));
    writers.push_back(std::make_unique<Writer>(&image, queues.back().get(), q));
  }
  for (auto& w : writers) w->Start();
  for (int round = 0; round < rounds; ++round) {
    // Let the writers make progress between control operations.
    const uint64_t before = writers[0]->writes();
    while (writers[0]->writes() < before + 4) std::this_thread::yield();
    control(round);
  }
  for (auto& w : writers) w->Stop();
  for (auto& w : writers) {
    while (!w->Idle()) std::this_thread::yield();
  }
  queues.clear();  // joins the loops; the writers' callbacks have all run
  return writers;
}

TEST(PublicApiTest, ControlOperationsRefuseReadOnlyNodes) {
  const std::string path = TempPath("ro.qcow2");
  CreateQcow2(path);
  strata::ImageSpec spec;
  spec.filename = path;  // read-only by default
  absl::StatusOr<std::unique_ptr<strata::Image>> image = strata::Image::Open(spec);
  ASSERT_TRUE(image.ok()) << image.status();
  strata::Node root = (*image)->root();
  EXPECT_EQ(root.driver_name(), "qcow2");
  EXPECT_EQ(root.file().driver_name(), "file");
  EXPECT_FALSE(root.backing());
  EXPECT_EQ(strata::ErrnoOf(root.CreateSnapshot("s")), EPERM);
  EXPECT_EQ(strata::ErrnoOf(root.Amend({{"lazy_refcounts", "on"}})), EPERM);
  EXPECT_EQ(strata::ErrnoOf(root.MakeEmpty()), EPERM);
  EXPECT_EQ(strata::ErrnoOf(root.Check(strata::kCheckFixLeaks).status()), EPERM);
  absl::StatusOr<strata::CheckResult> check = root.Check(0);
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->corruptions, 0);
  EXPECT_TRUE(root.ListSnapshots()->empty());
}

TEST(PublicApiTest, SnapshotsAndAmendQuiesceIoOnFourQueues) {
  const std::string path = TempPath("quiesce.qcow2");
  CreateQcow2(path);
  std::unique_ptr<strata::Image> image = OpenRw(path);
  ASSERT_NE(image, nullptr);
  strata::Node root = image->root();
  int failures = 0;
  auto writers = RunWithControl(*image, 24, [&](int round) {
    const std::string name = "s" + std::to_string(round);
    if (!root.CreateSnapshot(name).ok()) ++failures;
    if (!root.Amend({{"lazy_refcounts", round % 2 ? "off" : "on"}}).ok()) ++failures;
    if (round >= 2 && !root.DeleteSnapshot("s" + std::to_string(round - 2)).ok()) ++failures;
  });
  EXPECT_EQ(failures, 0);
  std::vector<char> buf(kBlock);
  uint64_t total = 0;
  for (const auto& w : writers) {
    EXPECT_EQ(w->errors(), 0);
    total += w->writes();
    for (size_t i = 0; i < w->blocks().size(); ++i) {
      ASSERT_TRUE(image->Pread(w->blocks()[i] * kBlock, kBlock, buf.data()).ok());
      const char want = static_cast<char>(Pattern(w->blocks()[i], w->last_seq(i)));
      EXPECT_EQ(buf, std::vector<char>(kBlock, want)) << "block " << w->blocks()[i];
    }
  }
  EXPECT_GT(total, 24u * 4);
  absl::StatusOr<std::vector<strata::SnapshotInfo>> snapshots = root.ListSnapshots();
  ASSERT_TRUE(snapshots.ok());
  EXPECT_EQ(snapshots->size(), 2u);  // s22 and s23
  EXPECT_EQ(root.Check(0)->corruptions, 0);
  ASSERT_TRUE(image->Close().ok());
  EXPECT_EQ(Shell("qemu-img check -q " + path), 0);
  EXPECT_EQ(Shell("qemu-img snapshot -l " + path + " | grep -q s23"), 0);
}

// A request held at a blkdebug breakpoint is in flight at the qcow2 node: a snapshot
// asked for meanwhile waits for it (the node quiesces) and then holds what it wrote.
// qcow2 itself would order a snapshot after a parked write, not after a parked read: the
// read case is the node's quiesce alone (the snapshot would finish around it otherwise).
class ParkedRequestTest : public ::testing::TestWithParam<bool> {};

TEST_P(ParkedRequestTest, SnapshotWaitsForIt) {
  const bool write = GetParam();
  const std::string path = TempPath(write ? "parked_w.qcow2" : "parked_r.qcow2");
  CreateQcow2(path);
  absl::StatusOr<std::unique_ptr<strata::Image>> opened = strata::Image::OpenJson(
      "{\"driver\": \"qcow2\", \"file\": {\"driver\": \"blkdebug\", \"image\": "
      "{\"driver\": \"file\", \"filename\": \"" + path + "\"}}}",
      [] {
        strata::OpenOptions o;
        o.read_only = false;
        return o;
      }());
  ASSERT_TRUE(opened.ok()) << opened.status();
  strata::Image& image = **opened;
  strata::Node root = image.root();
  std::vector<char> data(kBlock, 0x5a);
  if (!write) {
    ASSERT_TRUE(image.Pwrite(0, kBlock, data.data()).ok());  // a cluster to read
  }
  strata::DebugBreakpoints* bp = root.FindDebugBreakpoints();
  ASSERT_NE(bp, nullptr);
  ASSERT_TRUE(bp->AddBreakpoint(write ? "write_aio" : "read_aio", "A").ok());
  absl::StatusOr<std::unique_ptr<strata::Queue>> queue = strata::Queue::Start({});
  ASSERT_TRUE(queue.ok());
  std::vector<char> buf(kBlock);
  std::atomic<bool> done{false};
  strata::IoRequest r;
  r.op = write ? strata::IoOp::kWrite : strata::IoOp::kRead;
  r.offset = 0;
  r.qiov = strata::IoVector(write ? data.data() : buf.data(), kBlock);
  image.Submit(**queue, std::move(r), [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    done = true;
  });
  while (!bp->IsSuspended("A")) std::this_thread::yield();
  std::atomic<bool> snapshotted{false};
  std::thread snapshot([&] {
    EXPECT_TRUE(root.CreateSnapshot("during").ok());
    snapshotted = true;
  });
  // The snapshot cannot finish while the request is parked (without the quiesce it
  // would, here: give it ample chance).
  for (int i = 0; i < 200000; ++i) std::this_thread::yield();
  EXPECT_FALSE(snapshotted.load());
  ASSERT_TRUE(bp->Resume("A").ok());
  snapshot.join();
  while (!done.load()) std::this_thread::yield();
  EXPECT_TRUE(snapshotted.load());
  if (!write) {
    EXPECT_EQ(buf, data);
  }
  queue->reset();
  ASSERT_TRUE(image.Close().ok());
  // The snapshot holds the data: QEMU reads it there.
  EXPECT_EQ(Shell("qemu-img convert -l during -O raw " + path + " " + path + ".raw && "
                  "qemu-io -f raw -c 'read -P 0x5a 0 64k' " + path + ".raw | "
                  "grep -q 'read 65536/65536'"),
            0);
  EXPECT_EQ(Shell("qemu-img check -q " + path), 0);
}

INSTANTIATE_TEST_SUITE_P(ReadAndWrite, ParkedRequestTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Write" : "Read"; });

TEST(PublicApiTest, MakeEmptyQuiescesIoOnFourQueues) {
  const std::string base = TempPath("base.qcow2"), top = TempPath("top.qcow2");
  CreateQcow2(base);
  {
    std::unique_ptr<strata::Image> b = OpenRw(base);
    ASSERT_NE(b, nullptr);
    std::vector<char> fill(kBlock * kBlocks, 0x11);
    ASSERT_TRUE(b->Pwrite(0, fill.size(), fill.data()).ok());
    ASSERT_TRUE(b->Close().ok());
  }
  CreateQcow2(top, base);
  std::unique_ptr<strata::Image> image = OpenRw(top);
  ASSERT_NE(image, nullptr);
  strata::Node root = image->root();
  ASSERT_TRUE(root.backing());
  int failures = 0;
  auto writers = RunWithControl(*image, 8, [&](int) {
    if (!root.MakeEmpty().ok()) ++failures;
  });
  EXPECT_EQ(failures, 0);
  std::vector<char> buf(kBlock);
  for (const auto& w : writers) {
    EXPECT_EQ(w->errors(), 0);
    for (size_t i = 0; i < w->blocks().size(); ++i) {
      ASSERT_TRUE(image->Pread(w->blocks()[i] * kBlock, kBlock, buf.data()).ok());
      const char last = static_cast<char>(Pattern(w->blocks()[i], w->last_seq(i)));
      EXPECT_TRUE(buf == std::vector<char>(kBlock, last) ||
                  buf == std::vector<char>(kBlock, 0x11))
          << "block " << w->blocks()[i] << " holds neither its last write nor the base";
    }
  }
  ASSERT_TRUE(image->Close().ok());
  EXPECT_EQ(Shell("qemu-img check -q " + top), 0);
  EXPECT_EQ(Shell("qemu-img check -q " + base), 0);
}

}  // namespace
