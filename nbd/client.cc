// strata nbd: the client's transmission phase (see client.h).
//
// Everything below `Connection` runs on the connection's loop thread, so its state needs
// no lock: callers reach it only through IoContext::Post. The sender and the receiver of
// one connection are coroutines of a generation; a reconnect starts a new generation on a
// new stream, and coroutines of an older one leave as soon as they notice.
#include "nbd/client.h"

#include <sys/uio.h>

#include <chrono>
#include <deque>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "aio/io_context.h"
#include "aio/loop_thread.h"
#include "aio/offload.h"
#include "aio/run_sync.h"
#include "block/status.h"
#include "nbd/connect.h"
#include "nbd/protocol.h"
#include "nbd/wire.h"

namespace strata::nbd {

namespace {

// A batch of requests written with one writev stops at this many iovecs or bytes.
constexpr size_t kMaxBatchIovecs = 512;
constexpr size_t kMaxBatchBytes = 8 << 20;
// Structured chunks other than data carry small payloads; more than this is a broken
// server (a block status reply for one extent is 12 bytes).
constexpr uint32_t kMaxSmallPayload = 1 << 20;
// Pause between reconnection attempts.
constexpr absl::Duration kReconnectPause = absl::Milliseconds(100);

absl::Status ProtocolError(absl::string_view what) {
  return ErrnoError(EIO, absl::StrCat("Protocol error: ", what));
}

// Parks the awaiting coroutine in `*slot` until someone resumes it.
struct Park {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

// A connection after negotiation.
struct Established {
  std::unique_ptr<Stream> stream;
  ExportInfo info;
  bool structured = false;
  std::optional<uint32_t> meta_context_id;
};

aio::Task<absl::Status> Negotiate(const ClientOptions& options, Established* out) {
  ClientHandshake handshake(&out->stream);
  STRATA_CO_RETURN_IF_ERROR(co_await handshake.Start());
  if (options.tls != nullptr) {
    const std::string& name =
        options.tls_hostname.empty() ? options.host : options.tls_hostname;
    STRATA_CO_RETURN_IF_ERROR(co_await handshake.StartTls(*options.tls, name));
  }
  absl::StatusOr<bool> structured = co_await handshake.StructuredReply();
  if (!structured.ok()) co_return structured.status();
  out->structured = *structured;
  if (out->structured && !options.meta_context.empty()) {
    const std::vector<std::string> queries = {options.meta_context};
    absl::StatusOr<std::vector<MetaContext>> contexts =
        co_await handshake.MetaContexts(false, options.export_name, queries);
    if (!contexts.ok()) co_return contexts.status();
    for (const MetaContext& c : *contexts) {
      if (c.name == options.meta_context) out->meta_context_id = c.id;
    }
  }
  absl::StatusOr<ExportInfo> info = co_await handshake.Info(options.export_name, true);
  if (!info.ok()) co_return info.status();
  out->info = *info;
  co_return absl::OkStatus();
}

// Connects and negotiates, blocking the calling thread (no loop may be current).
absl::StatusOr<Established> Establish(const ClientOptions& options) {
  Established e;
  absl::StatusOr<std::unique_ptr<Stream>> stream =
      options.unix_path.empty() ? ConnectTcp(options.host, options.port)
                                : ConnectUnix(options.unix_path);
  if (!stream.ok()) return stream.status();
  e.stream = *std::move(stream);
  absl::Status s = aio::RunSync(Negotiate(options, &e));
  if (!s.ok()) return s;
  return e;
}

}  // namespace

// One request from submission to its last reply chunk. Lives in the awaiting caller's
// frame; the connection holds a pointer until it wakes the caller, never after.
struct Client::Request {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  const IoVector* data = nullptr;  // write source or read destination

  // Filled in by the receiver.
  absl::Status status;
  uint64_t bytes_received = 0;  // read payload seen (data and hole chunks)
  std::optional<NbdExtent> extent;

  // Who waits: a coroutine on `context`, or a thread on `done`.
  aio::IoContext* context = nullptr;
  std::coroutine_handle<> handle;
  absl::Notification* done = nullptr;
};

// The connection's state and coroutines; loop thread only unless said otherwise.
class Client::Connection {
 public:
  Connection(const ClientOptions& options, Established established,
             std::unique_ptr<aio::LoopThread> loop)
      : options_(options),
        info_(established.info),
        loop_(std::move(loop)),
        stream_(std::move(established.stream)) {}

  // Any thread, once: starts the first generation's coroutines.
  void Start() {
    loop_->context().Post([this] { StartGeneration(); });
  }

