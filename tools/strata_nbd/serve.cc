// strata-nbd: serving one image (see serve.h).
//
// Order, as qemu-nbd: fork first (the parent waits until the child listens, then exits 0;
// or exits 1 if the child fails), then open the image, listen, write the pid file, serve.
// Signals are taken by a thread of their own (sigwait) so that the image is flushed and
// closed on SIGTERM like on a normal exit.
#include "tools/strata_nbd/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "strata/errors.h"
#include "strata/image.h"
#include "strata/nbd.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {

namespace {

// Forks; in the parent waits for the child's word and exits. Returns in the child with the
// write end of the pipe (-1 without --fork).
int ForkIfAsked(bool fork_requested) {
  if (!fork_requested) return -1;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    tools::ErrorReport(absl::StrCat("Failed to create pipe: ", StrError(errno)));
    std::exit(1);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    tools::ErrorReport(absl::StrCat("Failed to fork: ", StrError(errno)));
    std::exit(1);
  }
  if (pid > 0) {
    ::close(fds[1]);
    char byte;
    ssize_t n;
    do {
      n = ::read(fds[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) std::exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
  }
  ::close(fds[0]);
  return fds[1];
}

// Tells the waiting parent the server runs, and detaches from the terminal.
void ReportReady(int pipe_fd, bool verbose) {
  if (pipe_fd < 0) return;
  char byte = 0;
  (void)!::write(pipe_fd, &byte, 1);
  ::close(pipe_fd);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    if (!verbose) ::dup2(null_fd, STDERR_FILENO);
    ::close(null_fd);
  }
}

bool WritePidFile(const std::string& path) {
  if (path.empty()) return true;
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    tools::ErrorReport(absl::StrCat("Could not create '", path, "': ", StrError(errno)));
    return false;
  }
  std::fprintf(f, "%d\n", static_cast<int>(::getpid()));
  std::fclose(f);
  return true;
}

// "-l NAME" (an ID or a name) or "-l snapshot.id=ID,snapshot.name=NAME".
absl::Status LoadSnapshot(Image& image, const std::string& param) {
  std::string id = param, name;
  if (absl::StartsWith(param, "snapshot.")) {
    id.clear();
    for (absl::string_view kv : absl::StrSplit(param, ',')) {
      if (absl::ConsumePrefix(&kv, "snapshot.id=")) {
        id = std::string(kv);
      } else if (absl::ConsumePrefix(&kv, "snapshot.name=")) {
        name = std::string(kv);
      }
    }
  }
  return image.root().LoadSnapshotForReading(id, name);
}

}  // namespace

