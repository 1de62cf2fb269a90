// strata nbd: the server's transmission phase: requests in, replies out.
//
// The reader (Serve) reads one request header (and a write's payload) after another and
// starts each request as its own coroutine, so slow requests do not hold up others. It
// stops reading while too many requests or payload bytes are in flight (a client cannot
// make the server buffer without bound). Replies are queued and written by whichever
// coroutine finds the socket free, several at a time when they pile up.
#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "aio/io_context.h"
#include "aio/offload.h"
#include "block/status.h"
#include "nbd/protocol.h"
#include "nbd/server_connection.h"
#include "nbd/wire.h"

namespace strata::nbd {

namespace {

constexpr int kMaxInFlight = 128;
constexpr size_t kMaxInFlightBytes = 64 * 1024 * 1024;
// Reads at least this long look for holes first (TrySparseRead); shorter ones are not
// worth a block-status walk.
constexpr uint32_t kSparseReadMin = 64 * 1024;

// Parks the awaiting coroutine in `*slot` until someone resumes it.
struct Park {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

}  // namespace

uint32_t WireErrorOf(const absl::Status& status) {
  switch (ErrnoOf(status)) {
    case 0:
      return 0;
    case EPERM:
    case EROFS:
    case EACCES:
      return kErrPerm;
    case EIO:
      return kErrIo;
    case ENOMEM:
      return kErrNoMem;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return kErrNoSpc;
    case EOVERFLOW:
      return kErrOverflow;
    case ENOTSUP:
      return kErrNotSup;
    case ESHUTDOWN:
      return kErrShutdown;
    default:
      return kErrInval;
  }
}

aio::Task<absl::Status> ServerConnection::Serve() {
  absl::Status result = absl::OkStatus();
  for (;;) {
    while (!broken_ && (in_flight_ >= kMaxInFlight ||
                        (in_flight_ > 0 && in_flight_bytes_ >= kMaxInFlightBytes))) {
      co_await Park{&reader_parked_};
    }
    if (broken_) break;
    uint8_t head[kRequestHeaderSize];
    absl::Status read = co_await stream_->ReadFully(head, sizeof(head));
    if (!read.ok()) {
      // A client that leaves without NBD_CMD_DISC: not an error of ours.
      if (!absl::IsUnavailable(read)) result = read;
      break;
    }
    WireReader r(head);
    const uint32_t magic = r.U32();
    Request request;
    request.flags = r.U16();
    request.type = r.U16();
    request.handle = r.U64();
    request.offset = r.U64();
    request.length = r.U32();
    if (magic != kRequestMagic) {
      // Out of step with the client: say so (qemu-nbd's reply), then hang up.
      (void)co_await SendError(request, kErrInval,
                               absl::StrFormat("invalid magic (got 0x%x)", magic));
      result = ErrnoError(EPROTO, "NBD protocol error: bad request magic");
      break;
    }
    if (request.type == kCmdDisc) break;
    AlignedBuffer payload;
    size_t payload_bytes = 0;
    if (request.type == kCmdWrite) {
      if (request.length > export_->max_block()) {
        // The payload cannot be skipped safely: say why, then hang up.
        (void)co_await SendError(request, kErrInval,
                                 absl::StrFormat("len (%u) is larger than max len (%u)",
                                                 request.length, export_->max_block()));
        result = ErrnoError(EPROTO, "NBD protocol error: write larger than the maximum");
        break;
      }
      payload = buffers_.Take(request.length);
      payload_bytes = request.length;
      if (request.length > 0) {
        absl::Status got = co_await stream_->ReadFully(payload.data(), request.length);
        if (!got.ok()) {
          if (!absl::IsUnavailable(got)) result = got;
          break;
        }
      }
    } else if (request.type == kCmdRead) {
      payload_bytes = std::min<size_t>(request.length, export_->max_block());
    }
    ++in_flight_;
    in_flight_bytes_ += payload_bytes;
    aio::Start(Handle(request, std::move(payload)),
               [this, payload_bytes](absl::Status) { RequestEnded(payload_bytes); });
  }
  // Let every started request finish (their replies may still go out).
  while (in_flight_ > 0) co_await Park{&reader_parked_};
  co_return result;
}

void ServerConnection::RequestEnded(size_t payload_bytes) {
  --in_flight_;
  in_flight_bytes_ -= payload_bytes;
  if (reader_parked_) {
    std::coroutine_handle<> h = std::exchange(reader_parked_, nullptr);
    aio::IoContext* loop = aio::IoContext::Current();
    if (loop != nullptr) {
      loop->Post(h);
    } else {
      h.resume();
    }
  }
}

uint32_t ServerConnection::Check(const Request& request) const {
  // The flags each command takes (FUA: all of them; DF only once structured replies
  // are on), as qemu-nbd checks them.
  uint16_t valid_flags = kCmdFlagFua;
  if (request.type == kCmdRead && structured_) valid_flags |= kCmdFlagDf;
  if (request.type == kCmdWriteZeroes) valid_flags |= kCmdFlagNoHole | kCmdFlagFastZero;
  if (request.type == kCmdBlockStatus) valid_flags |= kCmdFlagReqOne;
  if ((request.flags & ~valid_flags) != 0) return kErrInval;
  switch (request.type) {
    case kCmdRead:
    case kCmdWrite:
    case kCmdTrim:
    case kCmdWriteZeroes:
    case kCmdCache:
    case kCmdBlockStatus:
      break;
    case kCmdFlush:
      return 0;
    default:
      return kErrInval;
  }
  if (request.offset > export_->size() || request.length > export_->size() - request.offset) {
    return kErrInval;
  }
  if ((request.type == kCmdWrite || request.type == kCmdTrim ||
       request.type == kCmdWriteZeroes) &&
      export_->options().read_only) {
    return kErrPerm;
  }
  if (request.type == kCmdRead && request.length > export_->max_block()) return kErrInval;
  if (request.type == kCmdBlockStatus && (contexts_.empty() || request.length == 0)) {
    return kErrInval;
  }
  return 0;
}

aio::Task<absl::Status> ServerConnection::Handle(Request request, AlignedBuffer payload) {
  // The payload goes back to the recycler whichever way this returns.
  struct GiveBack {
    AlignedBufferRecycler* recycler;
    AlignedBuffer* buffer;
    ~GiveBack() { recycler->Give(std::move(*buffer)); }
  } give_back{&buffers_, &payload};
  const uint32_t invalid = Check(request);
  if (invalid != 0) {
    co_return co_await SendError(request, invalid,
                                 absl::StrFormat("request %s at %u+%u refused",
                                                 CommandName(request.type), request.offset,
                                                 request.length));
  }
  BlockBackend& backend = export_->backend();
  const ExportOptions& options = export_->options();
  const uint64_t at = options.offset + request.offset;  // in the image
  absl::Status status;
  switch (request.type) {
    case kCmdRead:
      co_return co_await HandleRead(request);
    case kCmdBlockStatus:
      co_return co_await HandleBlockStatus(request);
    case kCmdWrite: {
      const uint32_t fua = (request.flags & kCmdFlagFua) ? kReqFua : kReqNone;
      if (options.detect_zeroes != ExportOptions::DetectZeroes::kOff && request.length > 0 &&
          BufferIsZero(payload.data(), request.length)) {
        const uint32_t unmap =
            options.detect_zeroes == ExportOptions::DetectZeroes::kUnmap ? uint32_t{kReqMayUnmap} : 0u;
        status = co_await backend.CoPwriteZeroes(at, request.length, fua | unmap);
        break;
      }
      IoVector qiov(payload.data(), request.length);
      status = co_await backend.CoPwritev(at, request.length, qiov, fua);
      break;
    }
    case kCmdWriteZeroes: {
      uint32_t flags = kReqNone;
      if (!(request.flags & kCmdFlagNoHole)) flags |= kReqMayUnmap;
      if (request.flags & kCmdFlagFastZero) flags |= kReqNoFallback;
      if (request.flags & kCmdFlagFua) flags |= kReqFua;
      status = co_await backend.CoPwriteZeroes(at, request.length, flags);
      break;
    }
    case kCmdTrim:
      status = co_await backend.CoPdiscard(at, request.length);
      if (status.ok() && (request.flags & kCmdFlagFua)) status = co_await backend.CoFlush();
      break;
    case kCmdFlush:
      status = co_await backend.CoFlush();
      break;
    case kCmdCache:
      break;  // a hint: the data is read on demand anyway
  }
  if (!status.ok()) {
    co_return co_await SendError(request, WireErrorOf(status), std::string(status.message()));
  }
  co_return co_await SendDone(request);
}

aio::Task<absl::Status> ServerConnection::HandleRead(const Request& request) {
  if (structured_ && !(request.flags & kCmdFlagDf) && request.length >= kSparseReadMin) {
    std::optional<absl::Status> sparse = co_await TrySparseRead(request);
    if (sparse.has_value()) co_return *sparse;
  }
  Reply reply;
  reply.data = buffers_.Take(request.length);
  if (request.length > 0) {
    absl::Status status = co_await export_->backend().CoPreadv(
        export_->options().offset + request.offset, request.length,
        IoVector(reply.data.data(), request.length));
    if (!status.ok()) {
      co_return co_await SendError(request, WireErrorOf(status), std::string(status.message()));
    }
  }
  WireWriter w(&reply.meta);
  if (structured_ && request.length > 0) {
    w.U32(kStructuredReplyMagic);
    w.U16(kReplyFlagDone);
    w.U16(kReplyOffsetData);
    w.U64(request.handle);
    w.U32(8 + request.length);
    w.U64(request.offset);
  } else if (structured_) {
    w.U32(kStructuredReplyMagic);
    w.U16(kReplyFlagDone);
    w.U16(kReplyNone);
    w.U64(request.handle);
    w.U32(0);
  } else {
    w.U32(kSimpleReplyMagic);
    w.U32(0);
    w.U64(request.handle);
  }
  reply.AddData(0, request.length);
  co_return co_await Send(std::move(reply));
}

aio::Task<std::optional<absl::Status>> ServerConnection::TrySparseRead(const Request& request) {
  const uint64_t start = export_->options().offset + request.offset;
  struct Run {
    uint64_t length;
    bool zero;
  };
  BlockDriverState& root = export_->backend().root();
  absl::StatusOr<std::vector<Run>> runs = co_await aio::Offload(
      [&]() -> absl::StatusOr<std::vector<Run>> {
        std::vector<Run> out;
        uint64_t done = 0;
        while (done < request.length) {
          STRATA_ASSIGN_OR_RETURN(BlockStatus s,
                                  root.GetBlockStatusAbove(start + done, request.length - done));
          if (s.bytes == 0) return ErrnoError(EIO, "no block status");
          const uint64_t n = std::min<uint64_t>(s.bytes, request.length - done);
          if (!out.empty() && out.back().zero == s.zero) {
            out.back().length += n;
          } else {
            out.push_back({n, s.zero});
          }
          done += n;
        }
        return out;
      });
  // Without block status, or without a hole, the plain read does it.
  if (!runs.ok() || (runs->size() == 1 && !runs->front().zero)) co_return std::nullopt;
  Reply reply;
  reply.data = buffers_.Take(request.length);
  uint64_t pos = 0;
  for (const Run& run : *runs) {
    if (!run.zero) {
      absl::Status status = co_await export_->backend().CoPreadv(
          start + pos, run.length, IoVector(reply.data.data() + pos, run.length));
      if (!status.ok()) {
        co_return co_await SendError(request, WireErrorOf(status), std::string(status.message()));
      }
    }
    pos += run.length;
  }
  WireWriter w(&reply.meta);
  pos = 0;
  for (size_t i = 0; i < runs->size(); ++i) {
    const Run& run = (*runs)[i];
    w.U32(kStructuredReplyMagic);
    w.U16(i + 1 == runs->size() ? kReplyFlagDone : 0);
    w.U16(run.zero ? kReplyOffsetHole : kReplyOffsetData);
    w.U64(request.handle);
    if (run.zero) {
      w.U32(12);
      w.U64(request.offset + pos);
      w.U32(static_cast<uint32_t>(run.length));
    } else {
      w.U32(static_cast<uint32_t>(8 + run.length));
      w.U64(request.offset + pos);
      reply.AddData(pos, run.length);
    }
    pos += run.length;
  }
  co_return co_await Send(std::move(reply));
}

aio::Task<absl::Status> ServerConnection::HandleBlockStatus(const Request& request) {
  Reply reply;
  WireWriter w(&reply.meta);
  const bool one = (request.flags & kCmdFlagReqOne) != 0;
  for (size_t i = 0; i < contexts_.size(); ++i) {
    absl::StatusOr<std::vector<Extent>> extents =
        co_await export_->CoExtents(contexts_[i], request.offset, request.length, one);
    if (!extents.ok()) {
      co_return co_await SendError(request, WireErrorOf(extents.status()),
                                   std::string(extents.status().message()));
    }
    w.U32(kStructuredReplyMagic);
    w.U16(i + 1 == contexts_.size() ? kReplyFlagDone : 0);
    w.U16(kReplyBlockStatus);
    w.U64(request.handle);
    w.U32(static_cast<uint32_t>(4 + 8 * extents->size()));
    w.U32(contexts_[i]);
    for (const Extent& e : *extents) {
      w.U32(e.length);
      w.U32(e.flags);
    }
  }
  co_return co_await Send(std::move(reply));
}

aio::Task<absl::Status> ServerConnection::SendError(const Request& request, uint32_t error,
                                                    const std::string& message) {
  Reply reply;
  WireWriter w(&reply.meta);
  if (structured_) {
    const std::string text = message.substr(0, 4096);
    w.U32(kStructuredReplyMagic);
    w.U16(kReplyFlagDone);
    w.U16(kReplyError);
    w.U64(request.handle);
    w.U32(static_cast<uint32_t>(6 + text.size()));
    w.U32(error);
    w.U16(static_cast<uint16_t>(text.size()));
    w.Bytes(text);
  } else {
    w.U32(kSimpleReplyMagic);
    w.U32(error);
    w.U64(request.handle);
  }
  co_return co_await Send(std::move(reply));
}

aio::Task<absl::Status> ServerConnection::SendDone(const Request& request) {
  Reply reply;
  WireWriter w(&reply.meta);
  if (structured_) {
    w.U32(kStructuredReplyMagic);
    w.U16(kReplyFlagDone);
    w.U16(kReplyNone);
    w.U64(request.handle);
    w.U32(0);
  } else {
    w.U32(kSimpleReplyMagic);
    w.U32(0);
    w.U64(request.handle);
  }
  co_return co_await Send(std::move(reply));
}

aio::Task<absl::Status> ServerConnection::Send(Reply reply) {
  if (broken_) co_return absl::UnavailableError("Connection closed");
  send_queue_.push_back(std::move(reply));
  if (sending_) co_return absl::OkStatus();  // the sender takes it along
  sending_ = true;
  absl::Status status = absl::OkStatus();
  while (!send_queue_.empty() && status.ok()) {
    std::deque<Reply> batch;
    batch.swap(send_queue_);
    std::vector<struct iovec> iov;
    iov.reserve(batch.size() * 2);
    for (Reply& r : batch) {
      r.CutMeta();
      for (const Reply::Piece& p : r.pieces) {
        uint8_t* base = p.from_data ? r.data.data() : r.meta.data();
        iov.push_back({base + p.offset, p.length});
      }
    }
    status = co_await stream_->WriteFully(iov);
    for (Reply& r : batch) buffers_.Give(std::move(r.data));
  }
  sending_ = false;
  if (!status.ok()) {
    broken_ = true;
    send_queue_.clear();
    stream_->Shutdown();  // wakes the reader
  }
  co_return status;
}

}  // namespace strata::nbd
