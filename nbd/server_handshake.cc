// strata nbd: the server's side of fixed newstyle negotiation (NBD_OPT_*), up to the
// moment a client picks an export with NBD_OPT_GO or NBD_OPT_EXPORT_NAME.
//
// Malformed option data gets NBD_REP_ERR_INVALID and the haggling goes on; a bad magic,
// unknown client flags, an unknown export in NBD_OPT_EXPORT_NAME (which has no way to
// say no) or a failed TLS handshake end the connection.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/status.h"
#include "nbd/protocol.h"
#include "nbd/server_connection.h"
#include "nbd/wire.h"

namespace strata::nbd {

namespace {

absl::Status ProtocolError(absl::string_view what) {
  return ErrnoError(EPROTO, absl::StrCat("NBD protocol error: ", what));
}

// Whether `query` selects `context`: equal names, or for a LIST query a bare namespace
// ("base:") that the context lies in.
bool Selects(absl::string_view query, absl::string_view context, bool list) {
  if (query == context) return true;
  return list && absl::EndsWith(query, ":") && absl::StartsWith(context, query);
}

}  // namespace

aio::Task<absl::Status> ServerConnection::SendOptionReply(uint32_t option, uint32_t type,
                                                          const std::vector<uint8_t>& data) {
  std::vector<uint8_t> header;
  WireWriter w(&header);
  w.U64(kOptionReplyMagic);
  w.U32(option);
  w.U32(type);
  w.U32(static_cast<uint32_t>(data.size()));
  struct iovec iov[2] = {{header.data(), header.size()},
                         {const_cast<uint8_t*>(data.data()), data.size()}};
  co_return co_await stream_->WriteFully(iov);
}

aio::Task<absl::Status> ServerConnection::SendOptionError(uint32_t option, uint32_t type,
                                                          const std::string& message) {
  std::vector<uint8_t> data(message.begin(), message.end());
  co_return co_await SendOptionReply(option, type, data);
}

aio::Task<absl::Status> ServerConnection::SendExportNameReply(const Export& e) {
  std::vector<uint8_t> reply;
  WireWriter w(&reply);
  w.U64(e.size());
  w.U16(e.transmission_flags(structured_));
  if (!no_zeroes_) w.Zeroes(124);
  struct iovec iov = {reply.data(), reply.size()};
  co_return co_await stream_->WriteFully({&iov, 1});
}

aio::Task<absl::StatusOr<bool>> ServerConnection::Negotiate() {
  {
    std::vector<uint8_t> hello;
    WireWriter w(&hello);
    w.U64(kInitMagic);
    w.U64(kOptionMagic);
    w.U16(kFlagFixedNewstyle | kFlagNoZeroes);
    struct iovec iov = {hello.data(), hello.size()};
    STRATA_CO_RETURN_IF_ERROR(co_await stream_->WriteFully({&iov, 1}));
  }
  uint8_t flag_bytes[4];
  STRATA_CO_RETURN_IF_ERROR(co_await stream_->ReadFully(flag_bytes, 4));
  const uint32_t client_flags = WireReader(flag_bytes).U32();
  if ((client_flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) {
    co_return ProtocolError(absl::StrFormat("unknown client flags 0x%x", client_flags));
  }
  no_zeroes_ = (client_flags & kClientFlagNoZeroes) != 0;
  // A client that does not speak fixed newstyle gets no option replies: anything but
  // NBD_OPT_EXPORT_NAME ends the connection (as qemu-nbd does).
  const bool fixed_newstyle = (client_flags & kClientFlagFixedNewstyle) != 0;
  const bool tls_required = server_->config().tls != nullptr;

  for (;;) {
    uint8_t head[16];
    STRATA_CO_RETURN_IF_ERROR(co_await stream_->ReadFully(head, sizeof(head)));
    WireReader r(head);
    const uint64_t magic = r.U64();
    const uint32_t option = r.U32();
    const uint32_t length = r.U32();
    if (magic != kOptionMagic) co_return ProtocolError("bad option magic");
    if (!fixed_newstyle && option != kOptExportName) {
      co_return ProtocolError(absl::StrFormat("Unsupported option %u (%s)", option,
                                              OptionName(option)));
    }
    if (length > kMaxOptionLength) {
      if (option == kOptExportName) co_return ProtocolError("export name too long");
      // Beyond what any option could need: hang up rather than read it (qemu-nbd's limit).
      if (length > kMaxBufferSize) {
        co_return ProtocolError(absl::StrFormat("option length %u too large", length));
      }
      // Skip the data, then refuse: the stream stays in step.
      std::vector<uint8_t> sink(64 * 1024);
      for (uint32_t left = length; left > 0;) {
        const uint32_t step = std::min<uint32_t>(left, sink.size());
        STRATA_CO_RETURN_IF_ERROR(co_await stream_->ReadFully(sink.data(), step));
        left -= step;
      }
      STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrTooBig,
                                                          "option too large"));
      continue;
    }
    std::vector<uint8_t> data(length);
    if (length > 0) STRATA_CO_RETURN_IF_ERROR(co_await stream_->ReadFully(data.data(), length));

    if (tls_required && !tls_ && option != kOptStartTls) {
      if (option == kOptExportName) co_return ProtocolError("TLS required");
      if (option == kOptAbort) {
        (void)co_await SendOptionReply(option, kRepAck, {});
        co_return false;
      }
      STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(
          option, kRepErrTlsReqd,
          absl::StrFormat("Option 0x%x not permitted before TLS", option)));
      continue;
    }

