// strata's C++ API as an embedder uses it, built from the installed library:
//   g++ -std=c++20 cxx_example.cc $(pkg-config --cflags --libs strata-cpp)
//   ./cxx_example disk.qcow2
//
// Opens the image read-write, writes 0xa5 over its first 256 KiB from two queues at once
// (asynchronous requests, 16 in flight each), takes an internal snapshot while they run
// (the node quiesces: requests wait, then go on), flushes, reads everything back, and
// prints the snapshot list. Exit status 0 on success.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "strata/errors.h"
#include "strata/image.h"
#include "strata/queue.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  strata::ImageSpec spec;
  spec.filename = argv[1];
  spec.options.read_only = false;
  absl::StatusOr<std::unique_ptr<strata::Image>> opened = strata::Image::Open(spec);
  if (!opened.ok()) {
    std::fprintf(stderr, "Could not open '%s': %s\n", argv[1],
                 std::string(opened.status().message()).c_str());
    return 1;
  }
  strata::Image& image = **opened;

  constexpr uint64_t kChunk = 4096, kChunks = 64;  // 256 KiB
  std::vector<char> data(kChunk * kChunks, static_cast<char>(0xa5));
  std::atomic<int> remaining{static_cast<int>(kChunks)}, failures{0};
  std::vector<std::unique_ptr<strata::Queue>> queues;
  for (int q = 0; q < 2; ++q) {
    absl::StatusOr<std::unique_ptr<strata::Queue>> queue = strata::Queue::Start({});
    if (!queue.ok()) return 1;
    queues.push_back(*std::move(queue));
  }
  for (uint64_t i = 0; i < kChunks; ++i) {
    strata::IoRequest r;
    r.op = strata::IoOp::kWrite;
    r.offset = i * kChunk;
    r.qiov = strata::IoVector(data.data() + i * kChunk, kChunk);
    image.Submit(*queues[i % 2], std::move(r), [&](absl::Status s) {
      if (!s.ok()) ++failures;
      --remaining;
      remaining.notify_all();
    });
    if (i == kChunks / 2) {
      absl::Status snap = image.root().CreateSnapshot("mid-write");
      if (!snap.ok()) {
        std::fprintf(stderr, "snapshot: %s\n", std::string(snap.message()).c_str());
        return 1;
      }
    }
  }
  for (int left = remaining.load(); left > 0; left = remaining.load()) remaining.wait(left);
  queues.clear();
  if (failures.load() != 0 || !image.Flush().ok()) return 1;

  std::vector<char> back(data.size());
  if (!image.Pread(0, back.size(), back.data()).ok() || back != data) return 1;
  absl::StatusOr<std::vector<strata::SnapshotInfo>> snapshots = image.root().ListSnapshots();
  if (!snapshots.ok()) return 1;
  for (const strata::SnapshotInfo& s : *snapshots) std::printf("snapshot %s\n", s.name.c_str());
  absl::Status closed = image.Close();
  if (!closed.ok()) {
    std::fprintf(stderr, "close: %s (errno %d)\n", std::string(closed.message()).c_str(),
                 strata::ErrnoOf(closed));
    return 1;
  }
  return 0;
}
