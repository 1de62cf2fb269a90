// strata micro-benchmarks for the hot paths of the qcow2 driver: IoVector slicing, the
// metadata table cache (hit and miss), the L2 lookup behind every request (block status
// of an allocated image) and cluster allocation through the refcount blocks.
//
//   bazel run -c opt //bench:hot_paths_bench
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "block/block_backend.h"
#include "block/child.h"
#include "block/graph_builder.h"
#include "block/io_vector.h"
#include "block/registry.h"
#include "drivers/qcow2/qcow2_cache.h"
#include "drivers/qcow2/qcow2_refcount.h"

namespace strata {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/var/tmp") + "/strata_bench_" + name + "_" +
         std::to_string(getpid());
}

// A raw file node of `bytes` bytes, owned by a child edge (what drivers hold).
std::unique_ptr<BdrvChild> FileChild(const std::string& path, uint64_t bytes) {
  const BlockDriver* file = DriverRegistry::Global().Find("file");
  CreateRequest create{path, bytes, {}};
  if (!file->Create(create).ok()) std::abort();
  proto::BlockdevOptions opts;
  opts.set_driver("file");
  opts.mutable_file()->set_filename(path);
  absl::StatusOr<std::unique_ptr<BlockDriverState>> node =
      OpenGraph(opts, OpenFlags{}, FormatChildPermissions(false));
  if (!node.ok()) std::abort();
  return std::make_unique<BdrvChild>("file", ChildRole::kFile, *std::move(node));
}

void BM_IoVectorSlice(benchmark::State& state) {
  const int segments = static_cast<int>(state.range(0));
  std::vector<std::vector<uint8_t>> buffers(segments, std::vector<uint8_t>(4096));
  IoVector qiov;
  for (auto& b : buffers) qiov.Append(b.data(), b.size());
  size_t offset = 0;
  for (auto _ : state) {
    IoVector slice = qiov.Slice(offset, 8192);
    benchmark::DoNotOptimize(slice);
    offset = (offset + 4096 + 512) % (qiov.size() - 8192);
  }
}
BENCHMARK(BM_IoVectorSlice)->Arg(1)->Arg(16)->Arg(256);

void BM_TableCacheHit(benchmark::State& state) {
  const std::string path = TempPath("cache_hit");
  auto file = FileChild(path, 64 << 20);
  qcow2::Qcow2TableCache cache(file.get(), 65536, 64, std::nullopt, DebugEvent::kL2Update);
  for (uint64_t i = 0; i < 32; ++i) (void)cache.Get(i << 16);
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Get((i++ % 32) << 16));
  }
  unlink(path.c_str());
}
BENCHMARK(BM_TableCacheHit);

void BM_TableCacheMiss(benchmark::State& state) {
  const std::string path = TempPath("cache_miss");
  auto file = FileChild(path, 64 << 20);
  const uint64_t table = state.range(0);
  // Two entries cycling over three tables: every lookup reads one from the file.
  qcow2::Qcow2TableCache cache(file.get(), table, 2, std::nullopt, DebugEvent::kL2Update);
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Get((i++ % 3) * table));
  }
  unlink(path.c_str());
}
BENCHMARK(BM_TableCacheMiss)->Arg(4096)->Arg(65536);

// The qcow2 driver's block status at random offsets of a fully allocated 1 GiB image: L1
// and L2 lookup, cache hit, run length; no I/O at all.
void BM_L2Lookup(benchmark::State& state) {
  const std::string path = TempPath("l2");
  const BlockDriver* qcow2 = DriverRegistry::Global().Find("qcow2");
  CreateRequest create{path, uint64_t{1} << 30, {{"preallocation", "metadata"}}};
  if (!qcow2->Create(create).ok()) std::abort();
  ImageOpenRequest request;
  request.filename = path;
  request.format = "qcow2";
  absl::StatusOr<OpenedImage> image = OpenImage(request);
  if (!image.ok()) std::abort();
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    const uint64_t offset = (rng() % (uint64_t{1} << 30)) & ~uint64_t{4095};
    // The driver's own answer: the L2 lookup, without the node asking the file for holes.
    benchmark::DoNotOptimize(image->root->instance().GetBlockStatus(offset, 4096));
  }
  (void)image->root->Close();
  unlink(path.c_str());
}
BENCHMARK(BM_L2Lookup);

// Allocating one cluster at a time through the refcount blocks (cached), as allocating
// writes do; a fresh structure every 16384 clusters keeps the file small.
void BM_RefcountAllocate(benchmark::State& state) {
  const std::string path = TempPath("refcount");
  auto file = FileChild(path, 4 << 20);
  constexpr uint64_t kClusterBits = 16;
  auto fresh = [&] {
    // Reftable at cluster 1 pointing at a refblock at cluster 2; clusters 0-2 in use.
    std::vector<uint8_t> meta(3 << kClusterBits, 0);
    meta[(1 << kClusterBits) + 6] = 0x02;  // big-endian 0x20000
    for (int c = 0; c < 3; ++c) meta[(2 << kClusterBits) + 2 * c + 1] = 1;
    (void)file->node().Pwrite(0, meta.size(), meta.data());
    auto refcounts = std::make_unique<qcow2::Qcow2Refcounts>(
        file.get(), kClusterBits, 4, 4, [](uint64_t, uint32_t) { return absl::OkStatus(); });
    (void)refcounts->Load(1 << kClusterBits, 1, 3 << kClusterBits);
    return refcounts;
  };
  auto refcounts = fresh();
  uint64_t allocated = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(refcounts->AllocateClusters(1));
    if (++allocated == 16384) {
      state.PauseTiming();
      refcounts = fresh();
      allocated = 0;
      state.ResumeTiming();
    }
  }
  unlink(path.c_str());
}
BENCHMARK(BM_RefcountAllocate);

}  // namespace
}  // namespace strata

BENCHMARK_MAIN();
