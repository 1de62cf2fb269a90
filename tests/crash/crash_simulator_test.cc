// The crash simulator: seeded random operation sequences on a qcow2 image whose file is a
// SimDisk (block/testing/crash_sim.h); at many points, post-crash disk states are built
// (durable bytes plus random subsets of the unflushed writes, some torn at 512-byte
// boundaries) and each must open (repairing it if dirty), pass check with no corruption,
// and read back, for every 512-byte guest sector, one of the contents that sector had
// since the last flush. (Sectors, not clusters: an in-place overwrite torn by the disk
// mixes old and new sectors within a cluster on any block device; what the format must
// never do is show data a sector never had, such as another cluster's or stale bytes.) Operations: allocating writes and copy-on-write over a backing file,
// in-place writes, write-zeroes, discards, flushes, growth (L1 growth) and large writes
// (refcount block and table growth); lazy refcounts on or off, writeback or writethrough.
// Persistent dirty bitmaps on half the seeds (one enabled, one disabled): every crash
// state must show them in use (inconsistent, so never trusted), and after the clean close
// the enabled one must cover every range written since the open and the disabled one
// none.
//
// Flags: --seed=N replays one seed (printed on failure); --seeds=N runs seeds 1..N.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/crash_sim.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kSector = 512;
uint64_t g_only_seed = 0;
uint64_t g_seeds = 12;
int64_t g_states_verified = 0;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// One seed's run.
class CrashRun {
 public:
  explicit CrashRun(uint64_t seed)
      : seed_(seed), rng_(seed), dir_(TempDir() + "/crashsim_" + std::to_string(seed)) {}

  void Run() {
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    // Standard L2 entries, or extended ones (subclusters: 512 bytes and 2 KiB).
    const struct {
      uint64_t cluster;
      bool extended;
    } kinds[] = {{512, false}, {4096, false}, {65536, false}, {16384, true}, {65536, true}};
    const auto kind = kinds[rng_() % 5];
    cluster_ = kind.cluster;
    lazy_ = rng_() % 2;
    const bool writethrough = rng_() % 4 == 0;
    size_ = 4 << 20;
    SCOPED_TRACE(absl::StrCat("seed ", seed_, " cluster ", cluster_, " extended_l2 ",
                              kind.extended, " lazy ", lazy_, " writethrough ", writethrough));
    // A backing file with a pattern, so copy-on-write has something to copy.
    std::vector<uint8_t> backing(size_);
    for (size_t i = 0; i < backing.size(); ++i) backing[i] = static_cast<uint8_t>(i * 7 + 3);
    WriteFile(dir_ + "/backing.raw", backing);
    CreateRequest create{dir_ + "/image.qcow2", size_,
                         {{"cluster_size", std::to_string(cluster_)},
                          {"lazy_refcounts", lazy_ ? "on" : "off"},
                          {"extended_l2", kind.extended ? "on" : "off"},
                          {"backing_file", dir_ + "/backing.raw"},
                          {"backing_fmt", "raw"}}};
    ASSERT_OK(DriverRegistry::Global().Find("qcow2")->Create(create));
    with_bitmaps_ = rng_() % 2 == 0;
    if (with_bitmaps_) {
      ImageOpenRequest add;
      add.filename = create.filename;
      add.format = "qcow2";
      add.flags.no_backing = true;
      absl::StatusOr<OpenedImage> plain = OpenImage(add);
      ASSERT_OK(plain.status());
      ASSERT_OK(plain->root->instance().AddDirtyBitmap("on", 4096 << (rng_() % 5), true, "x"));
      ASSERT_OK(plain->root->instance().AddDirtyBitmap("off", 65536, false, "x"));
      ASSERT_OK(plain->root->Close());
    }
    disk_ = std::make_shared<testing::SimDisk>(ReadFile(create.filename));
    const std::string sim_name = "sim" + std::to_string(seed_);
    testing::SimDisk::Register(sim_name, disk_);

    ImageOpenRequest open;
    open.filename = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"crash-sim\",\"name\":\"" +
                    sim_name + "\"}}";
    absl::StatusOr<OpenedImage> image = OpenImage(open);
    ASSERT_OK(image.status());
    blk_ = std::make_unique<BlockBackend>(std::move(image->root), writethrough);
    versions_.assign(size_ / kSector, {});
    Record(0, size_ / cluster_ - 1);

    const int ops = 40;
    for (int i = 0; i < ops && !::testing::Test::HasFatalFailure(); ++i) {
      DoRandomOperation();
      if (rng_() % 2 == 0) {
        for (int k = 0; k < 3 && !::testing::Test::HasFatalFailure(); ++k) VerifyCrashState();
      }
    }
    ASSERT_OK(blk_->Close());
    if (with_bitmaps_ && !::testing::Test::HasFatalFailure()) VerifyStoredBitmaps();
    testing::SimDisk::Unregister(sim_name);
    ASSERT_EQ(system(("rm -rf " + dir_).c_str()), 0);
  }

