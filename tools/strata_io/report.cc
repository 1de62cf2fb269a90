// strata-io: report lines (see report.h).
#include "tools/strata_io/report.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>

#include "tools/common/human_size.h"

namespace strata::io {
namespace {

std::string TimeString(absl::Duration d, bool fixed_format) {
  double secs = absl::ToDoubleSeconds(d);
  char buf[64];
  unsigned whole = static_cast<unsigned>(secs);
  double frac = secs - whole;
  if (!fixed_format && whole == 0) {
    std::snprintf(buf, sizeof(buf), "%05.2f sec", frac);
  } else {
    unsigned h = whole / 3600, m = (whole % 3600) / 60;
    double s = (whole % 60) + frac;
    std::snprintf(buf, sizeof(buf), "%u:%02u:%05.2f", h, m, s);
  }
  return buf;
}

}  // namespace

void PrintReport(const char* verb, absl::Duration elapsed, int64_t offset, int64_t count,
                 int64_t total, int ops, bool machine_readable) {
  double secs = absl::ToDoubleSeconds(elapsed);
  if (secs <= 0) secs = 1e-9;
  if (machine_readable) {
    std::printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, ops,
                TimeString(elapsed, true).c_str(), total / secs, ops / secs);
    return;
  }
  std::printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", verb, total, count,
              offset);
  std::printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
              tools::QemuIoSizeString(static_cast<double>(total)).c_str(), ops,
              TimeString(elapsed, false).c_str(),
              tools::QemuIoSizeString(total / secs).c_str(), ops / secs);
}

void DumpBuffer(const uint8_t* data, int64_t offset, int64_t len) {
  for (int64_t i = 0; i < len; i += 16) {
    std::printf("%08" PRIx64 ":  ", static_cast<uint64_t>(offset + i));
    for (int j = 0; j < 16 && i + j < len; ++j) std::printf("%02x ", data[i + j]);
    std::printf(" ");
    for (int j = 0; j < 16 && i + j < len; ++j) {
      int c = data[i + j];
      std::printf("%c", std::isalnum(c) ? c : '.');
    }
    std::printf("\n");
  }
}

}  // namespace strata::io
