// strata nbd: connecting to a server (blocking connect; the stream is nonblocking after).
// Errors carry QEMU's wording: "Failed to connect to '<where>': <reason>".
#ifndef STRATA_NBD_CONNECT_H_
#define STRATA_NBD_CONNECT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nbd/stream.h"

namespace strata::nbd {

absl::StatusOr<std::unique_ptr<Stream>> ConnectUnix(const std::string& path);
// Tries every address `host` resolves to; `port` is a number or service name.
absl::StatusOr<std::unique_ptr<Stream>> ConnectTcp(const std::string& host,
                                                   const std::string& port);

}  // namespace strata::nbd

#endif  // STRATA_NBD_CONNECT_H_
