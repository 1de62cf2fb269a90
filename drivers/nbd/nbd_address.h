// strata nbd driver: where the server is, from the forms QEMU accepts, and the filename
// QEMU shows for it.
//
//   nbd://HOST[:PORT]/[EXPORT]           nbd+tcp://... (the same)
//   nbd+unix:///[EXPORT]?socket=PATH
//   nbd:HOST:PORT[:exportname=EXPORT]    nbd:unix:PATH[:exportname=EXPORT]   (legacy)
//   server.type=inet|unix, server.host, server.port, server.path, export   (options)
//   host, port, path                                                        (legacy keys)
//
// URL parsing is hand-written: the grammar is the small part of RFC 3986 QEMU's own parser
// accepts (scheme, authority with an optional [IPv6] host, path, one query parameter),
// and QEMU's refusals ("No valid URL specified") must come out the same; no library here
// parses URLs to those rules.
#ifndef STRATA_DRIVERS_NBD_NBD_ADDRESS_H_
#define STRATA_DRIVERS_NBD_NBD_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/blockdev_options.pb.h"

namespace strata::nbd {

struct NbdAddress {
  std::string unix_path;  // set: a Unix socket; else TCP to host:port
  std::string host;
  std::string port;
  std::string export_name;
};

// Parses a pseudo-filename (any of the URL or legacy forms above).
absl::StatusOr<NbdAddress> ParseNbdFilename(absl::string_view filename);

// The address the driver options give (a filename among them wins, as in QEMU), with
// QEMU's errors for missing parts ("NBD server address missing", "Parameter 'port' is
// missing").
absl::StatusOr<NbdAddress> NbdAddressFromOptions(const proto::NbdOptions& options);

// The filename QEMU shows for the node ("nbd://HOST:PORT/EXPORT",
// "nbd+unix:///EXPORT?socket=PATH").
std::string DisplayName(const NbdAddress& address);

}  // namespace strata::nbd

#endif  // STRATA_DRIVERS_NBD_NBD_ADDRESS_H_
