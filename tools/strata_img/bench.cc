// strata-img bench: qemu-img bench's options and output. `depth` worker threads issue
// `count` requests of `size` bytes at offset, offset+step, ... (wrapping at the end of the
// image), optionally flushing every `flush_interval` requests.
#include <getopt.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "block/cache_mode.h"
#include "block/options_json.h"
#include "block/status.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int BenchMain(const Args& args) {
  int64_t count = 75000, depth = 64, flush_interval = 0;
  uint64_t offset = 0, size = 4096, step = 0;
  int pattern = 0;
  bool write = false, image_opts = false, drain = true, native_aio = false;
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
  // Counts and the pattern byte are plain C integers up to `max` (no size suffixes).
  auto integer = [](const char* text, const char* what,
                    uint64_t max) -> std::optional<uint64_t> {
    std::optional<uint64_t> v = ParseCInteger(text);
    if (!v || *v > max) {
      tools::ErrorReport(absl::StrCat("Invalid ", what, " specified"));
      return std::nullopt;
    }
    return v;
  };
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), "hc:d:f:ni:o:qs:S:t:wU", kLong,
                          nullptr)) != -1) {
    std::optional<uint64_t> v;
    switch (c) {
      case 'c': if (!(v = integer(optarg, "request count", INT_MAX))) return 1; count = *v; break;
      case 'd': if (!(v = integer(optarg, "queue depth", INT_MAX))) return 1; depth = *v; break;
      case 'f': fmt = optarg; break;
      case 'n': native_aio = true; break;
      case 'i':
        if (std::strcmp(optarg, "native") == 0) {
          native_aio = true;
        } else if (std::strcmp(optarg, "threads") != 0 && std::strcmp(optarg, "io_uring") != 0) {
          tools::ErrorReport(absl::StrCat("Invalid aio option: ", optarg));
          return 1;
        } else {
          native_aio = false;
        }
        break;
      case 'o': if (!(v = number(optarg, "offset"))) return 1; offset = *v; break;
      case 'q': break;  // accepted and ignored, as qemu-img bench does
      case 's': if (!(v = number(optarg, "buffer size"))) return 1; size = *v; break;
      case 'S': if (!(v = number(optarg, "step size"))) return 1; step = *v; break;
      case 't': cache = optarg; break;
      case 'w': write = true; break;
      case 'U': break;
      case kFlushInterval:
        if (!(v = integer(optarg, "flush interval", INT_MAX))) return 1;
        flush_interval = *v;
        break;
      case kNoDrain: drain = false; break;
      case kPattern: if (!(v = integer(optarg, "pattern byte", 0xff))) return 1; pattern = *v; break;
      case kImageOpts: image_opts = true; break;
      case kObject: break;
      default:
        return TryHelp(1);
    }
  }
  (void)drain;
  if (flush_interval && flush_interval < depth) {
    tools::ErrorReport("Flush interval can't be smaller than depth");
    return 1;
  }
  if (!ExpectOneFilename(argv)) return 1;
  if (step == 0) step = size;
  if (depth < 1) depth = 1;
  // Native AIO is QEMU's Linux AIO engine, which needs O_DIRECT; strata's requests run on
  // threads either way, but the same command lines are refused.
  absl::StatusOr<CacheMode> mode = ParseCacheMode(cache);
  if (native_aio && mode.ok() && !mode->direct) {
    tools::ErrorReport(absl::StrCat("Could not open '", argv[optind],
                                    "': aio=native was specified, but it requires "
                                    "cache.direct=on, which was not specified."));
    return 1;
  }
  std::unique_ptr<BlockBackend> blk = OpenForTool(argv[optind], fmt, write, image_opts, cache);
  if (!blk) return 1;
  const uint64_t image_size = blk->GetLength().value_or(0);
  {
    std::printf("Sending %lld %s requests, %llu bytes each, %lld in parallel "
                "(starting at offset %llu, step size %llu)\n",
                static_cast<long long>(count), write ? "write" : "read",
                static_cast<unsigned long long>(size), static_cast<long long>(depth),
                static_cast<unsigned long long>(offset), static_cast<unsigned long long>(step));
    if (flush_interval) {
      std::printf("Sending flush every %lld requests\n", static_cast<long long>(flush_interval));
    }
  }
  // Request i goes to `offset` for i = 0 and then to (offset + i * step) modulo
  // (image size - request size), qemu-img bench's sequence (0 if the image is no larger
  // than a request: such requests fail).
  const uint64_t wrap = image_size > size ? image_size - size : 0;
  auto offset_of = [&](uint64_t i) -> uint64_t {
    if (i == 0) return offset;
    if (wrap == 0) return 0;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(i) * step + offset) % wrap);
  };
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < depth; ++t) {
    workers.emplace_back([&] {
      AlignedBuffer buf(size, 4096);
      std::memset(buf.data(), pattern, size);
      for (int64_t i = next++; i < count && !failed; i = next++) {
        const uint64_t off = offset_of(i);
        absl::Status s = write ? blk->Pwrite(off, size, buf.data()) : blk->Pread(off, size, buf.data());
        if (s.ok() && write && flush_interval && (i + 1) % flush_interval == 0) s = blk->Flush();
        if (!s.ok()) {
          if (!failed.exchange(true)) {
            tools::ErrorReport(absl::StrCat("Failed request: ", StrError(ErrnoOf(s))));
          }
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  // Like qemu-img bench: the time of the requests themselves; closing the image (and the
  // flush that comes with it) happens after the report.
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!failed) std::printf("Run completed in %3.3f seconds.\n", secs);
  absl::Status s = blk->Close();
  if (!s.ok()) tools::ErrorReport(s.message());
  if (failed || !s.ok()) return 1;
  return 0;
}

}  // namespace strata::img