    switch (option) {
      case kOptExportName: {
        const Export* e = server_->FindExport(
            absl::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
        if (e == nullptr) co_return ProtocolError("unknown export");
        STRATA_CO_RETURN_IF_ERROR(co_await SendExportNameReply(*e));
        export_ = e;
        co_return true;
      }
      case kOptAbort:
        (void)co_await SendOptionReply(option, kRepAck, {});
        co_return false;
      case kOptList:
        STRATA_CO_RETURN_IF_ERROR(co_await HandleList(option, data));
        break;
      case kOptStartTls: {
        if (length != 0) {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrInvalid,
                                                              "Invalid length"));
        } else if (tls_) {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrInvalid,
                                                              "TLS already enabled"));
        } else if (!tls_required) {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrPolicy,
                                                              "TLS not configured"));
        } else {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionReply(option, kRepAck, {}));
          STRATA_CO_RETURN_IF_ERROR(co_await server_->config().tls->Accept(&stream_));
          tls_ = true;
        }
        break;
      }
      case kOptInfo:
      case kOptGo: {
        absl::StatusOr<bool> went = co_await HandleInfo(option, data);
        if (!went.ok()) co_return went.status();
        if (*went) co_return true;
        break;
      }
      case kOptStructuredReply:
        if (length != 0) {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrInvalid,
                                                              "Invalid length"));
        } else if (structured_) {
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(
              option, kRepErrInvalid, "structured reply already negotiated"));
        } else {
          structured_ = true;
          STRATA_CO_RETURN_IF_ERROR(co_await SendOptionReply(option, kRepAck, {}));
        }
        break;
      case kOptListMetaContext:
      case kOptSetMetaContext:
        STRATA_CO_RETURN_IF_ERROR(co_await HandleMetaContext(option, data));
        break;
      default:
        STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(
            option, kRepErrUnsup,
            absl::StrFormat("Unsupported option %u (%s)", option, OptionName(option))));
        break;
    }
  }
}

aio::Task<absl::Status> ServerConnection::HandleList(uint32_t option,
                                                     const std::vector<uint8_t>& data) {
  if (!data.empty()) {
    co_return co_await SendOptionError(option, kRepErrInvalid, "Invalid length");
  }
  for (const Export* e : server_->config().exports) {
    std::vector<uint8_t> reply;
    WireWriter w(&reply);
    w.U32(static_cast<uint32_t>(e->name().size()));
    w.Bytes(e->name());
    w.Bytes(e->options().description);
    STRATA_CO_RETURN_IF_ERROR(co_await SendOptionReply(option, kRepServer, reply));
  }
  co_return co_await SendOptionReply(option, kRepAck, {});
}

