// strata-io: the command table, alphabetical like qemu-io's `help`.
#include "tools/strata_io/io_commands.h"

namespace strata::io {

namespace {

// Extended help, as `help <command>` prints it in qemu-io 7.2 (observed output).
constexpr const char kReadHelp[] =
    "\n"
    " reads a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " -b, -- read from the VM state rather than the virtual disk\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -l, -- length for pattern verification (only with -P)\n"
    " -p, -- ignored for backwards compatibility\n"
    " -P, -- use a pattern to verify read data\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -s, -- start offset for pattern verification (only with -P)\n"
    " -v, -- dump buffer to standard output\n"
    "\n";

constexpr const char kWriteHelp[] =
    "\n"
    " writes a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " -b, -- write to the VM state rather than the virtual disk\n"
    " -c, -- write compressed data with blk_write_compressed\n"
    " -f, -- use Force Unit Access semantics\n"
    " -n, -- with -z, don't allow slow fallback\n"
    " -p, -- ignored for backwards compatibility\n"
    " -P, -- use different pattern to fill file\n"
    " -s, -- use a pattern file to fill the write buffer\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -u, -- with -z, allow unmapping\n"
    " -z, -- write zeroes using blk_co_pwrite_zeroes\n"
    "\n";

constexpr const char kReadvHelp[] =
    "\n"
    " reads a range of bytes from the given offset into multiple buffers\n"
    "\n"
    " Example:\n"
    " 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " Uses multiple iovec buffers if more than one byte range is specified.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -P, -- use a pattern to verify read data\n"
    " -v, -- dump buffer to standard output\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr const char kWritevHelp[] =
    "\n"
    " writes a range of bytes from the given offset source from multiple buffers\n"
    "\n"
    " Example:\n"
    " 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " -P, -- use different pattern to fill file\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -f, -- use Force Unit Access semantics\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr const char kAioReadHelp[] =
    "\n"
    " asynchronously reads a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " The read is performed asynchronously and the aio_flush command must be\n"
    " used to ensure all outstanding aio requests have been completed.\n"
    " Note that due to its asynchronous nature, this command will be\n"
    " considered successful once the request is submitted, independently\n"
    " of potential I/O errors or pattern mismatches.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -P, -- use a pattern to verify read data\n"
    " -i, -- treat request as invalid, for exercising stats\n"
    " -v, -- dump buffer to standard output\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr const char kAioWriteHelp[] =
    "\n"
    " asynchronously writes a range of bytes from the given offset source\n"
    " from multiple buffers\n"
    "\n"
    " Example:\n"
    " 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " The write is performed asynchronously and the aio_flush command must be\n"
    " used to ensure all outstanding aio requests have been completed.\n"
    " Note that due to its asynchronous nature, this command will be\n"
    " considered successful once the request is submitted, independently\n"
    " of potential I/O errors or pattern mismatches.\n"
    " -P, -- use different pattern to fill file\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -f, -- use Force Unit Access semantics\n"
    " -i, -- treat request as invalid, for exercising stats\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -u, -- with -z, allow unmapping\n"
    " -z, -- write zeroes using blk_aio_pwrite_zeroes\n"
    "\n";

constexpr const char kDiscardHelp[] =
    "\n"
    " discards a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file\n"
    "\n"
    " Discards a segment of the currently open file.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr const char kOpenHelp[] =
    "\n"
    " opens a new file in the requested mode\n"
    "\n"
    " Example:\n"
    " 'open -n -o driver=raw /tmp/data' - opens raw data file read-write, uncached\n"
    "\n"
    " Opens a file for subsequent use by all of the other qemu-io commands.\n"
    " -r, -- open file read-only\n"
    " -s, -- use snapshot file\n"
    " -C, -- use copy-on-read\n"
    " -n, -- disable host cache, short for -t none\n"
    " -U, -- force shared permissions\n"
    " -k, -- use kernel AIO implementation (Linux only, prefer use of -i)\n"
    " -i, -- use AIO mode (threads, native or io_uring)\n"
    " -t, -- use the given cache mode for the image\n"
    " -d, -- use the given discard mode for the image\n"
    " -o, -- options to be given to the block driver\n";

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* table = new std::vector<Command>{
      {.name = "abort",
       .alias = nullptr,
       .args = nullptr,
       .oneline = "simulate a program crash using abort(3)",
       .min_args = 0,
       .max_args = 0,
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = AbortCommand,
       .help = nullptr},
      {.name = "aio_flush",
       .alias = nullptr,
       .args = nullptr,
       .oneline = "completes all outstanding aio requests",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = AioFlushCommand,
       .help = nullptr},
      {.name = "aio_read",
       .alias = nullptr,
       .args = "[-Ciqv] [-P pattern] off len [len..]",
       .oneline = "asynchronously reads a number of bytes",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = false,
       .async = true,
       .run = AioReadCommand,
       .help = kAioReadHelp},
      {.name = "aio_write",
       .alias = nullptr,
       .args = "[-Cfiquz] [-P pattern] off len [len..]",
       .oneline = "asynchronously writes a number of bytes",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = true,
       .async = true,
       .run = AioWriteCommand,
       .help = kAioWriteHelp},
      {.name = "alloc",
       .alias = "a",
       .args = "offset [count]",
       .oneline = "checks if offset is allocated in the file",
       .min_args = 1,
       .max_args = 2,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .polls = true,
       .run = AllocCommand,
       .help = nullptr},
      {.name = "break",
       .alias = nullptr,
       .args = "event tag",
       .oneline = "sets a breakpoint on event and tags the stopped request as tag",
       .min_args = 2,
       .max_args = 2,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = BreakCommand,
       .help = nullptr},
      {.name = "close",
       .alias = "c",
       .args = nullptr,
       .oneline = "close the current open file",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = CloseCommand,
       .help = nullptr},
      {.name = "discard",
       .alias = "d",
       .args = "[-Cq] off len",
       .oneline = "discards a number of bytes at a specified offset",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = true,
       .async = false,
       .polls = true,
       .run = DiscardCommand,
       .help = kDiscardHelp},
      {.name = "flush",
       .alias = "f",
       .args = nullptr,
       .oneline = "flush all in-core file state to disk",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .polls = true,
       .run = FlushCommand,
       .help = nullptr},
      {.name = "help",
       .alias = "?",
       .args = "[command]",
       .oneline = "help for one or all commands",
       .min_args = 0,
       .max_args = 1,
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = HelpCommand,
       .help = nullptr},
      {.name = "info",
       .alias = "i",
       .args = nullptr,
       .oneline = "prints information about the current file",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = InfoCommand,
       .help = nullptr},
      {.name = "length",
       .alias = "l",
       .args = nullptr,
       .oneline = "gets the length of the current file",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = LengthCommand,
       .help = nullptr},
      {.name = "map",
       .alias = nullptr,
       .args = "",
       .oneline = "prints the allocated areas of a file",
       .min_args = 0,
       .max_args = 0,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .polls = true,
       .run = MapCommand,
       .help = nullptr},
      {.name = "open",
       .alias = "o",
       .args = "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
       .oneline = "open the file specified by path",
       .min_args = 1,
       .max_args = -1,
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = OpenCommand,
       .help = kOpenHelp},
      {.name = "quit",
       .alias = "q",
       .args = nullptr,
       .oneline = "exit the program",
       .min_args = 0,
       .max_args = -1,  // qemu-io ignores quit's arguments
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = QuitCommand,
       .help = nullptr},
      {.name = "read",
       .alias = "r",
       .args = "[-abCqv] [-P pattern [-s off] [-l len]] off len",
       .oneline = "reads a number of bytes at a specified offset",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .polls = true,
       .run = ReadCommand,
       .help = kReadHelp},
      {.name = "readv",
       .alias = nullptr,
       .args = "[-Cqv] [-P pattern] off len [len..]",
       .oneline = "reads a number of bytes at a specified offset",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .polls = true,
       .run = ReadvCommand,
       .help = kReadvHelp},
      {.name = "remove_break",
       .alias = nullptr,
       .args = "tag",
       .oneline = "remove a breakpoint by tag",
       .min_args = 1,
       .max_args = 1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = RemoveBreakCommand,
       .help = nullptr},
      {.name = "reopen",
       .alias = nullptr,
       .args = "[(-r|-w)] [-c cache] [-o options]",
       .oneline = "reopens an image with new options",
       .min_args = 0,
       .max_args = -1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = ReopenCommand,
       .help = nullptr},
      {.name = "resume",
       .alias = nullptr,
       .args = "tag",
       .oneline = "resumes the request tagged as tag",
       .min_args = 1,
       .max_args = 1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = ResumeCommand,
       .help = nullptr},
      {.name = "sigraise",
       .alias = nullptr,
       .args = "signal",
       .oneline = "raises a signal",
       .min_args = 1,
       .max_args = 1,
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = SigraiseCommand,
       .help = nullptr},
      {.name = "sleep",
       .alias = nullptr,
       .args = nullptr,
       .oneline = "waits for the given value in milliseconds",
       .min_args = 1,
       .max_args = 1,
       .needs_file = false,
       .needs_write = false,
       .async = false,
       .run = SleepCommand,
       .help = nullptr},
      {.name = "truncate",
       .alias = "t",
       .args = "[-m prealloc_mode] off",
       .oneline = "truncates the current file at the given offset",
       .min_args = 1,
       .max_args = 3,
       .needs_file = true,
       .needs_write = true,
       .async = false,
       .polls = true,
       .run = TruncateCommand,
       .help = nullptr},
      {.name = "wait_break",
       .alias = nullptr,
       .args = "tag",
       .oneline = "waits for the suspension of a request",
       .min_args = 1,
       .max_args = 1,
       .needs_file = true,
       .needs_write = false,
       .async = false,
       .run = WaitBreakCommand,
       .help = nullptr},
      {.name = "write",
       .alias = "w",
       .args = "[-bcCfnquz] [-P pattern | -s source_file] off len",
       .oneline = "writes a number of bytes at a specified offset",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = true,
       .async = false,
       .polls = true,
       .run = WriteCommand,
       .help = kWriteHelp},
      {.name = "writev",
       .alias = nullptr,
       .args = "[-Cfq] [-P pattern] off len [len..]",
       .oneline = "writes a number of bytes at a specified offset",
       .min_args = 2,
       .max_args = -1,
       .needs_file = true,
       .needs_write = true,
       .async = false,
       .polls = true,
       .run = WritevCommand,
       .help = kWritevHelp},
  };
  return *table;
}

}  // namespace strata::io
