// strata nbd: names of protocol values for messages.
#include "nbd/protocol.h"

namespace strata::nbd {

const char* OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName: return "export name";
    case kOptAbort: return "abort";
    case kOptList: return "list";
    case kOptStartTls: return "starttls";
    case kOptInfo: return "info";
    case kOptGo: return "go";
    case kOptStructuredReply: return "structured reply";
    case kOptListMetaContext: return "list meta context";
    case kOptSetMetaContext: return "set meta context";
    default: return "<unknown>";
  }
}

const char* CommandName(uint16_t command) {
  switch (command) {
    case kCmdRead: return "read";
    case kCmdWrite: return "write";
    case kCmdDisc: return "disconnect";
    case kCmdFlush: return "flush";
    case kCmdTrim: return "trim";
    case kCmdCache: return "cache";
    case kCmdWriteZeroes: return "write zeroes";
    case kCmdBlockStatus: return "block status";
    default: return "<unknown>";
  }
}

}  // namespace strata::nbd
