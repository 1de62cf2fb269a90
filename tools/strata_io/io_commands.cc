// strata-io: the data commands: read, readv, write, writev, aio_read, aio_write,
// aio_flush, discard. Output lines and validation messages are qemu-io's.
#include <fcntl.h>
#include <unistd.h>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/time/clock.h"
#include "strata/errors.h"
#include "tools/strata_io/arg_parser.h"
#include "tools/strata_io/io_commands.h"
#include "tools/strata_io/report.h"

namespace strata::io {
namespace {

// qemu-io fills read buffers with this before reading, and write buffers with 0xcd.
constexpr uint8_t kReadFill = 0xab;
constexpr uint8_t kDefaultWritePattern = 0xcd;

bool CheckLength(int64_t count, const std::string& arg) {
  if (count > static_cast<int64_t>(kMaxImageRequestBytes)) {
    std::printf("length cannot exceed %" PRIu64 ", given %s\n", kMaxImageRequestBytes, arg.c_str());
    return false;
  }
  return true;
}

// -b and -c requests are whole sectors; prints qemu-io's message for the first misfit.
bool SectorAligned(int64_t offset, int64_t count) {
  if (offset % 512 != 0) {
    std::printf("%" PRId64 " is not a sector-aligned value for 'offset'\n", offset);
    return false;
  }
  if (count % 512 != 0) {
    std::printf("%" PRId64 " is not a sector-aligned value for 'count'\n", count);
    return false;
  }
  return true;
}

// Compares `len` bytes at `buf` against `pattern`; prints qemu-io's message on mismatch.
bool VerifyPattern(const uint8_t* buf, int pattern, int64_t report_offset, int64_t len) {
  for (int64_t i = 0; i < len; ++i) {
    if (buf[i] != pattern) {
      std::printf("Pattern verification failed at offset %" PRId64 ", %" PRId64 " bytes\n",
                  report_offset, len);
      return false;
    }
  }
  return true;
}

// The offset and length list of readv/writev/aio_*: "off len [len..]".
struct VectorArgs {
  int64_t offset;
  std::vector<int64_t> lengths;
  int64_t total = 0;
};

std::optional<VectorArgs> ParseVectorArgs(const std::vector<std::string>& rest) {
  VectorArgs v;
  std::optional<int64_t> off = ParseNumberArg(rest[0]);
  if (!off) return std::nullopt;
  v.offset = *off;
  for (size_t i = 1; i < rest.size(); ++i) {
    std::optional<int64_t> len = ParseNumberArg(rest[i]);
    if (!len) return std::nullopt;
    // Each length, then the running total, checked before adding (no overflow), with
    // qemu-io's messages.
    if (*len > static_cast<int64_t>(kMaxImageRequestBytes)) {
      std::printf("Argument '%s' exceeds maximum size %" PRIu64 "\n", rest[i].c_str(),
                  kMaxImageRequestBytes);
      return std::nullopt;
    }
    if (v.total > static_cast<int64_t>(kMaxImageRequestBytes) - *len) {
      std::printf("The total number of bytes exceed the maximum size %" PRIu64 "\n",
                  kMaxImageRequestBytes);
      return std::nullopt;
    }
    v.lengths.push_back(*len);
    v.total += *len;
  }
  return v;
}

// qemu-io's offset for -m: data buffers start this far past an aligned address.
constexpr size_t kMisalignBytes = 16;

// A data buffer of a command: page aligned, or kMisalignBytes past that with -m.
class IoBuffer {
 public:
  IoBuffer(size_t size, bool misalign)
      : skew_(misalign ? kMisalignBytes : 0), memory_(size + skew_, 4096) {}
  uint8_t* data() const { return memory_.data() + skew_; }

