// The crash simulator: seeded random operation sequences on a qcow2 image whose file is a
// SimDisk (block/testing/crash_sim.h); at many points, post-crash disk states are built
// (durable bytes plus random subsets of the unflushed writes, some torn at 512-byte
// boundaries) and each must open (repairing it if dirty), pass check with no corruption,
// and read back, for every 512-byte guest sector, one of the contents that sector had
// since the last flush. (Sectors, not clusters: an in-place overwrite torn by the disk
// mixes old and new sectors within a cluster on any block device; what the format must
// never do is show data a sector never had, such as another cluster's or stale bytes.) Operations: allocating writes and copy-on-write over a backing file,
// in-place writes, write-zeroes, discards, flushes, growth (L1 growth) and large writes
// (refcount block and table growth), compressed writes, growth with preallocation,
// internal snapshots (create, apply, delete), make_empty and amend (refcount width,
// lazy refcounts); metadata preallocation at creation on some seeds; lazy refcounts on
// or off, writeback or writethrough.
// Persistent dirty bitmaps on half the seeds (one enabled, one disabled): every crash
// state must show them in use (inconsistent, so never trusted), and after the clean close
// the enabled one must cover every range written since the open and the disabled one
// none. The close that stores them is crashed too, before each of its flushes: each such
// state must hold each bitmap either still in use or stored whole and right.
//
// Throughput: crash states are built in memory and opened through the crash-sim driver
// (no file per state), and read back in cluster-sized chunks, so a run verifies about
// 10^5 states (--states_per_point scales it); qemu-img checks every 256th state.
//
// Flags: --seed=N replays one seed (printed on failure); --seeds=N runs seeds 1..N;
// --states_per_point=N crash states per verification point.
#include <malloc.h>
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
#include "block/diagnostics.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/crash_sim.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