aio::Task<absl::StatusOr<bool>> ServerConnection::HandleInfo(uint32_t option,
                                                             const std::vector<uint8_t>& data) {
  WireReader r(data);
  const uint32_t name_length = r.U32();
  std::string name = name_length <= kMaxStringLength ? r.String(name_length) : "";
  const uint16_t count = r.U16();
  std::vector<uint16_t> wanted;
  for (uint16_t i = 0; i < count && r.ok(); ++i) wanted.push_back(r.U16());
  if (name_length > kMaxStringLength || !r.AtEnd()) {
    STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(option, kRepErrInvalid,
                                                        "Invalid length"));
    co_return false;
  }
  const Export* e = server_->FindExport(name);
  if (e == nullptr) {
    STRATA_CO_RETURN_IF_ERROR(co_await SendOptionError(
        option, kRepErrUnknown, absl::StrFormat("export '%s' not present", name)));
    co_return false;
  }
  auto wants = [&](uint16_t type) {
    return std::find(wanted.begin(), wanted.end(), type) != wanted.end();
  };
  auto send_info = [&](const std::vector<uint8_t>& info) {
    return SendOptionReply(option, kRepInfo, info);
  };
  if (wants(kInfoName)) {
    std::vector<uint8_t> info;
    WireWriter w(&info);
    w.U16(kInfoName);
    w.Bytes(e->name());
    STRATA_CO_RETURN_IF_ERROR(co_await send_info(info));
  }
  if (wants(kInfoDescription) && !e->options().description.empty()) {
    std::vector<uint8_t> info;
    WireWriter w(&info);
    w.U16(kInfoDescription);
    w.Bytes(e->options().description);
    STRATA_CO_RETURN_IF_ERROR(co_await send_info(info));
  }
  {
    std::vector<uint8_t> info;
    WireWriter w(&info);
    w.U16(kInfoBlockSize);
    w.U32(e->min_block());
    w.U32(e->preferred_block());
    w.U32(e->max_block());
    STRATA_CO_RETURN_IF_ERROR(co_await send_info(info));
  }
  {
    std::vector<uint8_t> info;
    WireWriter w(&info);
    w.U16(kInfoExport);
    w.U64(e->size());
    w.U16(e->transmission_flags(structured_));
    STRATA_CO_RETURN_IF_ERROR(co_await send_info(info));
  }
  STRATA_CO_RETURN_IF_ERROR(co_await SendOptionReply(option, kRepAck, {}));
  if (option != kOptGo) co_return false;
  // Contexts chosen for another export do not carry over.
  if (e != meta_export_) contexts_.clear();
  export_ = e;
  co_return true;
}

aio::Task<absl::Status> ServerConnection::HandleMetaContext(uint32_t option,
                                                            const std::vector<uint8_t>& data) {
  const bool list = option == kOptListMetaContext;
  if (!list && !structured_) {
    co_return co_await SendOptionError(option, kRepErrInvalid,
                                       "request structured replies first");
  }
  WireReader r(data);
  const uint32_t name_length = r.U32();
  std::string name = name_length <= kMaxStringLength ? r.String(name_length) : "";
  if (name_length > kMaxStringLength || !r.ok()) {
    co_return co_await SendOptionError(option, kRepErrInvalid, "Invalid length");
  }
  // The export is looked up before the queries are read (qemu-nbd's order of errors).
  const Export* e = server_->FindExport(name);
  if (e == nullptr) {
    co_return co_await SendOptionError(option, kRepErrUnknown,
                                       absl::StrFormat("export '%s' not present", name));
  }
  const uint32_t count = r.U32();
  std::vector<std::string> queries;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    const uint32_t n = r.U32();
    if (n > kMaxStringLength) {
      r.Skip(SIZE_MAX);  // fails the reader
      break;
    }
    queries.push_back(r.String(n));
  }
  if (!r.AtEnd()) {
    co_return co_await SendOptionError(option, kRepErrInvalid, "Invalid length");
  }
  if (!list) {
    contexts_.clear();
    meta_export_ = e;
  }
  const std::vector<std::string>& offered = e->contexts();
  for (uint32_t id = 0; id < offered.size(); ++id) {
    bool selected = list && queries.empty();
    for (const std::string& q : queries) selected = selected || Selects(q, offered[id], list);
    if (!selected) continue;
    std::vector<uint8_t> reply;
    WireWriter w(&reply);
    w.U32(id);
    w.Bytes(offered[id]);
    STRATA_CO_RETURN_IF_ERROR(co_await SendOptionReply(option, kRepMetaContext, reply));
    if (!list) contexts_.push_back(id);
  }
  co_return co_await SendOptionReply(option, kRepAck, {});
}

}  // namespace strata::nbd
