// Tests for nbd::Client: against the real server (many requests in flight from loops and
// from plain threads, block status, flags), and against a scripted server that breaks the
// protocol (the request fails with EIO, later ones fail at once, nothing hangs or crashes).
#include "nbd/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/synchronization/notification.h"
#include "aio/loop_thread.h"
#include "aio/run_sync.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "block/status.h"
#include "block/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "nbd/export.h"
#include "nbd/protocol.h"
#include "nbd/server.h"
#include "nbd/wire.h"

namespace strata::nbd {
namespace {

// A raw image served by the real server on a Unix socket under /tmp.
class ServedImage {
 public:
  explicit ServedImage(uint64_t size) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    image_ = std::string(tmp ? tmp : "/tmp") + "/client_test.raw";
    FILE* f = std::fopen(image_.c_str(), "w");
    EXPECT_EQ(::ftruncate(fileno(f), static_cast<off_t>(size)), 0);
    std::fclose(f);
    socket_ = "/tmp/strata-client-test-" + std::to_string(::getpid()) + ".sock";
    ::unlink(socket_.c_str());
    ImageOpenRequest request;
    request.filename = image_;
    request.format = "raw";
    absl::StatusOr<OpenedImage> opened = OpenImage(request);
    EXPECT_TRUE(opened.ok()) << opened.status();
    backend_ = std::make_unique<BlockBackend>(std::move(opened->root), false);
    export_ = std::make_unique<Export>(ExportOptions{}, backend_.get(), size);
    ServerConfig config;
    config.exports = {export_.get()};
    config.max_connections = 4;
    ListenAddress where;
    where.unix_path = socket_;
    absl::StatusOr<std::vector<int>> listeners = OpenListeners(where);
    EXPECT_TRUE(listeners.ok()) << listeners.status();
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(std::move(config), *std::move(listeners));
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  ~ServedImage() {
    server_->Stop();
    ::unlink(socket_.c_str());
  }
  ClientOptions Options() const {
    ClientOptions o;
    o.unix_path = socket_;
    return o;
  }