int Serve(const NbdOptions& options, std::shared_ptr<nbd::TlsServerCredentials> tls) {
  if (!options.connect_device.empty() || options.disconnect) {
    tools::ErrorReport("Kernel /dev/nbdN support not available");
    return 1;
  }
  const int ready_fd = ForkIfAsked(options.fork);
  // Signals go to one thread (below). Blocked before anything starts a thread (opening
  // the image may start pool threads), since every thread inherits the mask: a thread
  // without it would take SIGTERM's default action and kill the process unflushed.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR2);  // our own: ends the signal thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ImageSpec request;
  request.filename = options.filename;
  request.format = options.format;
  request.image_opts = options.image_opts;
  request.options.read_only = options.read_only;
  request.options.snapshot = options.snapshot;
  request.options.discard_unmap = options.discard == "unmap";
  request.options.aio = options.aio;
  absl::StatusOr<CacheMode> mode = ParseCacheMode(options.cache);
  if (!mode.ok()) {
    tools::ErrorReport(absl::StrCat("Invalid cache mode `", options.cache, "'"));
    return 1;
  }
  request.options.cache = *mode;
  absl::StatusOr<std::unique_ptr<Image>> image = Image::Open(request);
  if (!image.ok()) {
    tools::ErrorReport(absl::StrCat("Failed to blk_new_open '", options.filename,
                                    "': ", image.status().message()));
    return 1;
  }
  std::unique_ptr<Image> backend = *std::move(image);
  if (!options.load_snapshot.empty()) {
    absl::Status loaded = LoadSnapshot(*backend, options.load_snapshot);
    if (!loaded.ok()) {
      tools::ErrorReport(absl::StrCat("Failed to load snapshot: ", loaded.message()));
      return 1;
    }
  }

  // Every -B bitmap must exist (in the image or its backing chain) and be consistent.
  for (const std::string& name : options.bitmaps) {
    absl::Status usable = CheckNbdExportBitmap(*backend, name);
    if (!usable.ok()) {
      tools::ErrorReport(usable.message());
      return 1;
    }
  }
  absl::StatusOr<uint64_t> length = backend->GetLength();
  if (!length.ok()) {
    tools::ErrorReport(absl::StrCat("Failed to get the image size: ", length.status().message()));
    return 1;
  }
  if (options.offset > *length) {
    tools::ErrorReport(absl::StrCat("Offset (", options.offset,
                                    ") cannot be greater than size of the containing file (",
                                    *length, ")"));
    return 1;
  }

  NbdListenAddress address;
  address.unix_path = options.socket_path;
  address.host = options.bind;
  std::vector<int> listeners;
  if (options.socket_path.empty()) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(options.port, &port) || port > 65535) {
      tools::ErrorReport(absl::StrCat("address resolution failed for ", options.bind, ":",
                                      options.port,
                                      ": Servname not supported for ai_socktype"));
      return 1;
    }
    address.port = static_cast<uint16_t>(port);
  }
  absl::StatusOr<std::vector<int>> opened = OpenNbdListeners(address);
  if (!opened.ok()) {
    tools::ErrorReport(opened.status().message());
    return 1;
  }
  listeners = std::move(*opened);
  if (!WritePidFile(options.pid_file)) return 1;

  NbdExportSpec export_options;
  export_options.name = options.export_name.value_or("");
  export_options.description = options.description;
  export_options.read_only = options.read_only;
  export_options.allocation_depth = options.allocation_depth;
  export_options.bitmaps = options.bitmaps;
  export_options.multi_conn = options.shared > 1;
  export_options.offset = options.offset;
  if (options.detect_zeroes == "on") {
    export_options.detect_zeroes = NbdExportSpec::DetectZeroes::kOn;
  } else if (options.detect_zeroes == "unmap") {
    export_options.detect_zeroes = NbdExportSpec::DetectZeroes::kUnmap;
  }
  export_options.size = *length - options.offset;

  NbdServer::Options config;
  config.listeners = std::move(listeners);
  config.tls = std::move(tls);
  config.max_connections = options.shared;
  config.loops = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  const bool persistent = options.persistent;
  config.on_connection_closed = [persistent](NbdServer& server, int open) {
    if (!persistent && open == 0) server.RequestStop();
  };
  absl::StatusOr<std::unique_ptr<NbdServer>> server =
      NbdServer::Start(*backend, export_options, std::move(config));
  if (!server.ok()) {
    tools::ErrorReport(server.status().message());
    return 1;
  }
  NbdServer* server_ptr = server->get();
  std::thread signal_thread([&signals, server_ptr] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGUSR2) server_ptr->RequestStop();
  });
  ReportReady(ready_fd, options.verbose);

  (*server)->Wait();
  (*server)->Stop();
  // Wake the signal thread if no signal came.
  pthread_kill(signal_thread.native_handle(), SIGUSR2);
  signal_thread.join();
  server->reset();
  absl::Status closed = backend->Close();
  if (!options.socket_path.empty()) ::unlink(options.socket_path.c_str());
  if (!closed.ok()) {
    tools::ErrorReport(closed.message());
    return 1;
  }
  return 0;
}

}  // namespace strata::nbd_tool