 private:
  size_t skew_;
  AlignedBuffer memory_;
};

// One buffer per length, so that the request really is scattered.
struct VectorBuffers {
  std::vector<IoBuffer> pieces;
  IoVector iov;
  VectorBuffers(const std::vector<int64_t>& lengths, uint8_t fill, bool misalign) {
    for (int64_t len : lengths) {
      pieces.emplace_back(len, misalign);
      std::memset(pieces.back().data(), fill, len);
      iov.Append(pieces.back().data(), len);
    }
  }
  std::vector<uint8_t> Flatten() const {
    std::vector<uint8_t> out(iov.size());
    iov.CopyTo(0, out.data(), out.size());
    return out;
  }
};

}  // namespace

bool ReadCommand(IoSession& s, const std::vector<std::string>& argv) {
  // qemu-io 7.2 lists -a in read's usage but its option string lacks it: refused.
  ArgParser p(argv, "bCl:pP:qs:v");
  bool machine = false, quiet = false, dump = false, vmstate = false;
  std::optional<int> pattern;
  std::optional<int64_t> pattern_offset, pattern_len;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'b': vmstate = true; break;
      case 'C': machine = true; break;
      case 'l': if (!(pattern_len = ParseNumberArg(p.value()))) return false; break;
      case 'p': break;
      case 'P': if (!(pattern = ParsePattern(p.value()))) return false; break;
      case 'q': quiet = true; break;
      case 's': if (!(pattern_offset = ParseNumberArg(p.value()))) return false; break;
      case 'v': dump = true; break;
      default: PrintUsage("read"); return false;
    }
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() != 2 || ((pattern_offset || pattern_len) && !pattern)) {
    PrintUsage("read");
    return false;
  }
  std::optional<int64_t> offset = ParseNumberArg(rest[0]);
  if (!offset) return false;
  std::optional<int64_t> count = ParseNumberArg(rest[1]);
  if (!count) return false;
  if (!CheckLength(*count, rest[1])) return false;
  int64_t check_off = pattern_offset.value_or(0);
  int64_t check_len = pattern_len.value_or(*count - check_off);
  if (pattern && (check_off < 0 || check_off + check_len > *count)) {
    std::printf("pattern verification range exceeds end of read data\n");
    return false;
  }
  if (vmstate && !SectorAligned(*offset, *count)) return false;
  IoBuffer buf(*count, s.misalign);
  std::memset(buf.data(), kReadFill, *count);
  absl::Time start = absl::Now();
  absl::Status st = vmstate ? s.backend().root().ReadVmState(*offset, *count, buf.data())
                            : s.backend().Pread(*offset, *count, buf.data());
  absl::Duration elapsed = absl::Now() - start;
  if (!st.ok()) {
    std::printf("read failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  bool ok = true;
  if (pattern) {
    ok = VerifyPattern(buf.data() + check_off, *pattern, *offset + check_off, check_len);
  }
  if (dump && !quiet) DumpBuffer(buf.data(), *offset, *count);  // -q silences -v too
  if (!quiet) PrintReport("read", elapsed, *offset, *count, *count, 1, machine);
  return ok;
}

bool ReadvCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "CP:qv");
  bool machine = false, quiet = false, dump = false;
  std::optional<int> pattern;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'C': machine = true; break;
      case 'P': if (!(pattern = ParsePattern(p.value()))) return false; break;
      case 'q': quiet = true; break;
      case 'v': dump = true; break;
      default: PrintUsage("readv"); return false;
    }
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() < 2) {
    PrintUsage("readv");
    return false;
  }
  std::optional<VectorArgs> v = ParseVectorArgs(rest);
  if (!v) return false;
  VectorBuffers bufs(v->lengths, kReadFill, s.misalign);
  absl::Time start = absl::Now();
  absl::Status st = s.backend().Preadv(v->offset, v->total, bufs.iov);
  absl::Duration elapsed = absl::Now() - start;
  if (!st.ok()) {
    std::printf("readv failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  std::vector<uint8_t> flat = bufs.Flatten();
  bool ok = !pattern || VerifyPattern(flat.data(), *pattern, v->offset, v->total);
  if (dump && !quiet) DumpBuffer(flat.data(), v->offset, v->total);
  if (!quiet) PrintReport("read", elapsed, v->offset, v->total, v->total, 1, machine);
  return ok;
}

bool WriteCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "bcCfnpP:qs:uz");
  bool machine = false, quiet = false, vmstate = false, compressed = false, fua = false;
  bool zero = false, unmap = false, no_fallback = false;
  std::optional<int> pattern;
  std::string source_file;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'b': vmstate = true; break;
      case 'c': compressed = true; break;
      case 'C': machine = true; break;
      case 'f': fua = true; break;
      case 'n': no_fallback = true; break;
      case 'p': break;
      case 'P': if (!(pattern = ParsePattern(p.value()))) return false; break;
      case 'q': quiet = true; break;
      case 's': source_file = p.value(); break;
      case 'u': unmap = true; break;
      case 'z': zero = true; break;
      default: PrintUsage("write"); return false;
    }
  }
  if (vmstate && zero) {
    std::printf("-b and -z cannot be specified at the same time\n");
    return false;
  }
  if (fua && (vmstate || compressed)) {
    std::printf("-f and -b or -c cannot be specified at the same time\n");
    return false;
  }
  if (no_fallback && !zero) {
    std::printf("-n requires -z to be specified\n");
    return false;
  }
  if (unmap && !zero) {
    std::printf("-u requires -z to be specified\n");
    return false;
  }
  if ((zero ? 1 : 0) + (pattern ? 1 : 0) + (source_file.empty() ? 0 : 1) > 1) {
    std::printf("Only one of -z, -P, and -s can be specified at the same time\n");
    return false;
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() != 2) {
    PrintUsage("write");
    return false;
  }
  std::optional<int64_t> offset = ParseNumberArg(rest[0]);
  if (!offset) return false;
  std::optional<int64_t> count = ParseNumberArg(rest[1]);
  if (!count) return false;
  // Only a request that may not fall back (-n, with -z) goes past the request limit.
  if (!no_fallback && *count > static_cast<int64_t>(kMaxImageRequestBytes)) {
    std::printf("length cannot exceed %" PRIu64 " without -n, given %s\n", kMaxImageRequestBytes,
                rest[1].c_str());
    return false;
  }
  if ((vmstate || compressed) && !SectorAligned(*offset, *count)) return false;
  absl::Status st;
  absl::Time start = absl::Now();
  uint32_t flags = (fua ? uint32_t{kReqFua} : 0u);
  if (zero) {
    flags |= (unmap ? uint32_t{kReqMayUnmap} : 0u) | (no_fallback ? uint32_t{kReqNoFallback} : 0u);
    st = s.backend().PwriteZeroes(*offset, *count, flags);
  } else {
    IoBuffer buf(*count, s.misalign);
    if (!source_file.empty()) {
      // As qemu-io: at most `count` bytes of the file, repeated if it is shorter. Never
      // the whole file (it may be huge or endless), and a FIFO without a writer reads
      // as empty instead of blocking.
      const int fd = ::open(source_file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) {
        std::printf("%s: %s\n", source_file.c_str(), std::strerror(errno));
        return false;
      }
      int64_t got = 0;
      while (got < *count) {
        const ssize_t n = ::read(fd, buf.data() + got, *count - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
      }
      ::close(fd);
      if (got == 0) {
        std::printf("Failed to read from %s\n", source_file.c_str());
        return false;
      }
      for (int64_t i = got; i < *count; ++i) buf.data()[i] = buf.data()[i % got];
    } else {
      std::memset(buf.data(), pattern.value_or(kDefaultWritePattern), *count);
    }
    if (compressed) flags |= kReqWriteCompressed;
    // -b writes the VM state area (the -c flag has no effect there, as in qemu-io).
    st = vmstate ? s.backend().root().WriteVmState(*offset, *count, buf.data())
                 : s.backend().Pwrite(*offset, *count, buf.data(), flags);
  }
  absl::Duration elapsed = absl::Now() - start;
  if (!st.ok()) {
    std::printf("write failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  if (!quiet) PrintReport("wrote", elapsed, *offset, *count, *count, 1, machine);
  return true;
}

bool WritevCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "CfqP:");
  bool machine = false, quiet = false, fua = false;
  int pattern = kDefaultWritePattern;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'C': machine = true; break;
      case 'f': fua = true; break;
      case 'q': quiet = true; break;
      case 'P': {
        std::optional<int> pat = ParsePattern(p.value());
        if (!pat) return false;
        pattern = *pat;
        break;
      }
      default: PrintUsage("writev"); return false;
    }
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() < 2) {
    PrintUsage("writev");
    return false;
  }
  std::optional<VectorArgs> v = ParseVectorArgs(rest);
  if (!v) return false;
  VectorBuffers bufs(v->lengths, pattern, s.misalign);
  absl::Time start = absl::Now();
  absl::Status st = s.backend().Pwritev(v->offset, v->total, bufs.iov, fua ? uint32_t{kReqFua} : 0u);
  absl::Duration elapsed = absl::Now() - start;
  if (!st.ok()) {
    std::printf("writev failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  if (!quiet) PrintReport("wrote", elapsed, v->offset, v->total, v->total, 1, machine);
  return true;
}

bool AioReadCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "CiP:qv");
  bool machine = false, quiet = false, dump = false, invalid = false;
  std::optional<int> pattern;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'C': machine = true; break;
      case 'i': invalid = true; break;
      case 'P': if (!(pattern = ParsePattern(p.value()))) return false; break;
      case 'q': quiet = true; break;
      case 'v': dump = true; break;
      default: PrintUsage("aio_read"); return false;
    }
  }
  if (invalid) {
    std::printf("injecting invalid read request\n");
    return true;
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() < 2) {
    PrintUsage("aio_read");
    return false;
  }
  std::optional<VectorArgs> v = ParseVectorArgs(rest);
  if (!v) return false;
  auto bufs = std::make_shared<VectorBuffers>(v->lengths, kReadFill, s.misalign);
  IoRequest request;
  request.op = IoOp::kRead;
  request.offset = v->offset;
  request.bytes = v->total;
  request.qiov = bufs->iov;
  s.StartAio(std::move(request), [=](absl::Status st, absl::Duration elapsed) {
    return [=] {
      if (!st.ok()) {
        std::printf("readv failed: %s\n", StrError(ErrnoOf(st)).c_str());
        return;
      }
      std::vector<uint8_t> flat = bufs->Flatten();
      if (pattern) VerifyPattern(flat.data(), *pattern, v->offset, v->total);
      if (dump && !quiet) DumpBuffer(flat.data(), v->offset, v->total);
      if (!quiet) PrintReport("read", elapsed, v->offset, v->total, v->total, 1, machine);
    };
  });
  return true;
}

