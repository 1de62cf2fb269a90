// strata-img bench: qemu-img bench's options and output. One event loop on the main
// thread keeps `depth` requests in flight (BlockBackend::Submit), `count` requests of `size`
// bytes at offset, offset+step, ... (wrapping at the end of the image), optionally flushing
// every `flush_interval` requests. -i picks the engine: io_uring (also for "native", QEMU's
// Linux AIO) or threads; without -i, io_uring, or threads where the kernel refuses it.
#include <getopt.h>

#include <functional>
#include <optional>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "strata/queue.h"
#include "strata/types.h"
#include "strata/options.h"
#include "strata/errors.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int BenchMain(const Args& args) {
  int64_t count = 75000, depth = 64, flush_interval = 0;
  uint64_t offset = 0, size = 4096, step = 0;
  int pattern = 0;
  bool write = false, image_opts = false, drain = true, native_aio = false, force_share = false;
  std::optional<QueueEngine> engine;
  FormatArg fmt;
  std::string cache = "writeback";
  GetoptArgs argv(args);
  enum { kFlushInterval = 256, kNoDrain, kPattern, kImageOpts };
  static const struct option kLong[] = {
      {"help", no_argument, nullptr, 'h'},
      {"flush-interval", required_argument, nullptr, kFlushInterval},
      {"image-opts", no_argument, nullptr, kImageOpts},
      {"pattern", required_argument, nullptr, kPattern},
      {"no-drain", no_argument, nullptr, kNoDrain},
      {"force-share", no_argument, nullptr, 'U'},
      {nullptr, 0, nullptr, 0}};
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
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hc:d:f:ni:o:qs:S:t:wU", kLong,
                          nullptr)) != -1) {
    std::optional<uint64_t> v;
    switch (c) {
      case 'c': if (!(v = integer(optarg, "request count", INT_MAX))) return 1; count = *v; break;
      case 'd': if (!(v = integer(optarg, "queue depth", INT_MAX))) return 1; depth = *v; break;
      case 'f': fmt = optarg; break;
      case 'n': native_aio = true; engine = QueueEngine::kIoUring; break;
      case 'i':
        if (absl::StatusOr<QueueEngine> e = ParseQueueEngine(optarg); e.ok()) {
          engine = *e;
          native_aio = std::strcmp(optarg, "native") == 0;
        } else {
          tools::ErrorReport(e.status().message());
          return 1;
        }
        break;
      case 'o': if (!(v = ParseSizeArg(optarg, "offset"))) return 1; offset = *v; break;
      case 'q': break;  // accepted and ignored, as qemu-img bench does
      case 's': if (!(v = ParseSizeArg(optarg, "buffer size", INT32_MAX))) return 1; size = *v; break;
      case 'S': if (!(v = ParseSizeArg(optarg, "step_size", INT32_MAX))) return 1; step = *v; break;
      case 't': cache = optarg; break;
      case 'w': write = true; break;
      case 'U': force_share = true; break;
      case kFlushInterval:
        if (!(v = integer(optarg, "flush interval", INT_MAX))) return 1;
        flush_interval = *v;
        break;
      case kNoDrain: drain = false; break;
      case kPattern: if (!(v = integer(optarg, "pattern byte", 0xff))) return 1; pattern = *v; break;
      case kImageOpts: image_opts = true; break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default:
        return TryHelp(1);
    }
  }
  (void)drain;
  if (flush_interval && flush_interval < depth) {
    tools::ErrorReport("Flush interval can't be smaller than depth");
    return 1;
  }
  if (!ParseCacheMode(cache).ok()) {
    tools::ErrorReport("Invalid cache mode");
    return 1;
  }
  if (!ExpectOneFilename(argv)) return 1;
  if (step == 0) step = size;
  if (depth < 1) depth = 1;
  // Native AIO is QEMU's Linux AIO engine, which needs O_DIRECT; strata runs io_uring for
  // it, but refuses the same command lines.
  absl::StatusOr<CacheMode> mode = ParseCacheMode(cache);
  if (native_aio && mode.ok() && !mode->direct) {
    tools::ErrorReport(absl::StrCat("Could not open '", argv[optind],
                                    "': aio=native was specified, but it requires "
                                    "cache.direct=on, which was not specified."));
    return 1;
  }
  std::unique_ptr<Image> blk =
      OpenForTool(argv[optind], fmt, write, image_opts, cache, force_share);
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
  Queue::Options queue_options;
  queue_options.engine = engine.value_or(QueueEngine::kIoUring);
  queue_options.fall_back_to_threads = !engine.has_value();
  absl::StatusOr<std::unique_ptr<Queue>> loop = Queue::Create(queue_options);
  if (!loop.ok()) {
    tools::ErrorReport(absl::StrCat("Could not start the I/O engine: ", loop.status().message()));
    return 1;
  }
  Queue& ctx = **loop;
  // One buffer per slot of the queue; a slot issues its next request when one completes.
  std::vector<AlignedBuffer> buffers;
  for (int64_t t = 0; t < depth; ++t) {
    buffers.emplace_back(size, 4096);
    std::memset(buffers.back().data(), pattern, size);
  }
  int64_t next = 0, in_flight = 0;
  bool failed = false;
  std::function<void(size_t)> issue;
  auto finish = [&](size_t slot, const absl::Status& s) {
    --in_flight;
    if (!s.ok() && !failed) {
      failed = true;
      tools::ErrorReport(absl::StrCat("Failed request: ", StrError(ErrnoOf(s))));
    }
    issue(slot);
  };
  issue = [&](size_t slot) {
    if (failed || next >= count) return;
    const int64_t i = next++;
    ++in_flight;
    IoRequest r;
    r.op = write ? IoOp::kWrite : IoOp::kRead;
    r.offset = offset_of(i);
    r.qiov = buffers[slot].AsIoVector();
    blk->Submit(ctx, std::move(r), [&, slot, i](absl::Status s) {
      if (s.ok() && write && flush_interval && (i + 1) % flush_interval == 0) {
        IoRequest flush;
        flush.op = IoOp::kFlush;
        blk->Submit(ctx, std::move(flush), [&, slot](absl::Status fs) { finish(slot, fs); });
        return;
      }
      finish(slot, s);
    });
  };
  auto start = std::chrono::steady_clock::now();
  ctx.Post([&] {
    for (size_t slot = 0; slot < buffers.size(); ++slot) issue(slot);
  });
  ctx.RunUntil([&] { return in_flight == 0 && (failed || next >= count); });
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