constexpr uint64_t kSector = 512;
uint64_t g_only_seed = 0;
uint64_t g_seeds = 64;
uint64_t g_states_per_point = 180;
int64_t g_states_verified = 0;
int64_t g_states_in_close = 0;  // of those, taken inside a close that stores bitmaps

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
    backing_ = backing;
    CreateRequest create{dir_ + "/image.qcow2", size_,
                         {{"cluster_size", std::to_string(cluster_)},
                          {"lazy_refcounts", lazy_ ? "on" : "off"},
                          {"extended_l2", kind.extended ? "on" : "off"},
                          {"backing_file", dir_ + "/backing.raw"},
                          {"backing_fmt", "raw"}}};
    // Metadata preallocation (with a backing file only extended L2 images allow it).
    if (kind.extended && rng_() % 2 == 0 && !getenv("NOPREALLOC")) create.options["preallocation"] = "metadata";
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
    for (int i = 0; i < ops && !::testing::Test::HasFailure(); ++i) {
      DoRandomOperation();
      if (rng_() % 2 == 0 && disk_->PendingWrites() > 0) {
        for (uint64_t k = 0; k < g_states_per_point && !::testing::Test::HasFailure(); ++k) {
          VerifyCrashState(disk_->CrashState(rng_), /*in_bitmap_store=*/false);
        }
      }
    }
    // Crash states inside the close (the bitmap store's ordered steps), kept to verify
    // once the close is over: a few per flush.
    std::vector<std::vector<uint8_t>> in_close;
    if (with_bitmaps_) {
      disk_->SetBeforeFlush([&] {
        for (int k = 0; k < 3; ++k) in_close.push_back(disk_->CrashState(rng_));
      });
    }
    ASSERT_OK(blk_->Close());
    disk_->SetBeforeFlush(nullptr);
    for (std::vector<uint8_t>& state : in_close) {
      if (::testing::Test::HasFailure()) break;
      ++g_states_in_close;
      VerifyCrashState(std::move(state), /*in_bitmap_store=*/true);
    }
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

  // The contents of the whole disk now (the model's view).
  std::vector<uint8_t> ReadAll() {
    std::vector<uint8_t> all(size_);
    EXPECT_OK(blk_->Pread(0, size_, all.data()));
    return all;
  }

  // Operations on the image as a whole (snapshots, make_empty, amend), not on images with
  // bitmaps (the bitmap model follows guest writes only). Returns whether it ran one.
  static bool Succeeded(const absl::Status& s) {
    if (!s.ok()) ADD_FAILURE() << s;
    return s.ok();
  }

  bool DoImageOperation(uint64_t op) {
    DriverInstance& q = blk_->root().instance();
    if (op == 12) {  // snapshot create: contents unchanged, kept for a later apply
      if (snapshots_.size() >= 3) return false;
      const std::string name = absl::StrCat("s", next_snapshot_++);
      absl::Status created = q.CreateSnapshot(name);
      // Refused when a refcount would overflow the width (refcount_bits=1 after amend).
      if (created.code() == absl::StatusCode::kInvalidArgument) return false;
      if (!Succeeded(created)) return false;
      snapshots_.push_back({name, size_, ReadAll()});
      return true;
    }
    if (op == 13) {  // snapshot apply (same disk size only: the model keeps one size)
      if (snapshots_.empty()) return false;
      const SavedSnapshot& snap = snapshots_[rng_() % snapshots_.size()];
      if (snap.size != size_) return false;
      if (!Succeeded(q.ApplySnapshot(snap.name))) return false;
      EXPECT_TRUE(ReadAll() == snap.contents) << "snapshot " << snap.name << " applied wrongly";
      Record(0, size_ / cluster_ - 1);
      return true;
    }
    if (op == 14) {  // snapshot delete
      if (snapshots_.empty()) return false;
      const size_t i = rng_() % snapshots_.size();
      if (!Succeeded(q.DeleteSnapshot(snapshots_[i].name))) return false;
      snapshots_.erase(snapshots_.begin() + i);
      return true;
    }
    if (op == 15) {  // make_empty: everything reads from the backing file again
      if (!snapshots_.empty()) return false;  // QEMU refuses with snapshots
      absl::Status s = q.MakeEmpty();
      if (std::getenv("CRASHSIM_VERBOSE")) std::fprintf(stderr, "make_empty: %s\n", s.ToString().c_str());
      if (!s.ok()) return false;
      std::vector<uint8_t> expected = backing_;
      expected.resize(size_, 0);
      EXPECT_TRUE(ReadAll() == expected) << "make_empty left data of the overlay";
      Record(0, size_ / cluster_ - 1);
      return true;
    }
    // amend: refcount width (a whole new refcount structure) or lazy refcounts.
    static const char* const kWidths[] = {"1", "4", "16", "64"};
    std::vector<std::pair<std::string, std::string>> amend;
    if (rng_() % 3 == 0) {
      lazy_ = !lazy_;
      amend.push_back({"lazy_refcounts", lazy_ ? "on" : "off"});
    } else {
      amend.push_back({"refcount_bits", kWidths[rng_() % 4]});
    }
    // A refusal (a refcount too large for the new width) changes nothing.
    absl::Status s = q.Amend(amend, nullptr);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      if (amend[0].first == "lazy_refcounts") lazy_ = !lazy_;
      return false;
    }
    return true;
  }

  void DoRandomOperation() {
    const uint64_t op = rng_() % (with_bitmaps_ ? 14 : 20);
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
      // Sometimes preallocated (metadata, or data clusters made to read as zeroes).
      static const PreallocMode kModes[] = {PreallocMode::kOff, PreallocMode::kOff,
                                            PreallocMode::kMetadata, PreallocMode::kFalloc};
      ASSERT_OK(blk_->Truncate(size_ + grow, true, kModes[rng_() % 4]));
      // Growth is part of the header; flush it so the model's size is the durable one.
      ASSERT_OK(blk_->Flush());
      size_ += grow;
      for (auto& v : versions_) v.erase(v.begin(), v.end() - 1);
      versions_.resize(size_ / kSector, {std::string(kSector, '\0')});
      return;
    } else if (op == 12 || op == 13) {  // a compressed cluster (whole, aligned)
      offset = (rng_() % (size_ / cluster_)) * cluster_;
      len = cluster_;
      std::vector<uint8_t> data(len, static_cast<uint8_t>(rng_()));
      for (size_t i = 0; i < len; i += 97) data[i] = static_cast<uint8_t>(i);
      absl::Status s = blk_->Pwrite(offset, len, data.data(), kReqWriteCompressed);
      if (!s.ok()) return;  // refused before anything changed (e.g. an allocated cluster)
      written_.push_back({offset, len});
    } else if (op >= 14) {
      (void)DoImageOperation(op - 2);  // the model follows inside; nothing more to record
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

  // `in_bitmap_store`: the state was taken inside the close, which may have stored some
  // bitmaps already.
  void VerifyCrashState(std::vector<uint8_t> state, bool in_bitmap_store) {
    ++g_states_verified;
    const std::string name = absl::StrCat("crashstate", seed_);
    auto crashed = std::make_shared<testing::SimDisk>(std::move(state));
    testing::SimDisk::Register(name, crashed);
    struct Unregister {
      std::string name;
      ~Unregister() { testing::SimDisk::Unregister(name); }
    } unregister{name};
    ImageOpenRequest open;
    open.filename = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"crash-sim\",\"name\":\"" +
                    name + "\"}}";
    absl::StatusOr<OpenedImage> image = OpenImage(open);  // read-write: repairs if dirty
    ASSERT_OK(image.status());
    std::unique_ptr<BlockDriverState> root = std::move(image->root);
    // The bitmaps were flagged in use before the first write: never trusted after a crash,
    // unless the crash came after the close stored them (then they must be right).
    if (with_bitmaps_) {
      std::vector<DirtyBitmapInfo> bitmaps = root->instance().ListDirtyBitmaps();
      EXPECT_EQ(bitmaps.size(), 2u);
      for (const DirtyBitmapInfo& b : bitmaps) {
        if (in_bitmap_store && !b.inconsistent) {
          ExpectBitmapContents(root->instance(), b.name);
        } else {
          EXPECT_TRUE(b.in_use && b.inconsistent) << "bitmap " << b.name << " trusted after a crash";
        }
      }
    }
    absl::StatusOr<CheckResult> check = root->instance().Check(0);
    ASSERT_OK(check.status());
    EXPECT_EQ(check->corruptions, 0);
    EXPECT_EQ(check->check_errors, 0);
    absl::StatusOr<uint64_t> length = root->GetLength();
    ASSERT_OK(length.status());
    // Read in chunks of at least a cluster; compare sector by sector.
    const uint64_t chunk = std::max<uint64_t>(cluster_, 65536);
    std::string buf;
    for (uint64_t s = 0; s < versions_.size() && (s + 1) * kSector <= *length; ++s) {
      const uint64_t in_chunk = (s * kSector) % chunk;
      if (in_chunk == 0) {
        const uint64_t n = std::min<uint64_t>(chunk, *length - s * kSector);
        buf.assign(n, '\0');
        ASSERT_OK(root->Pread(s * kSector, n, buf.data()));
      }
      const absl::string_view data = absl::string_view(buf).substr(in_chunk, kSector);
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
    // The real qemu-img must agree, on some of the states (when installed), as strata's
    // open left them (repaired if the crash left the image dirty).
    if (g_states_verified % 256 == 0 && system("command -v qemu-img >/dev/null 2>&1") == 0) {
      std::vector<uint8_t> repaired(crashed->Length());
      crashed->Read(0, repaired.size(), repaired.data());
      const std::string path = dir_ + "/crashed.qcow2";
      WriteFile(path, repaired);
      int st = system(("qemu-img check -q " + path + " >/dev/null 2>&1").c_str());
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      // 0: clean; 3: leaks only (clusters allocated before the crash, never used).
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
    for (const DirtyBitmapInfo& b : image->root->instance().ListDirtyBitmaps()) {
      EXPECT_FALSE(b.in_use || b.inconsistent) << "bitmap " << b.name << " not stored";
    }
    ExpectBitmapContents(image->root->instance(), "on");
    ExpectBitmapContents(image->root->instance(), "off");
    ASSERT_OK(image->root->Close());
  }

  // A stored bitmap's contents: "on" dirty wherever a write, zeroing or discard touched
  // since the open, "off" clean.
  void ExpectBitmapContents(DriverInstance& instance, const std::string& name) {
    absl::StatusOr<DirtyBitmap> bitmap = instance.GetDirtyBitmap(name);
    ASSERT_OK(bitmap.status());
    EXPECT_EQ(bitmap->size(), size_);
    if (name == "off") {
      EXPECT_TRUE(bitmap->Empty()) << "the disabled bitmap recorded writes";
      return;
    }
    for (const auto& [offset, len] : written_) {
      const uint64_t g0 = offset / bitmap->granularity();
      for (uint64_t g = g0; g * bitmap->granularity() < offset + len; ++g) {
        ASSERT_TRUE(bitmap->IsDirty(g)) << "write at " << offset << "+" << len
                                        << " missing from the stored bitmap";
      }
    }
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  const std::string dir_;
  uint64_t cluster_ = 0;
  uint64_t size_ = 0;
  bool lazy_ = false;
  bool with_bitmaps_ = false;
  std::vector<uint8_t> backing_;
  struct SavedSnapshot {
    std::string name;
    uint64_t size;
    std::vector<uint8_t> contents;
  };
  std::vector<SavedSnapshot> snapshots_;
  int next_snapshot_ = 0;
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
  std::printf("%ld crash states verified (%ld inside a close storing bitmaps)\n",
              static_cast<long>(g_states_verified), static_cast<long>(g_states_in_close));
  EXPECT_GT(g_states_in_close, 0) << "no seed crashed a bitmap store";
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  // Every crash state is a few MiB built and dropped: keep such blocks in the heap for
  // reuse instead of mapping (and faulting in) fresh pages each time.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  ::testing::InitGoogleTest(&argc, argv);
  if (std::getenv("CRASHSIM_VERBOSE")) strata::SetDiagnosticSink(strata::PrintingDiagnosticSink("crashsim"));
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--seed=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(7), &strata::g_only_seed);
    if (arg.rfind("--seeds=", 0) == 0) (void)absl::SimpleAtoi(arg.substr(8), &strata::g_seeds);
    if (arg.rfind("--states_per_point=", 0) == 0) {
      (void)absl::SimpleAtoi(arg.substr(19), &strata::g_states_per_point);
    }
  }
  return RUN_ALL_TESTS();
}