  // Any thread: hands `r` to the loop.
  void Enqueue(Request* r) {
    loop_->context().Post([this, r] { Accept(r); });
  }

  // Any thread, once, with no request in flight: says goodbye, ends the coroutines and
  // stops the loop.
  void Close() {
    absl::Notification finished;
    loop_->context().Post([this, &finished] {
      closing_ = true;
      finished_ = &finished;
      WakeSender();
      MaybeFinish();
    });
    finished.WaitForNotification();
    loop_.reset();
  }

 private:
  void StartGeneration() {
    ++generation_;
    running_ += 2;
    const uint64_t gen = generation_;
    aio::Start(SendLoop(gen), [this](absl::Status s) { CoroutineDone(s); });
    aio::Start(ReceiveLoop(gen), [this](absl::Status s) { CoroutineDone(s); });
  }

  void CoroutineDone(const absl::Status& s) {
    --running_;
    if (!s.ok()) Break(s);
    MaybeFinish();
  }

  void MaybeFinish() {
    if (closing_ && running_ == 0 && !reconnecting_ && finished_ != nullptr) {
      absl::Notification* f = std::exchange(finished_, nullptr);
      f->Notify();
    }
  }

  void Accept(Request* r) {
    if (closing_ || dead_) {
      Fail(r, ErrnoError(EIO));
    } else if (reconnecting_) {
      waiting_.push_back(r);
    } else {
      send_queue_.push_back(r);
      WakeSender();
    }
  }

  void WakeSender() {
    if (sender_parked_) loop_->context().Post(std::exchange(sender_parked_, nullptr));
  }

  static void Wake(Request* r) {
    if (r->context != nullptr) {
      r->context->Post(r->handle);
    } else {
      r->done->Notify();
    }
  }
  static void Fail(Request* r, absl::Status s) {
    r->status = std::move(s);
    Wake(r);
  }

  // The sender of generation `gen`: writes what is queued, a batch per writev.
  aio::Task<absl::Status> SendLoop(uint64_t gen) {
    std::vector<uint8_t> headers;
    std::vector<struct iovec> iov;
    for (;;) {
      while (send_queue_.empty() && !closing_ && gen == generation_ && !broken_) {
        co_await Park{&sender_parked_};
      }
      if (gen != generation_ || broken_) co_return absl::OkStatus();
      if (send_queue_.empty() && closing_) {
        // Every request has its reply: say goodbye (NBD_CMD_DISC has none) and hang up.
        headers.clear();
        WireWriter w(&headers);
        w.U32(kRequestMagic);
        w.U16(0);
        w.U16(kCmdDisc);
        w.U64(next_cookie_++);
        w.U64(0);
        w.U32(0);
        struct iovec one = {headers.data(), headers.size()};
        (void)co_await stream_->WriteFully({&one, 1});
        stream_->Shutdown();
        co_return absl::OkStatus();
      }
      // Headers first (their storage must not move while iovecs point into it).
      std::vector<Request*> batch;
      size_t iovecs = 0, bytes = 0;
      while (!send_queue_.empty() && iovecs < kMaxBatchIovecs && bytes < kMaxBatchBytes) {
        Request* r = send_queue_.front();
        const size_t payload = r->type == kCmdWrite ? r->data->iovecs().size() : 0;
        if (!batch.empty() && iovecs + 1 + payload > kMaxBatchIovecs) break;
        send_queue_.pop_front();
        batch.push_back(r);
        iovecs += 1 + payload;
        bytes += kRequestHeaderSize + (r->type == kCmdWrite ? r->length : 0);
      }
      headers.assign(batch.size() * kRequestHeaderSize, 0);
      iov.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        Request* r = batch[i];
        const uint64_t cookie = next_cookie_++;
        in_flight_[cookie] = r;
        std::vector<uint8_t> head;
        WireWriter w(&head);
        w.U32(kRequestMagic);
        w.U16(r->flags);
        w.U16(r->type);
        w.U64(cookie);
        w.U64(r->offset);
        w.U32(r->length);
        std::copy(head.begin(), head.end(), headers.begin() + i * kRequestHeaderSize);
        iov.push_back({headers.data() + i * kRequestHeaderSize, kRequestHeaderSize});
        if (r->type == kCmdWrite) {
          for (const struct iovec& v : r->data->iovecs()) iov.push_back(v);
        }
      }
      absl::Status s = co_await stream_->WriteFully(iov);
      if (!s.ok()) co_return gen == generation_ ? s : absl::OkStatus();
    }
  }

