// strata-io: the command functions the table in commands.cc points at.
#ifndef STRATA_TOOLS_STRATA_IO_IO_COMMANDS_H_
#define STRATA_TOOLS_STRATA_IO_IO_COMMANDS_H_

#include <string>
#include <vector>

#include "tools/strata_io/io_session.h"

namespace strata::io {

using Args = std::vector<std::string>;

// io_commands.cc
bool ReadCommand(IoSession& s, const Args& argv);
bool ReadvCommand(IoSession& s, const Args& argv);
bool WriteCommand(IoSession& s, const Args& argv);
bool WritevCommand(IoSession& s, const Args& argv);
bool AioReadCommand(IoSession& s, const Args& argv);
bool AioWriteCommand(IoSession& s, const Args& argv);
bool AioFlushCommand(IoSession& s, const Args& argv);
bool DiscardCommand(IoSession& s, const Args& argv);

// file_commands.cc
bool OpenCommand(IoSession& s, const Args& argv);
bool CloseCommand(IoSession& s, const Args& argv);
bool InfoCommand(IoSession& s, const Args& argv);
bool LengthCommand(IoSession& s, const Args& argv);
bool MapCommand(IoSession& s, const Args& argv);
bool AllocCommand(IoSession& s, const Args& argv);
bool FlushCommand(IoSession& s, const Args& argv);
bool TruncateCommand(IoSession& s, const Args& argv);
bool AbortCommand(IoSession& s, const Args& argv);
bool SigraiseCommand(IoSession& s, const Args& argv);
bool SleepCommand(IoSession& s, const Args& argv);
bool QuitCommand(IoSession& s, const Args& argv);
bool HelpCommand(IoSession& s, const Args& argv);
bool ReopenCommand(IoSession& s, const Args& argv);
bool BreakCommand(IoSession& s, const Args& argv);
bool RemoveBreakCommand(IoSession& s, const Args& argv);
bool ResumeCommand(IoSession& s, const Args& argv);
bool WaitBreakCommand(IoSession& s, const Args& argv);

}  // namespace strata::io

#endif  // STRATA_TOOLS_STRATA_IO_IO_COMMANDS_H_
