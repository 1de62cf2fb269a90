// strata-io: session state and command dispatch (see io_session.h).
#include "tools/strata_io/io_session.h"

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "strata/errors.h"
#include "tools/common/human_size.h"
#include "tools/common/program.h"

namespace strata::io {
namespace {

// What Image::Submit does with `r`, on this thread: for when no queue thread can start.
absl::Status RunToCompletion(Image& image, const IoRequest& r) {
  switch (r.op) {
    case IoOp::kRead: return image.Preadv(r.offset, r.bytes, r.qiov, r.flags);
    case IoOp::kWrite: return image.Pwritev(r.offset, r.bytes, r.qiov, r.flags);
    case IoOp::kWriteZeroes: return image.PwriteZeroes(r.offset, r.bytes, r.flags);
    case IoOp::kDiscard: return image.Pdiscard(r.offset, r.bytes);
    case IoOp::kFlush: return image.Flush();
  }
  return absl::InvalidArgumentError("unknown request");
}

}  // namespace

IoSession::~IoSession() { Close(); }

absl::Status IoSession::Open(const ImageSpec& request) {
  ImageSpec spec = request;
  spec.options.cache.writethrough = writethrough;
  STRATA_ASSIGN_OR_RETURN(backend_, Image::Open(spec));
  if (backend_->probed_raw() && !request.options.read_only) {
    tools::WarnProbedRaw(backend_->ProbedRawName());
  }
  return absl::OkStatus();
}

void IoSession::Close() {
  DrainAio();
  queue_.reset();
  if (!backend_) return;
  absl::Status s = backend_->Close();
  if (!s.ok()) {
    // A driver may report several failures, one per line (qcow2: each metadata cache).
    for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
      tools::ErrorReport(line);
    }
  }
  backend_.reset();
}

void IoSession::StartAio(IoRequest request, AioFinish finish) {
  const uint64_t seq = next_aio_seq_++;
  if (queue_ == nullptr) {
    Queue::Options options;
    if (last_open.options.aio == "threads") options.engine = QueueEngine::kThreads;
    absl::StatusOr<std::unique_ptr<Queue>> queue = Queue::Start(options);
    if (queue.ok()) queue_ = std::move(*queue);
  }
  {
    absl::MutexLock lock(&aio_mu_);
    ++running_aio_;
  }
  const absl::Time start = absl::Now();
  auto done = [this, seq, start, finish = std::move(finish)](absl::Status status) {
    std::function<void()> report = finish(status, absl::Now() - start);
    absl::MutexLock lock(&aio_mu_);
    finished_.push_back(FinishedAio{resume_epoch_, seq, std::move(report)});
    --running_aio_;
  };
  if (queue_ == nullptr) {  // no thread to be had for a loop: run it here, to completion
    done(RunToCompletion(*backend_, request));
    return;
  }
  backend_->Submit(*queue_, std::move(request), std::move(done));
}

int IoSession::RunningAio() {
  absl::MutexLock lock(&aio_mu_);
  return running_aio_;
}

DebugBreakpoints* IoSession::breakpoints() {
  return backend_ ? backend_->root().FindDebugBreakpoints() : nullptr;
}

