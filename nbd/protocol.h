// strata nbd: the constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md),
// shared by the server (nbd/server*.h) and the client driver (drivers/nbd). Every number
// on the wire is big-endian; nbd/wire.h reads and writes them.
#ifndef STRATA_NBD_PROTOCOL_H_
#define STRATA_NBD_PROTOCOL_H_

#include <cstdint>

namespace strata::nbd {

// --- Handshake (fixed newstyle) ---
inline constexpr uint64_t kInitMagic = 0x4e42444d41474943ull;    // "NBDMAGIC"
inline constexpr uint64_t kOptionMagic = 0x49484156454f5054ull;  // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9ull;
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;  // server handshake flags
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;  // client flags
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Options (client -> server).
enum Option : uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
  kOptListMetaContext = 9,
  kOptSetMetaContext = 10,
};

// Option replies; errors have bit 31 set.
inline constexpr uint32_t kRepErrorBit = 1u << 31;
enum OptionReply : uint32_t {
  kRepAck = 1,
  kRepServer = 2,
  kRepInfo = 3,
  kRepMetaContext = 4,
  kRepErrUnsup = kRepErrorBit | 1,
  kRepErrPolicy = kRepErrorBit | 2,
  kRepErrInvalid = kRepErrorBit | 3,
  kRepErrPlatform = kRepErrorBit | 4,
  kRepErrTlsReqd = kRepErrorBit | 5,
  kRepErrUnknown = kRepErrorBit | 6,
  kRepErrShutdown = kRepErrorBit | 7,
  kRepErrBlockSizeReqd = kRepErrorBit | 8,
  kRepErrTooBig = kRepErrorBit | 9,
};

// NBD_OPT_INFO / NBD_OPT_GO information types.
enum InfoType : uint16_t {
  kInfoExport = 0,
  kInfoName = 1,
  kInfoDescription = 2,
  kInfoBlockSize = 3,
};

// Transmission flags (per export).
enum TransmissionFlags : uint16_t {
  kFlagHasFlags = 1 << 0,
  kFlagReadOnly = 1 << 1,
  kFlagSendFlush = 1 << 2,
  kFlagSendFua = 1 << 3,
  kFlagRotational = 1 << 4,
  kFlagSendTrim = 1 << 5,
  kFlagSendWriteZeroes = 1 << 6,
  kFlagSendDf = 1 << 7,
  kFlagCanMultiConn = 1 << 8,
  kFlagSendResize = 1 << 9,
  kFlagSendCache = 1 << 10,
  kFlagSendFastZero = 1 << 11,
};

// --- Transmission ---
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr uint32_t kRequestHeaderSize = 28;
inline constexpr uint32_t kSimpleReplyHeaderSize = 16;
inline constexpr uint32_t kStructuredReplyHeaderSize = 20;

enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdCache = 5,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

enum CommandFlags : uint16_t {
  kCmdFlagFua = 1 << 0,
  kCmdFlagNoHole = 1 << 1,
  kCmdFlagDf = 1 << 2,
  kCmdFlagReqOne = 1 << 3,
  kCmdFlagFastZero = 1 << 4,
};

// Structured reply chunks.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
enum ReplyType : uint16_t {
  kReplyNone = 0,
  kReplyOffsetData = 1,
  kReplyOffsetHole = 2,
  kReplyBlockStatus = 5,
  kReplyError = (1 << 15) | 1,
  kReplyErrorOffset = (1 << 15) | 2,
};

// Errors on the wire (the protocol's own values, equal to Linux errno numbers).
enum WireError : uint32_t {
  kErrPerm = 1,
  kErrIo = 5,
  kErrNoMem = 12,
  kErrInval = 22,
  kErrNoSpc = 28,
  kErrOverflow = 75,
  kErrNotSup = 95,
  kErrShutdown = 108,
};

// base:allocation descriptor flags.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

inline constexpr char kBaseAllocation[] = "base:allocation";
inline constexpr char kQemuAllocationDepth[] = "qemu:allocation-depth";
// qemu:dirty-bitmap:NAME contexts; descriptor flag 1 = dirty.
inline constexpr char kQemuDirtyBitmapPrefix[] = "qemu:dirty-bitmap:";
inline constexpr uint32_t kStateDirty = 1;

// Limits. An option's data larger than this is refused without reading it all; a
// request larger than the export's maximum block size gets EINVAL (writes: the
// connection closes, since the payload cannot be trusted).
inline constexpr uint32_t kMaxOptionLength = 64 * 1024;
inline constexpr uint32_t kMaxStringLength = 4096;  // export names, descriptions
inline constexpr uint32_t kMaxBufferSize = 32 * 1024 * 1024;  // as qemu-nbd
inline constexpr uint16_t kDefaultPort = 10809;

// The option's name for messages ("NBD_OPT_GO"); "unknown" for others.
const char* OptionName(uint32_t option);
const char* CommandName(uint16_t command);

}  // namespace strata::nbd

#endif  // STRATA_NBD_PROTOCOL_H_