  // The receiver of generation `gen`: reads replies until the stream ends.
  aio::Task<absl::Status> ReceiveLoop(uint64_t gen) {
    Stream* stream = stream_.get();
    for (;;) {
      uint8_t head[kStructuredReplyHeaderSize];
      absl::Status s = co_await stream->ReadFully(head, 4);
      if (s.ok()) {
        const uint32_t magic = WireReader({head, 4}).U32();
        if (magic == kSimpleReplyMagic) {
          s = co_await stream->ReadFully(head + 4, kSimpleReplyHeaderSize - 4);
          if (s.ok()) s = co_await SimpleReply(*stream, {head, kSimpleReplyHeaderSize});
        } else if (magic == kStructuredReplyMagic && structured_) {
          s = co_await stream->ReadFully(head + 4, kStructuredReplyHeaderSize - 4);
          if (s.ok()) s = co_await StructuredChunk(*stream, {head, kStructuredReplyHeaderSize});
        } else {
          s = ProtocolError("invalid reply magic");
        }
      }
      if (!s.ok()) {
        if (gen != generation_) co_return absl::OkStatus();
        // The end of the stream after our goodbye is no error.
        co_return closing_ && in_flight_.empty() ? absl::OkStatus() : s;
      }
    }
  }

  absl::StatusOr<Request*> Lookup(uint64_t cookie) {
    auto it = in_flight_.find(cookie);
    if (it == in_flight_.end()) return ProtocolError("reply for an unknown request");
    return it->second;
  }

  void Complete(uint64_t cookie, Request* r) {
    in_flight_.erase(cookie);
    Wake(r);
  }

