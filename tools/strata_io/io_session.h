// strata-io: one interactive or scripted session of the qemu-io command language.
//
// The session holds the open image (a BlockBackend) and the commands' shared state:
// in-flight aio requests and their pending reports. Commands live in io_commands.cc
// (data I/O) and file_commands.cc (open/close/info/map...); the table in commands.cc.
#ifndef STRATA_TOOLS_STRATA_IO_IO_SESSION_H_
#define STRATA_TOOLS_STRATA_IO_IO_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "strata/image.h"
#include "strata/queue.h"
#include "strata/request.h"
#include "strata/types.h"

namespace strata::io {

class IoSession;

// One command of the language. `run` returns false when the command failed (the
// program's exit status becomes 1).
struct Command {
  const char* name;
  const char* alias;  // nullptr if none
  const char* args;   // "[-abCqv] [-P pattern [-s off] [-l len]] off len"; nullptr: none
  const char* oneline;
  int min_args;
  int max_args;  // -1 = unlimited
  bool needs_file;
  bool needs_write;
  bool async;        // aio submission: does not wait for earlier aio requests
  // Synchronous I/O: qemu-io runs its event loop during the command, so reports of aio
  // requests that finished are printed before the command's own.
  bool polls = false;
  std::function<bool(IoSession&, const std::vector<std::string>&)> run;
  const char* help;  // extended help for `help name`, or nullptr
};

// The command table, alphabetical (as `help` lists it).
const std::vector<Command>& Commands();

// The session state. Used from the main thread; completions of aio requests (on the
// session's queue thread) only touch the pending-report list, under its mutex.
class IoSession {
 public:
  ~IoSession();

  // Opens `request` as the current image. Prints nothing; the caller reports errors.
  absl::Status Open(const ImageSpec& request);
  // Drains aio and closes the image, reporting metadata flush failures on stderr.
  void Close();
  bool is_open() const { return backend_ != nullptr; }
  Image& backend() { return *backend_; }

  // Splits `line` on spaces and runs it. Returns false if the command failed.
  bool RunLine(const std::string& line);
  bool Run(const std::vector<std::string>& argv);

  // What an aio request prints: made from its result and duration when it completes,
  // printed by PrintFinishedAio. It owns the request's buffers (they must live until then).
  using AioFinish = std::function<std::function<void()>(absl::Status, absl::Duration)>;
  // Submits `request` to the session's queue: one event loop on a thread of its own,
  // started by the first request after an open, with the engine the image's aio option
  // names (io_uring unless `threads`). Requests run concurrently on it as coroutines;
  // one parked at a breakpoint holds no loop, only (on the synchronous path below a
  // breakpoint) a pool thread.
  void StartAio(IoRequest request, AioFinish finish);
  // Prints the reports of aio requests that finished, in submission order.
  void PrintFinishedAio();
  // Waits for every aio request without printing (releasing any suspended at a
  // breakpoint).
  void WaitForAio();
  // Waits until every aio request has finished or is suspended at a breakpoint: what a
  // synchronous command needs before it runs (qemu-io runs it while others are parked).
  void WaitForUnsuspendedAio();
  // Aio requests submitted and not finished (including suspended ones).
  int RunningAio();
  // The breakpoint controls of the open image's graph, or nullptr.
  DebugBreakpoints* breakpoints();
  // A breakpoint `resume` ran: requests finishing from now on report after those that
  // finished before it.
  void NoteResume();
  // Waits for every aio request, then prints their reports.
  void DrainAio();

  bool quit_requested = false;
  // Defaults for images opened by `open` (from the command line -t, -d, -U...).
  // qemu-io's default cache mode is writethrough (every write flushed before it completes).
  OpenOptions default_flags = [] {
    OpenOptions f;
    f.read_only = false;
    f.cache.writethrough = true;
    return f;
  }();
  bool writethrough = true;
  // qemu-io -m: data buffers start kMisalignBytes past an aligned address, so that
  // O_DIRECT requests must bounce (io_commands.cc, IoBuffer).
  bool misalign = false;
  std::string default_format;
  // The request of the last successful open, for reopen.
  ImageSpec last_open;
  bool image_opts = false;

 private:
  std::unique_ptr<Image> backend_;
  // The loop of aio requests; reset (after draining) when the image closes.
  std::unique_ptr<Queue> queue_;
  absl::Mutex aio_mu_;
  uint64_t next_aio_seq_ = 0;
  int running_aio_ ABSL_GUARDED_BY(aio_mu_) = 0;
  struct FinishedAio {
    uint64_t epoch;  // resume_epoch_ when the request finished
    uint64_t seq;    // submission order
    std::function<void()> report;
  };
  std::vector<FinishedAio> finished_ ABSL_GUARDED_BY(aio_mu_);
  uint64_t resume_epoch_ ABSL_GUARDED_BY(aio_mu_) = 0;
};

// Command helpers shared by the command files.
// Parses a qemu-io number; on error prints the "Parsing error" line and returns nullopt.
std::optional<int64_t> ParseNumberArg(const std::string& arg);
// Parses a pattern byte; on error prints "<arg> is not a valid pattern byte".
std::optional<int> ParsePattern(const std::string& arg);
// Parses a cache mode name (-t/-c); on error prints "<program>: Invalid cache option: X".
std::optional<CacheMode> ParseCacheArg(const std::string& name);
// Parses a discard mode (-d): true for unmap/on, false for ignore/off; on error prints
// "<program>: Invalid discard option: X".
std::optional<bool> ParseDiscardArg(const std::string& mode);
// Prints the command's usage line ("name args -- oneline").
void PrintUsage(const char* name);

}  // namespace strata::io

#endif  // STRATA_TOOLS_STRATA_IO_IO_SESSION_H_