 private:
  std::string image_, socket_;
  std::unique_ptr<BlockBackend> backend_;
  std::unique_ptr<Export> export_;
  std::unique_ptr<Server> server_;
};

TEST(NbdClient, ManyRequestsInFlightFromALoop) {
  ServedImage served(8 << 20);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(served.Options());
  ASSERT_OK(client.status());
  EXPECT_EQ((*client)->info().size, 8u << 20);
  EXPECT_TRUE((*client)->structured_replies());
  EXPECT_TRUE((*client)->has_meta_context());

  // 128 writes of 4 KiB, all started before any completes, from one loop.
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop = aio::LoopThread::Start({});
  ASSERT_OK(loop.status());
  constexpr int kRequests = 128;
  std::vector<std::vector<uint8_t>> buffers(kRequests);
  std::atomic<int> done{0}, failed{0};
  absl::Notification all_done;
  (*loop)->context().Post([&] {
    for (int i = 0; i < kRequests; ++i) {
      buffers[i].assign(4096, static_cast<uint8_t>(i + 1));
      auto task = [](Client* c, std::vector<uint8_t>* buf, uint64_t at) -> aio::Task<absl::Status> {
        IoVector v(buf->data(), buf->size());
        co_return co_await c->Write(at, v, 0);
      };
      aio::Start(task(client->get(), &buffers[i], static_cast<uint64_t>(i) * 8192),
                 [&](absl::Status s) {
                   if (!s.ok()) ++failed;
                   if (++done == kRequests) all_done.Notify();
                 });
    }
  });
  all_done.WaitForNotification();
  EXPECT_EQ(failed.load(), 0);

  // Read back from a plain thread (the blocking path).
  for (int i = 0; i < kRequests; i += 17) {
    std::vector<uint8_t> got(4096);
    IoVector v(got.data(), got.size());
    ASSERT_OK(aio::RunSync((*client)->Read(static_cast<uint64_t>(i) * 8192, v)));
    EXPECT_EQ(got, buffers[i]) << i;
  }
  // The gaps read as zeroes and block status sees data and holes.
  std::vector<uint8_t> gap(4096, 1);
  IoVector gv(gap.data(), gap.size());
  ASSERT_OK(aio::RunSync((*client)->Read(4096, gv)));
  EXPECT_EQ(gap, std::vector<uint8_t>(4096, 0));
  ASSERT_OK(aio::RunSync((*client)->WriteZeroes(0, 8192, 0)));
  absl::StatusOr<NbdExtent> extent = aio::RunSync((*client)->BlockStatus(6 << 20, 1 << 20));
  ASSERT_OK(extent.status());
  EXPECT_TRUE(extent->flags & kStateZero);
  ASSERT_OK(aio::RunSync((*client)->Flush()));
}

TEST(NbdClient, ServerErrorsBecomeErrnos) {
  ServedImage served(1 << 20);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(served.Options());
  ASSERT_OK(client.status());
  std::vector<uint8_t> buf(4096);
  IoVector v(buf.data(), buf.size());
  absl::Status past_end = aio::RunSync((*client)->Read(1 << 20, v));
  EXPECT_EQ(ErrnoOf(past_end), EINVAL) << past_end;
  // The connection survives a refused request.
  EXPECT_OK(aio::RunSync((*client)->Read(0, v)));
}

TEST(NbdClient, MissingServerAndExport) {
  ClientOptions o;
  o.unix_path = "/tmp/strata-no-such-socket";
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(o);
  EXPECT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("Failed to connect to"), std::string::npos);
  ServedImage served(1 << 20);
  ClientOptions named = served.Options();
  named.export_name = "nope";
  client = Client::Connect(named);
  EXPECT_FALSE(client.ok());
}

// A server that negotiates by hand (no structured replies), then answers the first
// request with `reply` and keeps the connection open until the client leaves.
class ScriptedServer {
 public:
  ScriptedServer(std::vector<uint8_t> reply, bool close_after)
      : reply_(std::move(reply)), close_after_(close_after) {
    path_ = "/tmp/strata-scripted-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    thread_.join();
    ::close(listener_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  static bool ReadAll(int fd, void* buf, size_t n) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  static void WriteAll(int fd, const std::vector<uint8_t>& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::write(fd, data.data() + off, data.size() - off);
      if (w <= 0) return;
      off += static_cast<size_t>(w);
    }
  }
  static void OptionReply(int fd, uint32_t option, uint32_t type,
                          const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out;
    WireWriter w(&out);
    w.U64(kOptionReplyMagic);
    w.U32(option);
    w.U32(type);
    w.U32(static_cast<uint32_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    WriteAll(fd, out);
  }
  void Serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    std::vector<uint8_t> hello;
    WireWriter w(&hello);
    w.U64(kInitMagic);
    w.U64(kOptionMagic);
    w.U16(kFlagFixedNewstyle | kFlagNoZeroes);
    WriteAll(fd, hello);
    uint8_t flags[4];
    if (!ReadAll(fd, flags, 4)) return ::close(fd), void();
    for (;;) {
      uint8_t head[16];
      if (!ReadAll(fd, head, 16)) return ::close(fd), void();
      WireReader r(head);
      r.U64();
      const uint32_t option = r.U32();
      std::vector<uint8_t> data(r.U32());
      if (!data.empty() && !ReadAll(fd, data.data(), data.size())) return ::close(fd), void();
      if (option != kOptGo) {
        OptionReply(fd, option, kRepErrUnsup, {});
        continue;
      }
      std::vector<uint8_t> info;
      WireWriter iw(&info);
      iw.U16(kInfoExport);
      iw.U64(1 << 20);
      iw.U16(kFlagHasFlags | kFlagSendFlush);
      OptionReply(fd, option, kRepInfo, info);
      OptionReply(fd, option, kRepAck, {});
      break;
    }
    uint8_t request[kRequestHeaderSize];
    if (ReadAll(fd, request, sizeof(request))) WriteAll(fd, reply_);
    // Drain until the client hangs up (unless told to hang up first).
    uint8_t sink[4096];
    while (!close_after_ && ::read(fd, sink, sizeof(sink)) > 0) {
    }
    ::close(fd);
  }

  std::vector<uint8_t> reply_;
  const bool close_after_;
  std::string path_;
  int listener_ = -1;
  std::thread thread_;
};

std::vector<uint8_t> SimpleReply(uint32_t magic, uint32_t error, uint64_t cookie) {
  std::vector<uint8_t> out;
  WireWriter w(&out);
  w.U32(magic);
  w.U32(error);
  w.U64(cookie);
  return out;
}

void ExpectBrokenConnection(std::vector<uint8_t> reply, bool close_after = false) {
  ScriptedServer server(std::move(reply), close_after);
  ClientOptions o;
  o.unix_path = server.path();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(o);
  ASSERT_OK(client.status());
  EXPECT_FALSE((*client)->structured_replies());
  std::vector<uint8_t> buf(512);
  IoVector v(buf.data(), buf.size());
  absl::Status first = aio::RunSync((*client)->Read(0, v));
  EXPECT_EQ(ErrnoOf(first), EIO) << first;
  // Later requests fail at once (no reconnect-delay), they do not wait forever.
  EXPECT_EQ(ErrnoOf(aio::RunSync((*client)->Flush())), EIO);
}

TEST(NbdClient, ReplyForAnUnknownRequestBreaksTheConnection) {
  ExpectBrokenConnection(SimpleReply(kSimpleReplyMagic, 0, 0xdeadbeef));
}

TEST(NbdClient, BadReplyMagicBreaksTheConnection) {
  ExpectBrokenConnection(SimpleReply(0x12345678, 0, 1));
}

TEST(NbdClient, StructuredReplyNotNegotiatedBreaksTheConnection) {
  ExpectBrokenConnection(SimpleReply(kStructuredReplyMagic, 0, 1));
}

TEST(NbdClient, TruncatedReadPayloadFailsTheRead) {
  // 100 of the 512 bytes, then the server hangs up.
  std::vector<uint8_t> reply = SimpleReply(kSimpleReplyMagic, 0, 1);
  reply.resize(reply.size() + 100, 0xaa);
  ExpectBrokenConnection(std::move(reply), /*close_after=*/true);
}

}  // namespace
}  // namespace strata::nbd
