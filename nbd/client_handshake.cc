// strata nbd: client negotiation (see client_handshake.h).
#include "nbd/client_handshake.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/status.h"
#include "nbd/protocol.h"
#include "nbd/wire.h"

namespace strata::nbd {

namespace {

absl::Status BadServer(absl::string_view what) {
  return ErrnoError(EPROTO, absl::StrCat("Server sent an invalid reply: ", what));
}

// Replies of more than this are refused (no option answer is that large).
constexpr uint32_t kMaxReplyLength = 16 * 1024 * 1024;

}  // namespace

std::string DescribeTransmissionFlags(uint16_t flags) {
  static const char* const kNames[] = {"readonly", "flush", "fua",   "rotational",
                                       "trim",     "zeroes", "df",   "multi",
                                       "resize",   "cache",  "fast-zero"};
  std::string out;
  for (int bit = 1; bit <= 11; ++bit) {
    if (flags & (1u << bit)) absl::StrAppend(&out, " ", kNames[bit - 1]);
  }
  return out;
}

aio::Task<absl::Status> ClientHandshake::Start() {
  uint8_t hello[18];
  STRATA_CO_RETURN_IF_ERROR(co_await (*stream_)->ReadFully(hello, 16));
  WireReader r(hello);
  if (r.U64() != kInitMagic) co_return BadServer("bad magic");
  const uint64_t second = r.U64();
  if (second != kOptionMagic) {
    co_return ErrnoError(EINVAL, "Server does not support the fixed newstyle protocol");
  }
  STRATA_CO_RETURN_IF_ERROR(co_await (*stream_)->ReadFully(hello + 16, 2));
  const uint16_t server_flags = WireReader({hello + 16, 2}).U16();
  if (!(server_flags & kFlagFixedNewstyle)) {
    co_return ErrnoError(EINVAL, "Server does not support the fixed newstyle protocol");
  }
  no_zeroes_ = (server_flags & kFlagNoZeroes) != 0;
  std::vector<uint8_t> flags;
  WireWriter w(&flags);
  w.U32(kClientFlagFixedNewstyle | (no_zeroes_ ? kClientFlagNoZeroes : 0));
  struct iovec iov = {flags.data(), flags.size()};
  co_return co_await (*stream_)->WriteFully({&iov, 1});
}

aio::Task<absl::Status> ClientHandshake::SendOption(uint32_t option,
                                                    const std::vector<uint8_t>& data) {
  std::vector<uint8_t> head;
  WireWriter w(&head);
  w.U64(kOptionMagic);
  w.U32(option);
  w.U32(static_cast<uint32_t>(data.size()));
  struct iovec iov[2] = {{head.data(), head.size()},
                         {const_cast<uint8_t*>(data.data()), data.size()}};
  co_return co_await (*stream_)->WriteFully(iov);
}

aio::Task<absl::StatusOr<ClientHandshake::OptionReply>> ClientHandshake::ReadReply(
    uint32_t option) {
  uint8_t head[20];
  absl::Status got = co_await (*stream_)->ReadFully(head, sizeof(head));
  if (!got.ok()) {
    // QEMU's words: "Failed to read option reply: <why>".
    const bool eof = absl::IsUnavailable(got) && got.message() == "Connection closed";
    co_return ErrnoError(ErrnoOf(got) == 0 ? EIO : ErrnoOf(got),
                         absl::StrCat("Failed to read option reply: ",
                                      eof ? "Unexpected end-of-file before all data were read"
                                          : got.message()));
  }
  WireReader r(head);
  if (r.U64() != kOptionReplyMagic) co_return BadServer("bad option reply magic");
  if (r.U32() != option) co_return BadServer("reply to another option");
  OptionReply reply;
  reply.type = r.U32();
  const uint32_t length = r.U32();
  if (length > kMaxReplyLength) co_return BadServer("option reply too long");
  reply.data.resize(length);
  if (length > 0) STRATA_CO_RETURN_IF_ERROR(co_await (*stream_)->ReadFully(reply.data.data(), length));
  co_return reply;
}

absl::Status ClientHandshake::ReplyError(uint32_t option, const OptionReply& reply) {
  std::string text(reply.data.begin(), reply.data.end());
  std::string what;
  int err = EINVAL;
  switch (reply.type) {
    case kRepErrUnsup:
      what = absl::StrFormat("Unsupported option %u (%s)", option, OptionName(option));
      err = ENOTSUP;
      break;
    case kRepErrPolicy:
      what = "Denied by server for option " + std::to_string(option);
      err = EACCES;
      break;
    case kRepErrInvalid:
      what = "Invalid parameters for option " + std::to_string(option);
      break;
    case kRepErrPlatform:
      what = "Server lacks support for option " + std::to_string(option);
      err = ENOTSUP;
      break;
    case kRepErrTlsReqd:
      what = "TLS negotiation required before option " + std::to_string(option);
      err = EACCES;
      break;
    case kRepErrUnknown:
      what = "Requested export not available";
      err = ENOENT;
      break;
    case kRepErrShutdown:
      what = "Server shutting down before option " + std::to_string(option);
      err = ESHUTDOWN;
      break;
    case kRepErrBlockSizeReqd:
      what = "Server requires INFO_BLOCK_SIZE for option " + std::to_string(option);
      break;
    case kRepErrTooBig:
      what = "Option too large";
      break;
    default:
      what = absl::StrFormat("Unknown error code when asking for option %u", option);
      break;
  }
  if (!text.empty()) absl::StrAppend(&what, "\nserver reported: ", text);
  return ErrnoError(err, what);
}

aio::Task<absl::Status> ClientHandshake::StartTls(TlsClientCredentials& tls,
                                                  const std::string& hostname) {
  STRATA_CO_RETURN_IF_ERROR(co_await SendOption(kOptStartTls, {}));
  absl::StatusOr<OptionReply> reply = co_await ReadReply(kOptStartTls);
  if (!reply.ok()) co_return reply.status();
  if (reply->type != kRepAck) {
    if (reply->type & kRepErrorBit) {
      co_return ErrnoError(ENOTSUP, "Server don't support STARTTLS option");
    }
    co_return BadServer("unexpected reply to STARTTLS");
  }
  co_return co_await tls.Connect(stream_, hostname);
}

aio::Task<absl::StatusOr<bool>> ClientHandshake::StructuredReply() {
  STRATA_CO_RETURN_IF_ERROR(co_await SendOption(kOptStructuredReply, {}));
  absl::StatusOr<OptionReply> reply = co_await ReadReply(kOptStructuredReply);
  if (!reply.ok()) co_return reply.status();
  if (reply->type == kRepAck) co_return true;
  if (reply->type & kRepErrorBit) co_return false;
  co_return BadServer("unexpected reply to STRUCTURED_REPLY");
}

aio::Task<absl::StatusOr<std::vector<std::pair<std::string, std::string>>>>
ClientHandshake::List() {
  STRATA_CO_RETURN_IF_ERROR(co_await SendOption(kOptList, {}));
  std::vector<std::pair<std::string, std::string>> exports;
  for (;;) {
    absl::StatusOr<OptionReply> reply = co_await ReadReply(kOptList);
    if (!reply.ok()) co_return reply.status();
    if (reply->type == kRepAck) co_return exports;
    if (reply->type & kRepErrorBit) co_return ReplyError(kOptList, *reply);
    if (reply->type != kRepServer) co_return BadServer("unexpected reply to LIST");
    WireReader r(reply->data);
    const uint32_t n = r.U32();
    if (n > r.remaining()) co_return BadServer("export name too long");
    std::string name = r.String(n);
    std::string description = r.String(r.remaining());
    exports.emplace_back(std::move(name), std::move(description));
    if (exports.size() > 100000) co_return BadServer("too many exports");
  }
}

aio::Task<absl::StatusOr<std::vector<MetaContext>>> ClientHandshake::MetaContexts(
    bool list, const std::string& export_name, const std::vector<std::string>& queries) {
  const uint32_t option = list ? kOptListMetaContext : kOptSetMetaContext;
  std::vector<uint8_t> data;
  WireWriter w(&data);
  w.U32(static_cast<uint32_t>(export_name.size()));
  w.Bytes(export_name);
  w.U32(static_cast<uint32_t>(queries.size()));
  for (const std::string& q : queries) {
    w.U32(static_cast<uint32_t>(q.size()));
    w.Bytes(q);
  }
  STRATA_CO_RETURN_IF_ERROR(co_await SendOption(option, data));
  std::vector<MetaContext> contexts;
  for (;;) {
    absl::StatusOr<OptionReply> reply = co_await ReadReply(option);
    if (!reply.ok()) co_return reply.status();
    if (reply->type == kRepAck) co_return contexts;
    if (reply->type & kRepErrorBit) co_return ReplyError(option, *reply);
    if (reply->type != kRepMetaContext) co_return BadServer("unexpected meta context reply");
    WireReader r(reply->data);
    MetaContext c;
    c.id = r.U32();
    c.name = r.String(r.remaining());
    if (!r.ok()) co_return BadServer("short meta context reply");
    contexts.push_back(std::move(c));
    if (contexts.size() > 10000) co_return BadServer("too many meta contexts");
  }
}

aio::Task<absl::StatusOr<ExportInfo>> ClientHandshake::Info(const std::string& export_name,
                                                            bool go) {
  const uint32_t option = go ? kOptGo : kOptInfo;
  std::vector<uint8_t> data;
  WireWriter w(&data);
  w.U32(static_cast<uint32_t>(export_name.size()));
  w.Bytes(export_name);
  w.U16(3);
  w.U16(kInfoName);
  w.U16(kInfoDescription);
  w.U16(kInfoBlockSize);
  STRATA_CO_RETURN_IF_ERROR(co_await SendOption(option, data));
  ExportInfo info;
  info.name = export_name;
  bool have_export = false;
  for (;;) {
    absl::StatusOr<OptionReply> reply = co_await ReadReply(option);
    if (!reply.ok()) co_return reply.status();
    if (reply->type == kRepAck) {
      if (!have_export) co_return BadServer("no export information");
      co_return info;
    }
    if (reply->type == kRepErrUnsup && go) {
      // An older server: NBD_OPT_EXPORT_NAME has no way to report errors but closing.
      std::vector<uint8_t> name(export_name.begin(), export_name.end());
      STRATA_CO_RETURN_IF_ERROR(co_await SendOption(kOptExportName, name));
      uint8_t answer[10 + 124];
      STRATA_CO_RETURN_IF_ERROR(
          co_await (*stream_)->ReadFully(answer, no_zeroes_ ? 10 : sizeof(answer)));
      WireReader r({answer, 10});
      info.size = r.U64();
      info.flags = r.U16();
      co_return info;
    }
    if (reply->type & kRepErrorBit) co_return ReplyError(option, *reply);
    if (reply->type != kRepInfo) co_return BadServer("unexpected reply to INFO/GO");
    WireReader r(reply->data);
    const uint16_t type = r.U16();
    switch (type) {
      case kInfoExport:
        info.size = r.U64();
        info.flags = r.U16();
        if (!r.AtEnd()) co_return BadServer("bad NBD_INFO_EXPORT");
        have_export = true;
        break;
      case kInfoName:
        info.name = r.String(r.remaining());
        break;
      case kInfoDescription:
        info.description = r.String(r.remaining());
        break;
      case kInfoBlockSize:
        info.min_block = r.U32();
        info.preferred_block = r.U32();
        info.max_block = r.U32();
        if (!r.AtEnd() || info.min_block == 0 || info.min_block > info.preferred_block ||
            info.preferred_block > info.max_block) {
          co_return BadServer("bad NBD_INFO_BLOCK_SIZE");
        }
        break;
      default:
        break;  // unknown information is ignored, as the protocol says
    }
  }
}

aio::Task<absl::Status> ClientHandshake::Abort() {
  absl::Status sent = co_await SendOption(kOptAbort, {});
  if (sent.ok()) (void)co_await ReadReply(kOptAbort);
  co_return absl::OkStatus();
}

}  // namespace strata::nbd
