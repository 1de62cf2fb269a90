// strata-img compare: do two images read the same? Exit 0 identical, 1 different,
// 2 open/option error, 4 read error (qemu-img's codes).
#include <algorithm>
#include <getopt.h>

#include <cinttypes>
#include <cstdio>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {
namespace {

// qemu-img's buffer: its data steps, and so its -p figures, come in this size.
constexpr uint64_t kChunkBytes = 2 << 20;
constexpr uint64_t kSectorBytes = 512;

// Offset of the first differing 512-byte sector in two equal-size buffers, or -1.
int64_t FirstMismatch(const uint8_t* a, const uint8_t* b, uint64_t len) {
  for (uint64_t off = 0; off < len; off += kSectorBytes) {
    uint64_t n = std::min(kSectorBytes, len - off);
    if (std::memcmp(a + off, b + off, n) != 0) return off;
  }
  return -1;
}

}  // namespace

int CompareMain(const Args& args) {
  FormatArg fmt1, fmt2;
  std::string cache = "writeback";
  bool quiet = false, progress = false, strict = false, image_opts = false, force_share = false;
  GetoptArgs argv(args);
  enum { kImageOpts = 256, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hf:F:T:pqsU", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt1 = optarg; break;
      case 'F': fmt2 = optarg; break;
      case 'T': cache = optarg; break;
      case 'p': progress = true; break;
      case 'q': quiet = true; break;
      case 's': strict = true; break;
      case 'U': force_share = true; break;
      case kImageOpts: image_opts = true; break;
      case kObject:  // compare's errors exit 2 (1 means "images differ")
        if (!tools::DefineObject(optarg)) return 2;
        break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default:
        return TryHelp(2);
    }
  }
  if (optind != static_cast<int>(args.size()) - 2) {
    tools::ErrorReport("Expecting two image file names");
    return TryHelp(1);
  }
  if (!CheckCacheArg(cache, "source cache option")) return 2;
  std::unique_ptr<Image> a =
      OpenForTool(argv[optind], fmt1, false, image_opts, cache, force_share);
  if (!a) return 2;
  std::unique_ptr<Image> b =
      OpenForTool(argv[optind + 1], fmt2, false, image_opts, cache,
                  force_share);
  if (!b) return 2;
  uint64_t len_a = a->GetLength().value_or(0), len_b = b->GetLength().value_or(0);
  uint64_t common = std::min(len_a, len_b);
  // -p as qemu-img prints it for compare: the share of the larger image done after each
  // step (a zero run skipped, a data piece compared), when it moved by more than 2% (or
  // is 0 or 100); the output ends with an empty line, whatever the result.
  if (quiet) progress = false;  // -q wins, as in qemu-img
  struct ProgressEnd {
    bool on;
    ~ProgressEnd() {
      if (on) std::printf("\n");
    }
  } progress_end{progress};
  const uint64_t total = std::max(len_a, len_b);
  uint64_t done = 0;
  ProgressPrinter printer(/*min_skip=*/2);
  auto advance = [&](uint64_t bytes) {
    done += bytes;
    if (progress && total > 0) printer.Report(100.0 * done / total);  // done > 0: never 0
  };
  if (progress) PrintProgress(0);
  // Strict mode refuses a size mismatch before comparing anything.
  if (strict && len_a != len_b) {
    if (!quiet) std::printf("Strict mode: Image size mismatch!\n");
    return 1;
  }
  std::vector<uint8_t> buf_a(kChunkBytes), buf_b(kChunkBytes);
  // How far from `off` both sides (or the one side given) are known to read as zeroes
  // without reading: 0 if not, and then `data_run` is how far their answers hold (the
  // data step is no longer). Time follows what is allocated, not the virtual size.
  uint64_t data_run = 0;
  auto known_zero = [&](Image* x, Image* y, const std::string& x_name,
                        const std::string& y_name, uint64_t off,
                        uint64_t end) -> std::optional<uint64_t> {
    absl::StatusOr<RangeStatus> sx = x->root().GetBlockStatusAbove(off, end - off);
    if (!sx.ok()) {
      tools::ErrorReport(absl::StrCat("Sector allocation test failed for ", x_name));
      return std::nullopt;
    }
    uint64_t run = std::max<uint64_t>(sx->bytes, 1);
    if (!sx->zero) {
      data_run = run;
      return 0;
    }
    if (y != nullptr) {
      absl::StatusOr<RangeStatus> sy = y->root().GetBlockStatusAbove(off, run);
      if (!sy.ok()) {
        tools::ErrorReport(absl::StrCat("Sector allocation test failed for ", y_name));
        return std::nullopt;
      }
      run = std::min(run, std::max<uint64_t>(sy->bytes, 1));
      if (!sy->zero) {
        data_run = run;
        return 0;
      }
    }
    return run;
  };
  const std::string name_a = argv[optind], name_b = argv[optind + 1];
  for (uint64_t off = 0; off < common;) {
    std::optional<uint64_t> skip = known_zero(a.get(), b.get(), name_a, name_b, off, common);
    if (!skip) return 3;
    if (*skip > 0) {
      off += *skip;
      advance(*skip);
      continue;
    }
    uint64_t n = std::min({kChunkBytes, common - off, data_run});
    absl::Status s1 = a->Pread(off, n, buf_a.data());
    absl::Status s2 = s1.ok() ? b->Pread(off, n, buf_b.data()) : s1;
    if (!s2.ok()) {
      tools::ErrorReport(absl::StrCat("Error while reading offset ", off, ": ",
                                      StrError(ErrnoOf(s2))));
      return 4;
    }
    int64_t mismatch = FirstMismatch(buf_a.data(), buf_b.data(), n);
    if (mismatch >= 0) {
      if (!quiet) std::printf("Content mismatch at offset %" PRIu64 "!\n", off + mismatch);
      return 1;
    }
    off += n;
    advance(n);
  }
  if (len_a != len_b) {
    if (strict) {
      if (!quiet) std::printf("Strict mode: Image size mismatch!\n");
      return 1;
    }
    if (!quiet) std::printf("Warning: Image size mismatch!\n");
    Image& longer = len_a > len_b ? *a : *b;
    const std::string& longer_name = len_a > len_b ? name_a : name_b;
    uint64_t end = std::max(len_a, len_b);
    for (uint64_t off = common; off < end;) {
      std::optional<uint64_t> skip = known_zero(&longer, nullptr, longer_name, "", off, end);
      if (!skip) return 3;
      if (*skip > 0) {
        off += *skip;
        advance(*skip);
        continue;
      }
      uint64_t n = std::min({kChunkBytes, end - off, data_run});
      absl::Status s = longer.Pread(off, n, buf_a.data());
      if (!s.ok()) {
        tools::ErrorReport(absl::StrCat("Error while reading offset ", off, ": ",
                                        StrError(ErrnoOf(s))));
        return 4;
      }
      std::fill(buf_b.begin(), buf_b.begin() + n, 0);
      int64_t mismatch = FirstMismatch(buf_a.data(), buf_b.data(), n);
      if (mismatch >= 0) {
        if (!quiet) std::printf("Content mismatch at offset %" PRIu64 "!\n", off + mismatch);
        return 1;
      }
      off += n;
      advance(n);
    }
  }
  if (!quiet) std::printf("Images are identical.\n");
  return 0;
}

}  // namespace strata::img
