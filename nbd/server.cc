// strata nbd: listening, accepting and the connection registry (see server.h).
#include "nbd/server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "aio/file_op.h"
#include "block/status.h"
#include "nbd/server_connection.h"

namespace strata::nbd {

namespace {

absl::StatusOr<int> ListenUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return ErrnoError(ENAMETOOLONG,
                      absl::StrCat("UNIX socket path '", path, "' is too long"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("Failed to create socket: ", StrError(errno)));
  ::unlink(path.c_str());  // a stale socket of an earlier run
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) < 0 ||
      ::listen(fd, SOMAXCONN) < 0) {
    const int e = errno;
    ::close(fd);
    return ErrnoError(e, absl::StrCat("Failed to bind socket to ", path, ": ", StrError(e)));
  }
  return fd;
}

absl::StatusOr<std::vector<int>> ListenTcp(const std::string& host, uint16_t port) {
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  struct addrinfo* results = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints,
                         &results);
  if (rc != 0) {
    return ErrnoError(EINVAL, absl::StrCat("address resolution failed for ", host, ":", port,
                                           ": ", gai_strerror(rc)));
  }
  std::vector<int> fds;
  int last_error = 0;
  for (struct addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                      ai->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || ::listen(fd, SOMAXCONN) < 0) {
      last_error = errno;
      ::close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  ::freeaddrinfo(results);
  if (fds.empty()) {
    return ErrnoError(last_error != 0 ? last_error : EADDRNOTAVAIL,
                      absl::StrCat("Failed to bind socket: ",
                                   StrError(last_error != 0 ? last_error : EADDRNOTAVAIL)));
  }
  return fds;
}

// Parks the awaiting coroutine on a list until someone resumes it.
struct ParkOn {
  std::vector<std::coroutine_handle<>>* list;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { list->push_back(h); }
  void await_resume() const noexcept {}
};

}  // namespace

absl::StatusOr<std::vector<int>> OpenListeners(const ListenAddress& address) {
  if (!address.unix_path.empty()) {
    STRATA_ASSIGN_OR_RETURN(int fd, ListenUnix(address.unix_path));
    return std::vector<int>{fd};
  }
  return ListenTcp(address.host, address.port);
}

Server::Server(ServerConfig config) : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerConfig config,
                                                      std::vector<int> listeners) {
  auto server = std::make_unique<Server>(std::move(config));
  server->listeners_ = std::move(listeners);
  const int loops = std::max(1, server->config_.loops);
  for (int i = 0; i < loops; ++i) {
    absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop =
        aio::LoopThread::Start({aio::Engine::kIoUring});
    if (!loop.ok()) loop = aio::LoopThread::Start({aio::Engine::kThreads});
    if (!loop.ok()) return loop.status();
    server->loops_.push_back(std::move(*loop));
  }
  Server* s = server.get();
  {
    absl::MutexLock lock(&s->mu_);
    s->accept_loops_running_ = static_cast<int>(s->listeners_.size());
  }
  for (int fd : s->listeners_) {
    s->loops_[0]->context().Post([s, fd] {
      aio::Start(s->AcceptLoop(fd), [s](absl::Status) {
        absl::MutexLock lock(&s->mu_);
        --s->accept_loops_running_;
      });
    });
  }
  return server;
}

Server::~Server() {
  Stop();
  for (int fd : listeners_) ::close(fd);
}

const Export* Server::FindExport(absl::string_view name) const {
  for (const Export* e : config_.exports) {
    if (e->name() == name) return e;
  }
  return nullptr;
}

aio::Task<absl::Status> Server::AcceptLoop(int listener) {
  for (;;) {
    while (open_connections_ >= config_.max_connections) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) co_return absl::OkStatus();
      }
      co_await ParkOn{&parked_accepts_};
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) co_return absl::OkStatus();
    }
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails on Unix: fine
      Launch(fd);
      continue;
    }
    const int e = errno;
    if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      int64_t events = co_await aio::Poll(listener, POLLIN);
      if (events < 0) co_return ErrnoError(static_cast<int>(-events));
      continue;
    }
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
      // Out of descriptors: wait for a connection to end rather than spin.
      if (open_connections_ > 0) co_await ParkOn{&parked_accepts_};
      continue;
    }
    co_return ErrnoError(e);  // EINVAL after Stop shut the listener down
  }
}

void Server::Launch(int fd) {
  aio::LoopThread& loop = *loops_[next_loop_++ % loops_.size()];
  auto owned = std::make_unique<ServerConnection>(this, NewSocketStream(fd));
  ServerConnection* connection = owned.get();
  {
    absl::MutexLock lock(&mu_);
    connections_.push_back(std::move(owned));
    if (stopping_) connection->Shutdown();
  }
  ++open_connections_;
  loop.context().Post([this, connection] {
    aio::Start(connection->Run(), [this, connection](absl::Status) {
      loops_[0]->context().Post([this, connection] { ConnectionEnded(connection); });
    });
  });
}

void Server::ConnectionEnded(ServerConnection* connection) {
  {
    absl::MutexLock lock(&mu_);
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      if (it->get() == connection) {
        connections_.erase(it);
        break;
      }
    }
  }
  --open_connections_;
  std::vector<std::coroutine_handle<>> parked;
  parked.swap(parked_accepts_);
  for (std::coroutine_handle<> h : parked) loops_[0]->context().Post(h);
  if (config_.on_connection_closed) config_.on_connection_closed(*this, open_connections_);
}

void Server::RequestStop() {
  absl::MutexLock lock(&mu_);
  stop_requested_ = true;
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Server* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->stop_requested_ || s->stopping_; },
      this));
}

void Server::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    stopping_ = true;
    for (int fd : listeners_) ::shutdown(fd, SHUT_RDWR);
    for (auto& c : connections_) c->Shutdown();
  }
  if (!loops_.empty()) {
    // Parked accept loops see stopping_ once resumed.
    loops_[0]->context().Post([this] {
      std::vector<std::coroutine_handle<>> parked;
      parked.swap(parked_accepts_);
      for (std::coroutine_handle<> h : parked) h.resume();
    });
  }
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Server* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
          return s->connections_.empty() && s->accept_loops_running_ == 0;
        },
        this));
  }
  loops_.clear();  // joins the loop threads
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace strata::nbd