 private:
  std::string ReadCluster(uint64_t c) {
    std::string data(cluster_, '\0');
    EXPECT_OK(blk_->Pread(c * cluster_, cluster_, data.data()));
    return data;
  }

  // Records the current contents of the sectors of clusters [first, last] as possible
  // crash outcomes.
  void Record(uint64_t first, uint64_t last) {
    for (uint64_t c = first; c <= last && c < size_ / cluster_; ++c) {
      std::string data = ReadCluster(c);
      for (uint64_t s = 0; s < cluster_ / kSector; ++s) {
        std::vector<std::string>& v = versions_[c * (cluster_ / kSector) + s];
        std::string now = data.substr(s * kSector, kSector);
        if (v.empty() || v.back() != now) v.push_back(std::move(now));
      }
    }
  }

  void DoRandomOperation() {
    const uint64_t op = rng_() % 12;
    uint64_t offset = rng_() % size_;
    uint64_t len = std::min<uint64_t>(1 + rng_() % (3 * cluster_), size_ - offset);
    if (std::getenv("CRASHSIM_VERBOSE")) {
      std::fprintf(stderr, "op %lu offset %lu len %lu pending %zu\n", (unsigned long)op,
                   (unsigned long)offset, (unsigned long)len, disk_->PendingWrites());
    }
    if (op <= 4) {  // a write, often unaligned: COW, in place, or allocating
      std::vector<uint8_t> data(len, static_cast<uint8_t>(rng_()));
      ASSERT_OK(blk_->Pwrite(offset, len, data.data()));
      written_.push_back({offset, len});
    } else if (op == 5) {
      offset &= ~uint64_t{511};
      len = std::max<uint64_t>(512, len & ~uint64_t{511});
      len = std::min(len, size_ - offset);
      ASSERT_OK(blk_->PwriteZeroes(offset, len, rng_() % 2 ? kReqMayUnmap : 0));
      written_.push_back({offset, len});
    } else if (op == 6) {
      ASSERT_OK(blk_->Pdiscard(offset, len));
      written_.push_back({offset, len});
    } else if (op == 7 || op == 8) {
      ASSERT_OK(blk_->Flush());
      for (auto& v : versions_) v.erase(v.begin(), v.end() - 1);  // only the latest stays
      return;
    } else if (op == 9) {  // growth: more L1 entries, maybe a larger L1 table
      uint64_t grow = (1 + rng_() % 64) * cluster_ * std::max<uint64_t>(1, 65536 / cluster_);
      ASSERT_OK(blk_->Truncate(size_ + grow));
      // Growth is part of the header; flush it so the model's size is the durable one.
      ASSERT_OK(blk_->Flush());
      size_ += grow;
      for (auto& v : versions_) v.erase(v.begin(), v.end() - 1);
      versions_.resize(size_ / kSector, {std::string(kSector, '\0')});
      return;
    } else {  // a large write: many new clusters, new refcount blocks
      offset = (rng_() % (size_ / cluster_)) * cluster_;
      len = std::min<uint64_t>(size_ - offset, (64 + rng_() % 256) * cluster_);
      std::vector<uint8_t> data(len, static_cast<uint8_t>(rng_()));
      ASSERT_OK(blk_->Pwrite(offset, len, data.data()));
      written_.push_back({offset, len});
    }
    Record(offset / cluster_, (offset + len - 1) / cluster_);
  }