void IoSession::WaitForUnsuspendedAio() {
  DebugBreakpoints* bp = breakpoints();
  if (bp == nullptr) return WaitForAio();
  // A request may wait on one parked at a breakpoint (an overlapping write serialised
  // behind it): it cannot finish before a `resume`, so while some request is parked, a
  // quarter second without any request finishing ends the wait instead of hanging.
  int last_running = -1;
  absl::Time last_progress = absl::Now();
  for (;;) {
    int running = RunningAio();
    if (running == 0) return WaitForAio();
    const int suspended = bp->SuspendedCount();
    if (running <= suspended) return;
    if (running != last_running) {
      last_running = running;
      last_progress = absl::Now();
    } else if (suspended > 0 && absl::Now() - last_progress > absl::Milliseconds(250)) {
      return;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

void IoSession::NoteResume() {
  absl::MutexLock lock(&aio_mu_);
  ++resume_epoch_;
}

void IoSession::PrintFinishedAio() {
  std::vector<FinishedAio> reports;
  {
    absl::MutexLock lock(&aio_mu_);
    reports.swap(finished_);
  }
  // Requests that finished before a `resume` first (as qemu-io completes them), then by
  // submission order, so that output does not depend on thread scheduling.
  std::sort(reports.begin(), reports.end(), [](const FinishedAio& a, const FinishedAio& b) {
    return std::tie(a.epoch, a.seq) < std::tie(b.epoch, b.seq);
  });
  for (auto& r : reports) r.report();
}

void IoSession::WaitForAio() {
  // A request suspended at a breakpoint would never finish: release it (qemu-io would
  // hang here instead).
  DebugBreakpoints* bp = breakpoints();
  auto none_running = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(aio_mu_) {
    return running_aio_ == 0;
  };
  for (;;) {
    {
      absl::MutexLock lock(&aio_mu_);
      if (aio_mu_.AwaitWithTimeout(absl::Condition(&none_running), absl::Milliseconds(1))) {
        return;
      }
    }
    if (bp != nullptr && bp->SuspendedCount() > 0) bp->ResumeAll();
  }
}

void IoSession::DrainAio() {
  WaitForAio();
  PrintFinishedAio();
}

bool IoSession::RunLine(const std::string& line) {
  std::vector<std::string> argv = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (argv.empty()) return true;
  return Run(argv);
}

bool IoSession::Run(const std::vector<std::string>& argv) {
  const Command* cmd = nullptr;
  for (const Command& c : Commands()) {
    if (argv[0] == c.name || (c.alias != nullptr && argv[0] == c.alias)) {
      cmd = &c;
      break;
    }
  }
  if (cmd == nullptr) {
    std::fprintf(stderr, "command \"%s\" not found\n", argv[0].c_str());
    return false;
  }
  if (cmd->needs_file && !is_open()) {
    std::fprintf(stderr, "no file open, try 'help open'\n");
    return false;
  }
  // Like qemu-io, the count includes option words.
  int argc = static_cast<int>(argv.size()) - 1;
  if (argc < cmd->min_args || (cmd->max_args >= 0 && argc > cmd->max_args)) {
    if (cmd->max_args == -1) {
      std::fprintf(stderr, "bad argument count %d to %s, expected at least %d arguments\n",
                   argc, cmd->name, cmd->min_args);
    } else if (cmd->min_args == cmd->max_args) {
      std::fprintf(stderr, "bad argument count %d to %s, expected %d arguments\n", argc,
                   cmd->name, cmd->min_args);
    } else {
      std::fprintf(stderr, "bad argument count %d to %s, expected between %d and %d arguments\n",
                   argc, cmd->name, cmd->min_args, cmd->max_args);
    }
    return false;
  }
  // As qemu-io: an open file, then the argument count, then a writable node.
  if (cmd->needs_write && backend_->root().read_only()) {
    tools::ErrorReport("Block node is read-only");
    return false;
  }
  // qemu-io submits an aio request before the next command runs, so a later synchronous
  // command sees its effect. qemu-io prints the reports of finished aio requests when its
  // event loop runs: during any synchronous I/O command (before that command's own
  // report), at aio_flush, close and exit. Commands that do no I/O do not run it.
  if (!cmd->async) WaitForUnsuspendedAio();
  if (cmd->polls) PrintFinishedAio();
  return cmd->run(*this, argv);
}

std::optional<int64_t> ParseNumberArg(const std::string& arg) {
  bool too_large = false;
  std::optional<int64_t> v = tools::ParseQemuNumber(arg, &too_large);
  if (!v.has_value()) {
    if (too_large) {
      std::printf("Parsing error: argument too large -- %s\n", arg.c_str());
    } else {
      std::printf("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n",
                  arg.c_str());
    }
  }
  return v;
}

std::optional<int> ParsePattern(const std::string& arg) {
  char* end = nullptr;
  long v = std::strtol(arg.c_str(), &end, 0);
  if (arg.empty() || *end != '\0' || v < 0 || v > 255) {
    std::printf("%s is not a valid pattern byte\n", arg.c_str());
    return std::nullopt;
  }
  return static_cast<int>(v);
}

std::optional<CacheMode> ParseCacheArg(const std::string& name) {
  absl::StatusOr<CacheMode> mode = ParseCacheMode(name);
  if (!mode.ok()) {
    tools::ErrorReport("Invalid cache option: " + name);
    return std::nullopt;
  }
  return *mode;
}

std::optional<bool> ParseDiscardArg(const std::string& mode) {
  if (mode == "unmap" || mode == "on") return true;
  if (mode == "ignore" || mode == "off") return false;
  tools::ErrorReport("Invalid discard option: " + mode);
  return std::nullopt;
}

void PrintUsage(const char* name) {
  for (const Command& c : Commands()) {
    if (std::string(c.name) == name) {
      if (c.args != nullptr) {
        std::printf("%s %s -- %s\n", c.name, c.args, c.oneline);
      } else {
        std::printf("%s -- %s\n", c.name, c.oneline);
      }
      return;
    }
  }
}

}  // namespace strata::io
