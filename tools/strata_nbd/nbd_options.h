// strata-nbd: the command line of qemu-nbd 7.2, parsed and checked in qemu-nbd's order.
#ifndef STRATA_TOOLS_STRATA_NBD_NBD_OPTIONS_H_
#define STRATA_TOOLS_STRATA_NBD_NBD_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace strata::nbd_tool {

struct NbdOptions {
  // Connection
  std::string port = "10809";
  bool port_given = false;
  std::string bind = "0.0.0.0";
  bool bind_given = false;
  std::string socket_path;  // -k
  int shared = 1;           // -e
  bool persistent = false;  // -t
  bool verbose = false;     // -v
  std::optional<std::string> export_name;  // -x
  std::string description;                 // -D
  // Exposing part of the image
  uint64_t offset = 0;  // -o
  bool allocation_depth = false;  // -A
  std::vector<std::string> bitmaps;  // -B
  // General
  bool list = false;  // -L
  std::vector<std::string> objects;  // --object, as given
  std::string tls_creds;
  std::string tls_authz;
  std::string tls_hostname;
  bool fork = false;
  std::string pid_file;
  std::string selinux_label;
  // Kernel client
  std::string connect_device;  // -c
  bool disconnect = false;     // -d
  // Block device
  std::string format;  // -f
  bool read_only = false;
  bool snapshot = false;  // -s
  std::string load_snapshot;  // -l
  std::string cache = "writeback";
  bool cache_given = false;
  std::string aio;
  std::string discard = "ignore";
  bool discard_given = false;
  std::string detect_zeroes = "off";
  bool image_opts = false;
  std::string filename;  // the one argument
};

// Parses argv. On --help/--version prints and sets *exit_code = 0; on an error prints
// qemu-nbd's message and sets *exit_code = 1. Returns nullopt in both cases.
std::optional<NbdOptions> ParseNbdOptions(int argc, char** argv, int* exit_code);

}  // namespace strata::nbd_tool

#endif  // STRATA_TOOLS_STRATA_NBD_NBD_OPTIONS_H_