  void VerifyCrashState() {
    const std::string path = dir_ + "/crashed.qcow2";
    WriteFile(path, disk_->CrashState(rng_));
    ++g_states_verified;
    ImageOpenRequest open;
    open.filename = path;
    open.format = "qcow2";
    absl::StatusOr<OpenedImage> image = OpenImage(open);  // read-write: repairs if dirty
    ASSERT_OK(image.status());
    std::unique_ptr<BlockDriverState> root = std::move(image->root);
    // The bitmaps were flagged in use before the first write: never trusted after a crash.
    if (with_bitmaps_) {
      std::vector<DirtyBitmapInfo> bitmaps = root->instance().ListDirtyBitmaps();
      EXPECT_EQ(bitmaps.size(), 2u);
      for (const DirtyBitmapInfo& b : bitmaps) {
        EXPECT_TRUE(b.in_use && b.inconsistent) << "bitmap " << b.name << " trusted after a crash";
      }
    }
    absl::StatusOr<CheckResult> check = root->instance().Check(0);
    ASSERT_OK(check.status());
    EXPECT_EQ(check->corruptions, 0);
    EXPECT_EQ(check->check_errors, 0);
    absl::StatusOr<uint64_t> length = root->GetLength();
    ASSERT_OK(length.status());
    std::string data(kSector, '\0');
    for (uint64_t s = 0; s < versions_.size() && (s + 1) * kSector <= *length; ++s) {
      ASSERT_OK(root->Pread(s * kSector, kSector, data.data()));
      bool known = false;
      for (const std::string& v : versions_[s]) known = known || v == data;
      if (!known) {
        std::string seen;
        for (const std::string& v : versions_[s]) {
          seen += absl::StrCat(" ", static_cast<int>(static_cast<uint8_t>(v[0])), "..",
                               static_cast<int>(static_cast<uint8_t>(v[kSector - 1])));
        }
        FAIL() << "sector " << s << " (cluster " << s * kSector / cluster_
               << ") holds data it never had since the last flush: "
               << static_cast<int>(static_cast<uint8_t>(data[0])) << ".."
               << static_cast<int>(static_cast<uint8_t>(data[kSector - 1]))
               << ", versions:" << seen;
      }
    }
    ASSERT_OK(root->Close());
    root.reset();
    // The real qemu-img must agree, on some of the states (when installed).
    if (g_states_verified % 8 == 0 && system("command -v qemu-img >/dev/null 2>&1") == 0) {
      int st = system(("qemu-img check -q " + path + " >/dev/null 2>&1").c_str());
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      EXPECT_TRUE(code == 0 || code == 3) << "qemu-img check exit status " << code;
    }
  }

  // After the clean close: both bitmaps consistent; "on" dirty wherever a write, zeroing
  // or discard touched, "off" clean.
  void VerifyStoredBitmaps() {
    const std::string path = dir_ + "/closed.qcow2";
    WriteFile(path, disk_->CrashState(rng_));  // nothing is pending after Close
    ImageOpenRequest open;
    open.filename = path;
    open.format = "qcow2";
    open.flags.read_only = true;
    open.flags.no_backing = true;
    absl::StatusOr<OpenedImage> image = OpenImage(open);
    ASSERT_OK(image.status());
    absl::StatusOr<DirtyBitmap> on = image->root->instance().GetDirtyBitmap("on");
    ASSERT_OK(on.status());
    absl::StatusOr<DirtyBitmap> off = image->root->instance().GetDirtyBitmap("off");
    ASSERT_OK(off.status());
    EXPECT_TRUE(off->Empty());
    EXPECT_EQ(on->size(), size_);
    for (const auto& [offset, len] : written_) {
      for (uint64_t g = offset / on->granularity(); g * on->granularity() < offset + len; ++g) {
        ASSERT_TRUE(on->IsDirty(g)) << "write at " << offset << "+" << len
                                    << " missing from the stored bitmap";
      }
    }
    ASSERT_OK(image->root->Close());
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  const std::string dir_;
  uint64_t cluster_ = 0;
  uint64_t size_ = 0;
  bool lazy_ = false;
  bool with_bitmaps_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> written_;  // offset, length
  std::shared_ptr<testing::SimDisk> disk_;
  std::unique_ptr<BlockBackend> blk_;
  // Per guest sector: the contents it has had since the last flush (last = current).
  std::vector<std::vector<std::string>> versions_;
};

TEST(CrashSimulatorTest, EveryCrashStateOpensChecksCleanAndReadsOldOrNewData) {
  uint64_t first = g_only_seed ? g_only_seed : 1;
  uint64_t last = g_only_seed ? g_only_seed : g_seeds;
  for (uint64_t seed = first; seed <= last; ++seed) {
    CrashRun run(seed);
    run.Run();
    if (::testing::Test::HasFailure()) {
      std::printf("crash simulator failed; replay with --seed=%lu\n",
                  static_cast<unsigned long>(seed));
      break;
    }
  }
  std::printf("%ld crash states verified\n", static_cast<long>(g_states_verified));
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--seed=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(7), &strata::g_only_seed);
    if (arg.rfind("--seeds=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(8), &strata::g_seeds);
  }
  return RUN_ALL_TESTS();
}
