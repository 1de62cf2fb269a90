// Fuzz target: the NBD server's wire protocol (negotiation, options, transmission). One
// server runs for the whole process, exporting a 1 MiB qcow2 image on a Unix socket in
// the scratch directory, with structured replies, block status and a dirty-bitmap context
// available. Each input is what a client sends: the harness connects, writes it, closes
// its sending side, and reads replies until the server hangs up. The server must end the
// connection by itself after any input (a missing hang-up within 10 s aborts: a hang is
// a finding), and keep serving the next client.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "nbd/export.h"
#include "nbd/server.h"
#include "tests/fuzz/fuzz_sandbox.h"

namespace {

struct Served {
  std::unique_ptr<strata::BlockBackend> backend;
  std::unique_ptr<strata::nbd::Export> exported;
  std::unique_ptr<strata::nbd::Server> server;
  std::string socket_path;
};

Served& Serving() {
  static Served& served = *[] {
    auto s = std::make_unique<Served>();
    const std::string dir = strata::fuzz::ScratchDir();
    const std::string image = dir + "/export.qcow2";
    strata::CreateRequest create{image, 1 << 20, {{"cluster_size", "4096"}}};
    if (!strata::DriverRegistry::Global().Find("qcow2")->Create(create).ok()) std::abort();
    strata::ImageOpenRequest open;
    open.filename = image;
    open.format = "qcow2";
    absl::StatusOr<strata::OpenedImage> opened = strata::OpenImage(open);
    if (!opened.ok()) std::abort();
    (void)opened->root->instance().AddDirtyBitmap("b0", 65536, true, "");
    s->backend = std::make_unique<strata::BlockBackend>(std::move(opened->root), false);
    strata::nbd::ExportOptions options;
    options.name = "";
    options.bitmaps = {"b0"};
    options.allocation_depth = true;
    s->exported = std::make_unique<strata::nbd::Export>(options, s->backend.get(), 1 << 20);
    s->socket_path = dir + "/nbd.sock";
    strata::nbd::ListenAddress address;
    address.unix_path = s->socket_path;
    absl::StatusOr<std::vector<int>> listeners = strata::nbd::OpenListeners(address);
    if (!listeners.ok()) std::abort();
    strata::nbd::ServerConfig config;
    config.exports = {s->exported.get()};
    config.max_connections = 1;
    absl::StatusOr<std::unique_ptr<strata::nbd::Server>> server =
        strata::nbd::Server::Start(std::move(config), *std::move(listeners));
    if (!server.ok()) std::abort();
    s->server = *std::move(server);
    return s.release();  // lives until exit: the server's loops may still run then
  }();
  return served;
}

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    std::abort();
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Served& served = Serving();
  const int fd = Connect(served.socket_path);
  // Write and read together: the server may reply (or hang up) before it read it all.
  size_t written = 0;
  bool shut = false;
  char sink[65536];
  for (int rounds = 0;; ++rounds) {
    if (!shut && written == size) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    int r = poll(&p, 1, 10000);
    if (r == 0) {
      std::fprintf(stderr, "nbd server did not end the connection within 10 s\n");
      std::abort();
    }
    if (r < 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(fd, sink, sizeof(sink));
      if (n <= 0) break;  // hung up
    }
    if (!shut && (p.revents & POLLOUT)) {
      ssize_t n = send(fd, data + written, size - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        written += n;
      } else if (n < 0 && errno != EAGAIN) {
        written = size;  // the server closed its end: just drain
      }
    }
  }
  close(fd);
  return 0;
}