bool AioWriteCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "CfiqP:uz");
  bool machine = false, quiet = false, fua = false, invalid = false, zero = false;
  bool unmap = false;
  std::optional<int> pattern;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'C': machine = true; break;
      case 'f': fua = true; break;
      case 'i': invalid = true; break;
      case 'q': quiet = true; break;
      case 'P': if (!(pattern = ParsePattern(p.value()))) return false; break;
      case 'u': unmap = true; break;
      case 'z': zero = true; break;
      default: PrintUsage("aio_write"); return false;
    }
  }
  if (invalid) {
    std::printf("injecting invalid write request\n");
    return true;
  }
  if (unmap && !zero) {
    std::printf("-u requires -z to be specified\n");
    return false;
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() < 2) {
    PrintUsage("aio_write");
    return false;
  }
  if (zero && rest.size() != 2) {
    std::printf("-z supports only a single length parameter\n");
    return false;
  }
  std::optional<VectorArgs> v = ParseVectorArgs(rest);
  if (!v) return false;
  IoRequest request;
  request.offset = v->offset;
  request.bytes = v->total;
  request.flags = (fua ? uint32_t{kReqFua} : 0u) | (unmap ? uint32_t{kReqMayUnmap} : 0u);
  std::shared_ptr<VectorBuffers> bufs;
  if (zero) {
    request.op = IoOp::kWriteZeroes;
  } else {
    bufs = std::make_shared<VectorBuffers>(v->lengths, pattern.value_or(kDefaultWritePattern),
                                           s.misalign);
    request.op = IoOp::kWrite;
    request.qiov = bufs->iov;
  }
  s.StartAio(std::move(request), [=](absl::Status st, absl::Duration elapsed) {
    (void)bufs;  // owned until the request completes
    return [=] {
      if (!st.ok()) {
        std::printf("aio_write failed: %s\n", StrError(ErrnoOf(st)).c_str());
        return;
      }
      if (!quiet) PrintReport("wrote", elapsed, v->offset, v->total, v->total, 1, machine);
    };
  });
  return true;
}