  // Reads `n` bytes into `qiov` from byte `at`.
  static aio::Task<absl::Status> ReadInto(Stream& stream, const IoVector& qiov, uint64_t at,
                                          uint64_t n) {
    IoVector part = qiov.Slice(at, n);
    for (const struct iovec& v : part.iovecs()) {
      STRATA_CO_RETURN_IF_ERROR(co_await stream.ReadFully(v.iov_base, v.iov_len));
    }
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> SimpleReply(Stream& stream, absl::Span<const uint8_t> head) {
    WireReader r(head);
    r.U32();
    const uint32_t error = r.U32();
    const uint64_t cookie = r.U64();
    absl::StatusOr<Request*> req = Lookup(cookie);
    if (!req.ok()) co_return req.status();
    Request* q = *req;
    if (error != 0) {
      q->status = ErrnoError(static_cast<int>(error));
    } else if (q->type == kCmdRead) {
      STRATA_CO_RETURN_IF_ERROR(co_await ReadInto(stream, *q->data, 0, q->length));
      q->bytes_received = q->length;
    } else if (q->type == kCmdBlockStatus) {
      co_return ProtocolError("simple reply to a block status request");
    }
    Complete(cookie, q);
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> StructuredChunk(Stream& stream, absl::Span<const uint8_t> head) {
    WireReader r(head);
    r.U32();
    const uint16_t flags = r.U16();
    const uint16_t type = r.U16();
    const uint64_t cookie = r.U64();
    const uint32_t length = r.U32();
    absl::StatusOr<Request*> req = Lookup(cookie);
    if (!req.ok()) co_return req.status();
    Request* q = *req;
    if (type == kReplyOffsetData) {
      if (q->type != kCmdRead || length < 8) co_return ProtocolError("unexpected data chunk");
      uint8_t at[8];
      STRATA_CO_RETURN_IF_ERROR(co_await stream.ReadFully(at, 8));
      const uint64_t offset = WireReader({at, 8}).U64();
      const uint64_t n = length - 8;
      if (offset < q->offset || offset - q->offset > q->length ||
          n > q->length - (offset - q->offset)) {
        co_return ProtocolError("data chunk outside the request");
      }
      STRATA_CO_RETURN_IF_ERROR(co_await ReadInto(stream, *q->data, offset - q->offset, n));
      q->bytes_received += n;
    } else {
      if (length > kMaxSmallPayload) co_return ProtocolError("reply chunk too large");
      std::vector<uint8_t> payload(length);
      if (length > 0) STRATA_CO_RETURN_IF_ERROR(co_await stream.ReadFully(payload.data(), length));
      STRATA_CO_RETURN_IF_ERROR(ApplyChunk(type, payload, q));
    }
    if (flags & kReplyFlagDone) {
      if (q->status.ok()) {
        if (q->type == kCmdRead && q->bytes_received != q->length) {
          co_return ProtocolError("read reply does not cover the request");
        }
        if (q->type == kCmdBlockStatus && !q->extent.has_value()) {
          co_return ProtocolError("block status reply without extents");
        }
      }
      Complete(cookie, q);
    }
    co_return absl::OkStatus();
  }

  // A chunk other than data, its payload read.
  absl::Status ApplyChunk(uint16_t type, absl::Span<const uint8_t> payload, Request* q) {
    WireReader r(payload);
    switch (type) {
      case kReplyNone:
        if (!payload.empty()) return ProtocolError("payload in a none chunk");
        return absl::OkStatus();
      case kReplyOffsetHole: {
        const uint64_t offset = r.U64();
        const uint32_t size = r.U32();
        if (q->type != kCmdRead || !r.ok() || !r.AtEnd() || size == 0 ||
            offset < q->offset || offset - q->offset > q->length ||
            size > q->length - (offset - q->offset)) {
          return ProtocolError("invalid hole chunk");
        }
        q->data->Memset(offset - q->offset, 0, size);
        q->bytes_received += size;
        return absl::OkStatus();
      }
      case kReplyBlockStatus: {
        const uint32_t id = r.U32();
        const uint32_t len = r.U32();
        const uint32_t state = r.U32();
        if (q->type != kCmdBlockStatus || !r.ok() || (payload.size() - 4) % 8 != 0 ||
            len == 0 || id != meta_context_id_) {
          return ProtocolError("invalid block status chunk");
        }
        if (!q->extent.has_value()) {
          q->extent = NbdExtent{std::min<uint64_t>(len, q->length), state};
        }
        return absl::OkStatus();
      }
      default:
        break;
    }
    if (type & (1u << 15)) {  // an error chunk, known or not
      const uint32_t error = r.U32();
      const uint16_t message_length = r.U16();
      if (!r.ok() || error == 0 || payload.size() < 6u + message_length) {
        return ProtocolError("invalid error chunk");
      }
      if (q->status.ok()) q->status = ErrnoError(static_cast<int>(error));
      return absl::OkStatus();
    }
    return ProtocolError(absl::StrCat("unknown reply chunk type ", type));
  }

  // The connection broke (or the server broke the protocol): retry on a new connection
  // within reconnect-delay, or fail what is pending.
  void Break(const absl::Status& why) {
    if (broken_) return;
    broken_ = true;
    stream_->Shutdown();
    WakeSender();
    std::vector<Request*> pending;
    for (auto& [cookie, r] : in_flight_) pending.push_back(r);
    in_flight_.clear();
    pending.insert(pending.end(), send_queue_.begin(), send_queue_.end());
    send_queue_.clear();
    if (closing_ || options_.reconnect_delay_seconds <= 0) {
      dead_ = true;
      for (Request* r : pending) Fail(r, ErrnoError(EIO));
      return;
    }
    for (Request* r : pending) {
      r->status = absl::OkStatus();
      r->bytes_received = 0;
      r->extent.reset();
      waiting_.push_back(r);
    }
    reconnecting_ = true;
    deadline_ = absl::Now() + absl::Seconds(options_.reconnect_delay_seconds);
    aio::Start(Reconnect(), [this](absl::Status) { MaybeFinish(); });
  }

  // Tries to connect again until it works or the client closes; requests that waited
  // past the deadline fail (later ones fail at once) while the attempts go on.
  aio::Task<absl::Status> Reconnect() {
    while (!closing_) {
      absl::StatusOr<Established> e = co_await aio::Offload([this] {
        absl::StatusOr<Established> attempt = Establish(options_);
        if (!attempt.ok()) absl::SleepFor(kReconnectPause);
        return attempt;
      });
      if (e.ok() && (e->info.size != info_.size || e->structured != structured_)) {
        e = ErrnoError(EIO, "The server's export changed across the reconnect");
      }
      if (e.ok()) {
        retired_.push_back(std::move(stream_));
        stream_ = std::move(e->stream);
        meta_context_id_ = e->meta_context_id;
        broken_ = false;
        dead_ = false;
        reconnecting_ = false;
        for (Request* r : waiting_) send_queue_.push_back(r);
        waiting_.clear();
        StartGeneration();
        co_return absl::OkStatus();
      }
      if (absl::Now() >= deadline_ && !dead_) {
        dead_ = true;
        for (Request* r : waiting_) Fail(r, ErrnoError(EIO));
        waiting_.clear();
      }
    }
    reconnecting_ = false;
    for (Request* r : waiting_) Fail(r, ErrnoError(EIO));
    waiting_.clear();
    co_return absl::OkStatus();
  }

 public:
  // Set once before Start (from the negotiation).
  bool structured_ = false;
  std::optional<uint32_t> meta_context_id_;

 private:
  const ClientOptions options_;
  const ExportInfo info_;
  std::unique_ptr<aio::LoopThread> loop_;
  std::unique_ptr<Stream> stream_;
  std::vector<std::unique_ptr<Stream>> retired_;  // streams of older generations
  uint64_t generation_ = 0;
  int running_ = 0;  // coroutines of any generation still running
  uint64_t next_cookie_ = 1;
  std::deque<Request*> send_queue_;
  absl::flat_hash_map<uint64_t, Request*> in_flight_;
  std::vector<Request*> waiting_;  // for a reconnect
  std::coroutine_handle<> sender_parked_;
  bool broken_ = false;        // this generation's stream failed
  bool dead_ = false;          // requests fail at once
  bool reconnecting_ = false;
  bool closing_ = false;
  absl::Time deadline_;
  absl::Notification* finished_ = nullptr;
};

namespace {

// Hands a request to the connection and waits for its completion: a coroutine on a loop
// parks; a caller without a loop blocks on a notification (the request never runs on
// the caller's thread either way).
struct SubmitAwaiter {
  Client::Connection* connection;
  Client::Request* request;
  void (*enqueue)(Client::Connection*, Client::Request*);

  bool await_ready() {
    request->context = aio::IoContext::Current();
    if (request->context != nullptr) return false;
    absl::Notification done;
    request->done = &done;
    enqueue(connection, request);
    done.WaitForNotification();
    return true;
  }
  void await_suspend(std::coroutine_handle<> h) {
    request->handle = h;
    enqueue(connection, request);
  }
  void await_resume() const noexcept {}
};

}  // namespace

Client::Client(const ClientOptions& options) : options_(options) {}

Client::~Client() {
  if (connection_ != nullptr) connection_->Close();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  absl::StatusOr<Established> e = Establish(options);
  if (!e.ok()) return e.status();
  aio::IoContext::Options loop_options;
  absl::StatusOr<std::unique_ptr<aio::LoopThread>> loop = aio::LoopThread::Start(loop_options);
  if (!loop.ok()) {
    loop_options.engine = aio::Engine::kThreads;
    loop = aio::LoopThread::Start(loop_options);
    if (!loop.ok()) return loop.status();
  }
  std::unique_ptr<Client> client(new Client(options));
  client->info_ = e->info;
  client->structured_ = e->structured;
  client->meta_context_id_ = e->meta_context_id;
  client->connection_ = std::make_unique<Connection>(options, *std::move(e), *std::move(loop));
  client->connection_->structured_ = client->structured_;
  client->connection_->meta_context_id_ = client->meta_context_id_;
  client->connection_->Start();
  return client;
}

aio::Task<absl::Status> Client::Submit(Request& request) {
  co_await SubmitAwaiter{connection_.get(), &request,
                         [](Connection* c, Request* r) { c->Enqueue(r); }};
  co_return request.status;
}

aio::Task<absl::Status> Client::Read(uint64_t offset, const IoVector& qiov) {
  Request r;
  r.type = kCmdRead;
  r.offset = offset;
  r.length = static_cast<uint32_t>(qiov.size());
  r.data = &qiov;
  co_return co_await Submit(r);
}

aio::Task<absl::Status> Client::Write(uint64_t offset, const IoVector& qiov, uint16_t flags) {
  Request r;
  r.type = kCmdWrite;
  r.flags = flags;
  r.offset = offset;
  r.length = static_cast<uint32_t>(qiov.size());
  r.data = &qiov;
  co_return co_await Submit(r);
}

aio::Task<absl::Status> Client::WriteZeroes(uint64_t offset, uint32_t length, uint16_t flags) {
  Request r;
  r.type = kCmdWriteZeroes;
  r.flags = flags;
  r.offset = offset;
  r.length = length;
  co_return co_await Submit(r);
}

aio::Task<absl::Status> Client::Trim(uint64_t offset, uint32_t length) {
  Request r;
  r.type = kCmdTrim;
  r.offset = offset;
  r.length = length;
  co_return co_await Submit(r);
}

aio::Task<absl::Status> Client::Flush() {
  Request r;
  r.type = kCmdFlush;
  co_return co_await Submit(r);
}

aio::Task<absl::Status> Client::Cache(uint64_t offset, uint32_t length) {
  Request r;
  r.type = kCmdCache;
  r.offset = offset;
  r.length = length;
  co_return co_await Submit(r);
}

aio::Task<absl::StatusOr<NbdExtent>> Client::BlockStatus(uint64_t offset, uint32_t length) {
  Request r;
  r.type = kCmdBlockStatus;
  r.flags = kCmdFlagReqOne;
  r.offset = offset;
  r.length = length;
  absl::Status s = co_await Submit(r);
  if (!s.ok()) co_return s;
  co_return *r.extent;
}

}  // namespace strata::nbd
