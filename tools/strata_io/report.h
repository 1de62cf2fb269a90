// strata-io: the exact output lines of qemu-io (I/O reports, hex dumps).
#ifndef STRATA_TOOLS_STRATA_IO_REPORT_H_
#define STRATA_TOOLS_STRATA_IO_REPORT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace strata::io {

// Prints the two report lines of a finished request:
//   "<verb> <total>/<count> bytes at offset <offset>"
//   "<size>, <ops> ops; <time> (<rate>/sec and <ops/s> ops/sec)"
// or, with machine_readable (-C), "<total>,<ops>,<H:MM:SS.ss>,<bytes/s>,<ops/s>".
void PrintReport(const char* verb, absl::Duration elapsed, int64_t offset, int64_t count,
                 int64_t total, int ops, bool machine_readable);

// qemu-io -v: "%08x:  " + 16 hex bytes + " " + 16 printable chars per line.
void DumpBuffer(const uint8_t* data, int64_t offset, int64_t len);

}  // namespace strata::io

#endif  // STRATA_TOOLS_STRATA_IO_REPORT_H_