bool AioFlushCommand(IoSession& s, const std::vector<std::string>&) {
  s.DrainAio();
  return true;
}

bool DiscardCommand(IoSession& s, const std::vector<std::string>& argv) {
  ArgParser p(argv, "Cq");
  bool machine = false, quiet = false;
  while (auto c = p.Next()) {
    switch (*c) {
      case 'C': machine = true; break;
      case 'q': quiet = true; break;
      default: PrintUsage("discard"); return false;
    }
  }
  std::vector<std::string> rest = p.Rest();
  if (rest.size() != 2) {
    PrintUsage("discard");
    return false;
  }
  std::optional<int64_t> offset = ParseNumberArg(rest[0]);
  if (!offset) return false;
  std::optional<int64_t> count = ParseNumberArg(rest[1]);
  if (!count) return false;
  if (!CheckLength(*count, rest[1])) return false;
  absl::Time start = absl::Now();
  absl::Status st = s.backend().Pdiscard(*offset, *count);
  absl::Duration elapsed = absl::Now() - start;
  if (!st.ok()) {
    std::printf("discard failed: %s\n", StrError(ErrnoOf(st)).c_str());
    return false;
  }
  if (!quiet) PrintReport("discard", elapsed, *offset, *count, *count, 1, machine);
  return true;
}

}  // namespace strata::io
