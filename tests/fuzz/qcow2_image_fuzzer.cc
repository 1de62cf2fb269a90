// Fuzz target: a qcow2 image file. Opens the input as qcow2 (read-write, no backing
// file; an external data file named by the image is replaced by a null-co node, so the
// input can name no real file), then reads the start and some scattered ranges of the
// disk, writes, zeroes and discards a few ranges, lists snapshots, runs check (report,
// then repair) and closes. Any error is fine; a crash, a sanitizer report or a hang is
// a finding.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "block/graph_builder.h"
#include "block/node.h"
#include "tests/fuzz/fuzz_sandbox.h"

namespace {

using strata::ImageOpenRequest;

absl::StatusOr<strata::OpenedImage> OpenWithNullDataFile(const std::string& path) {
  ImageOpenRequest request;
  request.filename = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" +
                     path + "\"},\"data-file\":{\"driver\":\"null-co\",\"size\":1073741824}}";
  request.flags.no_backing = true;
  absl::StatusOr<strata::OpenedImage> image = strata::OpenImage(request);
  if (image.ok() || image.status().message().find("can only be set for images") ==
                        std::string::npos) {
    return image;
  }
  // No external data file: open plainly.
  request.filename = path;
  request.format = "qcow2";
  return strata::OpenImage(request);
}

void Exercise(strata::BlockDriverState& node) {
  absl::StatusOr<uint64_t> length = node.GetLength();
  if (!length.ok() || *length == 0) return;
  const uint64_t size = *length;
  std::vector<uint8_t> buf(65536);
  // The start of the disk, then a few ranges spread over it (at most 1 MiB read).
  for (uint64_t off = 0; off < std::min<uint64_t>(size, 262144); off += buf.size()) {
    (void)node.Pread(off, std::min<uint64_t>(buf.size(), size - off), buf.data());
  }
  for (int i = 1; i <= 12; ++i) {
    const uint64_t off = (size / 13) * i & ~uint64_t{511};
    (void)node.Pread(off, std::min<uint64_t>(buf.size(), size - off), buf.data());
  }
  // Writes: allocating or in place, unaligned, zeroes with and without unmap, a discard.
  std::fill(buf.begin(), buf.end(), 0x5a);
  (void)node.Pwrite(0, std::min<uint64_t>(4096, size), buf.data());
  (void)node.Pwrite(size / 2 + 1, std::min<uint64_t>(70000, size - size / 2 - 1) % buf.size(),
                    buf.data());
  (void)node.PwriteZeroes(size / 3 & ~uint64_t{511}, std::min<uint64_t>(65536, size - (size / 3 & ~uint64_t{511})), 0);
  (void)node.Pdiscard(size / 4 & ~uint64_t{511}, std::min<uint64_t>(131072, size - (size / 4 & ~uint64_t{511})));
  (void)node.Pread(size / 2 + 1, std::min<uint64_t>(4096, size - size / 2 - 1), buf.data());
  (void)node.Flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = strata::fuzz::WriteScratchFile("image.qcow2", data, size);
  absl::StatusOr<strata::OpenedImage> image = OpenWithNullDataFile(path);
  if (!image.ok()) return 0;
  strata::BlockDriverState& root = *image->root;
  Exercise(root);
  (void)root.instance().ListSnapshots();
  (void)root.instance().ListDirtyBitmaps();
  (void)root.instance().Check(0);
  (void)root.instance().Check(3);  // repair leaks and errors
  (void)root.Close();
  return 0;
}
