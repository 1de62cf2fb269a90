// strata-img bench: qemu-img bench's options and output. `depth` worker threads issue
// `count` requests of `size` bytes at offset, offset+step, ... (wrapping at the end of the
// image), optionally flushing every `flush_interval` requests.
#include <getopt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "block/options_json.h"
#include "block/status.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int BenchMain(const Args& args) {
  int64_t count = 75000, depth = 64, flush_interval = 0;
  uint64_t offset = 0, size = 4096, step = 0;
  int pattern = 0;
  bool write = false, quiet = false, image_opts = false, drain = true;
  std::string fmt, cache = "writeback";
  GetoptArgs argv(args);
  enum { kFlushInterval = 256, kNoDrain, kPattern, kImageOpts, kObject };
  static const struct option kLong[] = {
      {"help", no_argument, nullptr, 'h'},
      {"flush-interval", required_argument, nullptr, kFlushInterval},
      {"image-opts", no_argument, nullptr, kImageOpts},
      {"pattern", required_argument, nullptr, kPattern},
      {"no-drain", no_argument, nullptr, kNoDrain},
      {"force-share", no_argument, nullptr, 'U'},
      {"object", required_argument, nullptr, kObject},
      {nullptr, 0, nullptr, 0}};
  auto number = [](const char* text, const char* what) -> std::optional<uint64_t> {
    absl::StatusOr<uint64_t> v = ParseSize(text);
    if (!v.ok()) {
      tools::ErrorReport(absl::StrCat("Invalid ", what, " specified"));
      return std::nullopt;
    }
    return *v;
  };
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), "hc:d:f:ni:o:qs:S:t:wU", kLong,
                          nullptr)) != -1) {
    std::optional<uint64_t> v;
    switch (c) {
      case 'c': if (!(v = number(optarg, "request count"))) return 1; count = *v; break;
      case 'd': if (!(v = number(optarg, "queue depth"))) return 1; depth = *v; break;
      case 'f': fmt = optarg; break;
      case 'n': cache = "none"; break;
      case 'i': break;
      case 'o': if (!(v = number(optarg, "offset"))) return 1; offset = *v; break;
      case 'q': quiet = true; break;
      case 's': if (!(v = number(optarg, "buffer size"))) return 1; size = *v; break;
      case 'S': if (!(v = number(optarg, "step size"))) return 1; step = *v; break;
      case 't': cache = optarg; break;
      case 'w': write = true; break;
      case 'U': break;
      case kFlushInterval:
        if (!(v = number(optarg, "flush interval"))) return 1;
        flush_interval = *v;
        break;
      case kNoDrain: drain = false; break;
      case kPattern: if (!(v = number(optarg, "pattern byte"))) return 1; pattern = *v; break;
      case kImageOpts: image_opts = true; break;
      case kObject: break;
      default:
        return TryHelp(1);
    }
  }
  (void)drain;
  if (!ExpectOneFilename(args)) return 1;
  if (step == 0) step = size;
  if (depth < 1) depth = 1;
  std::unique_ptr<BlockBackend> blk = OpenForTool(args[optind], fmt, write, image_opts, cache);
  if (!blk) return 1;
  uint64_t image_size = blk->GetLength().value_or(0);
  if (image_size < size) {
    tools::ErrorReport("Image is smaller than the request size");
    return 1;
  }
  if (!quiet) {
    std::printf("Sending %lld %s requests, %llu bytes each, %lld in parallel "
                "(starting at offset %llu, step size %llu)\n",
                static_cast<long long>(count), write ? "write" : "read",
                static_cast<unsigned long long>(size), static_cast<long long>(depth),
                static_cast<unsigned long long>(offset), static_cast<unsigned long long>(step));
    if (flush_interval) {
      std::printf("Sending flush every %lld requests\n", static_cast<long long>(flush_interval));
    }
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < depth; ++t) {
    workers.emplace_back([&] {
      AlignedBuffer buf(size, 4096);
      std::memset(buf.data(), pattern, size);
      for (int64_t i = next++; i < count && !failed; i = next++) {
        // Offsets advance by `step` and wrap to the start offset at the end of the image.
        uint64_t span = image_size - offset - size + 1;
        uint64_t off = offset + (static_cast<uint64_t>(i) * step) % span;
        absl::Status s = write ? blk->Pwrite(off, size, buf.data()) : blk->Pread(off, size, buf.data());
        if (s.ok() && write && flush_interval && (i + 1) % flush_interval == 0) s = blk->Flush();
        if (!s.ok()) {
          if (!failed.exchange(true)) {
            std::fprintf(stderr, "Failed request: %s\n", StrError(ErrnoOf(s)).c_str());
          }
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  // Like qemu-img bench: the time of the requests themselves; closing the image (and the
  // flush that comes with it) happens after the report.
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!failed && !quiet) std::printf("Run completed in %3.3f seconds.\n", secs);
  absl::Status s = blk->Close();
  if (!s.ok()) tools::ErrorReport(s.message());
  if (failed || !s.ok()) return 1;
  return 0;
}

}  // namespace strata::img
