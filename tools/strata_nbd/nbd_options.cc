// strata-nbd: qemu-nbd's command line (see nbd_options.h).
#include "tools/strata_nbd/nbd_options.h"

#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/common/program.h"

namespace strata::nbd_tool {

namespace {

enum LongOnly {
  kOptObject = 256,
  kOptCache,
  kOptAio,
  kOptDiscard,
  kOptDetectZeroes,
  kOptImageOpts,
  kOptTlsCreds,
  kOptTlsAuthz,
  kOptTlsHostname,
  kOptFork,
  kOptPidFile,
  kOptSelinuxLabel,
};

void PrintUsage() {
  const char* name = tools::ProgramName().c_str();
  std::printf(
      "Usage: %s [OPTIONS] FILE\n"
      "  or:  %s -L [OPTIONS]\n"
      "QEMU Disk Network Block Device Utility\n"
      "\n"
      "  -h, --help                display this help and exit\n"
      "  -V, --version             output version information and exit\n"
      "\n"
      "Connection properties:\n"
      "  -p, --port=PORT           port to listen on (default `10809')\n"
      "  -b, --bind=IFACE          interface to bind to (default `0.0.0.0')\n"
      "  -k, --socket=PATH         path to the unix socket\n"
      "                            (default '/var/lock/qemu-nbd-DEVICE')\n"
      "  -e, --shared=NUM          device can be shared by NUM clients (default '1')\n"
      "  -t, --persistent          don't exit on the last connection\n"
      "  -v, --verbose             display extra debugging information\n"
      "  -x, --export-name=NAME    expose export by name (default is empty string)\n"
      "  -D, --description=TEXT    export a human-readable description\n"
      "\n"
      "Exposing part of the image:\n"
      "  -o, --offset=OFFSET       offset into the image\n"
      "  -A, --allocation-depth    expose the allocation depth\n"
      "  -B, --bitmap=NAME         expose a persistent dirty bitmap\n"
      "\n"
      "General purpose options:\n"
      "  -L, --list                list exports available from another NBD server\n"
      "  --object type,id=ID,...   define an object such as 'secret' for providing\n"
      "                            passwords and/or encryption keys\n"
      "  --tls-creds=ID            use id of an earlier --object to provide TLS\n"
      "  --tls-authz=ID            use id of an earlier --object to provide\n"
      "                            authorization\n"
      "  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
      "                            specify tracing options\n"
      "  --fork                    fork off the server process and exit the parent\n"
      "                            once the server is running\n"
      "  --pid-file=PATH           store the server's process ID in the given file\n"
      "  --selinux-label=LABEL     set SELinux process label on listening socket\n"
      "\n"
      "Kernel NBD client support:\n"
      "  -c, --connect=DEV         connect FILE to the local NBD device DEV\n"
      "  -d, --disconnect          disconnect the specified device\n"
      "\n"
      "Block device options:\n"
      "  -f, --format=FORMAT       set image format (raw, qcow2, ...)\n"
      "  -r, --read-only           export read-only\n"
      "  -s, --snapshot            use FILE as an external snapshot, create a temporary\n"
      "                            file with backing_file=FILE, redirect the write to\n"
      "                            the temporary one\n"
      "  -l, --load-snapshot=SNAPSHOT_PARAM\n"
      "                            load an internal snapshot inside FILE and export it\n"
      "                            as an read-only device, SNAPSHOT_PARAM format is\n"
      "                            'snapshot.id=[ID],snapshot.name=[NAME]', or\n"
      "                            '[ID_OR_NAME]'\n"
      "  -n, --nocache             disable host cache\n"
      "      --cache=MODE          set cache mode used to access the disk image, the\n"
      "                            valid options are: 'none', 'writeback' (default),\n"
      "                            'writethrough', 'directsync' and 'unsafe'\n"
      "      --aio=MODE            set AIO mode (native, io_uring or threads)\n"
      "      --discard=MODE        set discard mode (ignore, unmap)\n"
      "      --detect-zeroes=MODE  set detect-zeroes mode (off, on, unmap)\n"
      "      --image-opts          treat FILE as a full set of image options\n"
      "\n"
      "See <https://qemu.org/contribute/report-a-bug> for how to report bugs.\n"
      "More information on the QEMU project at <https://qemu.org>.\n",
      name, name);
}

void PrintVersion() {
  std::printf(
      "%s 7.2.0 (strata)\n"
      "Written by Anthony Liguori.\n"
      "\n"
      "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"
      "This is free software; see the source for copying conditions.  There is NO\n"
      "warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.\n",
      tools::ProgramName().c_str());
}

void TryHelp() {
  std::fprintf(stderr, "Try `%s --help' for more information.\n",
               tools::ProgramName().c_str());
}

bool Fail(int* exit_code, const std::string& message) {
  tools::ErrorReport(message);
  *exit_code = 1;
  return false;
}

// One option; false (with *exit_code set) to stop.
bool Apply(int c, const char* arg, NbdOptions& o, int* exit_code) {
  switch (c) {
    case 'p': o.port = arg; o.port_given = true; return true;
    case 'b': o.bind = arg; o.bind_given = true; return true;
    case 'k': o.socket_path = arg; return true;
    case 'e': {
      int n = 0;
      if (!absl::SimpleAtoi(arg, &n) || n < 1) {
        return Fail(exit_code, absl::StrCat("Invalid shared device number '", arg, "'"));
      }
      o.shared = n;
      return true;
    }
    case 't': o.persistent = true; return true;
    case 'v': o.verbose = true; return true;
    case 'x':
      if (std::string(arg).size() > 4096) {
        return Fail(exit_code, absl::StrCat("export name '", arg, "' too long"));
      }
      o.export_name = arg;
      return true;
    case 'D':
      if (std::string(arg).size() > 4096) {
        return Fail(exit_code, absl::StrCat("export description '", arg, "' too long"));
      }
      o.description = arg;
      return true;
    case 'o': {
      errno = 0;
      char* end = nullptr;
      unsigned long long v = std::strtoull(arg, &end, 0);
      if (end == arg || *end != '\0' || errno == ERANGE) {
        return Fail(exit_code, absl::StrCat("Invalid offset '", arg, "'"));
      }
      if (arg[0] == '-' || v > static_cast<unsigned long long>(INT64_MAX)) {
        return Fail(exit_code,
                    "Parameter 'offset' expects a non-negative number below 2^64\n"
                    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                    "peta-\nand exabytes, respectively.");
      }
      o.offset = v;
      return true;
    }
    case 'A': o.allocation_depth = true; return true;
    case 'B': o.bitmaps.push_back(arg); return true;
    case 'L': o.list = true; return true;
    case kOptObject: o.objects.push_back(arg); return true;
    case kOptTlsCreds: o.tls_creds = arg; return true;
    case kOptTlsAuthz: o.tls_authz = arg; return true;
    case kOptTlsHostname: o.tls_hostname = arg; return true;
    case kOptFork: o.fork = true; return true;
    case kOptPidFile: o.pid_file = arg; return true;
    case kOptSelinuxLabel: o.selinux_label = arg; return true;
    case 'T': {
      std::string pattern = arg;
      if (pattern.rfind("enable=", 0) == 0) pattern = pattern.substr(7);
      // strata has no trace events: every pattern names none, as QEMU warns.
      if (pattern.find('=') == std::string::npos && pattern.find('*') == std::string::npos) {
        tools::WarnReport(absl::StrCat("trace event '", pattern, "' does not exist"));
      }
      return true;
    }
    case 'c': o.connect_device = arg; return true;
    case 'd': o.disconnect = true; return true;
    case 'f': o.format = arg; return true;
    case 'r': o.read_only = true; return true;
    case 's': o.snapshot = true; return true;
    case 'l': o.load_snapshot = arg; o.read_only = true; return true;
    case 'n': o.cache = "none"; o.cache_given = true; return true;
    case kOptCache: {
      static const char* const kModes[] = {"none", "off", "writeback", "writethrough",
                                           "directsync", "unsafe"};
      bool ok = false;
      for (const char* m : kModes) ok = ok || std::string(arg) == m;
      if (!ok) return Fail(exit_code, absl::StrCat("Invalid cache mode `", arg, "'"));
      o.cache = std::string(arg) == "off" ? "none" : arg;
      o.cache_given = true;
      return true;
    }
    case kOptAio: {
      const std::string v = arg;
      if (v != "native" && v != "io_uring" && v != "threads") {
        return Fail(exit_code, absl::StrCat("Invalid aio mode '", arg, "'"));
      }
      o.aio = v;
      return true;
    }
    case kOptDiscard: {
      const std::string v = arg;
      if (v == "ignore" || v == "off") {
        o.discard = "ignore";
      } else if (v == "unmap" || v == "on") {
        o.discard = "unmap";
      } else {
        return Fail(exit_code, absl::StrCat("Invalid discard mode `", arg, "'"));
      }
      o.discard_given = true;
      return true;
    }
    case kOptDetectZeroes: {
      const std::string v = arg;
      if (v != "off" && v != "on" && v != "unmap") {
        return Fail(exit_code, absl::StrCat("Failed to parse detect_zeroes mode: invalid "
                                            "parameter value: ",
                                            arg));
      }
      o.detect_zeroes = v;
      return true;
    }
    case kOptImageOpts: o.image_opts = true; return true;
    default:
      std::fprintf(stderr, "%s: ", tools::ProgramName().c_str());
      TryHelp();
      *exit_code = 1;
      return false;
  }
}

}  // namespace

std::optional<NbdOptions> ParseNbdOptions(int argc, char** argv, int* exit_code) {
  static const struct option kLong[] = {
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {"bind", required_argument, nullptr, 'b'},
      {"port", required_argument, nullptr, 'p'},
      {"socket", required_argument, nullptr, 'k'},
      {"offset", required_argument, nullptr, 'o'},
      {"read-only", no_argument, nullptr, 'r'},
      {"allocation-depth", no_argument, nullptr, 'A'},
      {"bitmap", required_argument, nullptr, 'B'},
      {"connect", required_argument, nullptr, 'c'},
      {"disconnect", no_argument, nullptr, 'd'},
      {"list", no_argument, nullptr, 'L'},
      {"snapshot", no_argument, nullptr, 's'},
      {"load-snapshot", required_argument, nullptr, 'l'},
      {"nocache", no_argument, nullptr, 'n'},
      {"cache", required_argument, nullptr, kOptCache},
      {"aio", required_argument, nullptr, kOptAio},
      {"discard", required_argument, nullptr, kOptDiscard},
      {"detect-zeroes", required_argument, nullptr, kOptDetectZeroes},
      {"shared", required_argument, nullptr, 'e'},
      {"format", required_argument, nullptr, 'f'},
      {"persistent", no_argument, nullptr, 't'},
      {"verbose", no_argument, nullptr, 'v'},
      {"object", required_argument, nullptr, kOptObject},
      {"export-name", required_argument, nullptr, 'x'},
      {"description", required_argument, nullptr, 'D'},
      {"tls-creds", required_argument, nullptr, kOptTlsCreds},
      {"tls-hostname", required_argument, nullptr, kOptTlsHostname},
      {"tls-authz", required_argument, nullptr, kOptTlsAuthz},
      {"image-opts", no_argument, nullptr, kOptImageOpts},
      {"trace", required_argument, nullptr, 'T'},
      {"fork", no_argument, nullptr, kOptFork},
      {"pid-file", required_argument, nullptr, kOptPidFile},
      {"selinux-label", required_argument, nullptr, kOptSelinuxLabel},
      {nullptr, 0, nullptr, 0},
  };
  NbdOptions o;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "vc:dnp:b:k:e:tx:D:o:AB:f:rsl:LhVT:", kLong,
                          nullptr)) != -1) {
    if (c == 'h') {
      PrintUsage();
      *exit_code = 0;
      return std::nullopt;
    }
    if (c == 'V') {
      PrintVersion();
      *exit_code = 0;
      return std::nullopt;
    }
    if (c == '?') {
      std::fprintf(stderr, "%s: ", tools::ProgramName().c_str());
      TryHelp();
      *exit_code = 1;
      return std::nullopt;
    }
    if (!Apply(c, optarg, o, exit_code)) return std::nullopt;
  }
  const int rest = argc - optind;
  if (o.list) {
    if (rest != 0) {
      Fail(exit_code, "List mode is incompatible with a file name");
      return std::nullopt;
    }
    if (o.export_name || !o.description.empty() || o.offset != 0 ||
        !o.connect_device.empty() || o.disconnect || !o.format.empty() ||
        !o.load_snapshot.empty() || !o.bitmaps.empty() || o.allocation_depth ||
        !o.aio.empty() || o.discard_given || o.cache_given) {
      Fail(exit_code, "List mode is incompatible with per-device settings");
      return std::nullopt;
    }
    if (o.fork) {
      Fail(exit_code, "List mode is incompatible with forking");
      return std::nullopt;
    }
  } else if (rest != 1) {
    tools::ErrorReport("Invalid number of arguments");
    TryHelp();
    *exit_code = 1;
    return std::nullopt;
  } else {
    o.filename = argv[optind];
  }
  if (!o.tls_authz.empty() && o.tls_creds.empty()) {
    Fail(exit_code, "--tls-authz is not permitted without --tls-creds");
    return std::nullopt;
  }
  if (!o.selinux_label.empty()) {
    Fail(exit_code, o.socket_path.empty()
                        ? "--selinux-label is not permitted without --socket"
                        : "SELinux support not enabled in this binary");
    return std::nullopt;
  }
  if (o.detect_zeroes == "unmap" && o.discard != "unmap") {
    Fail(exit_code,
         "setting detect-zeroes to unmap is not allowed without setting discard operation "
         "to unmap");
    return std::nullopt;
  }
  return o;
}

}  // namespace strata::nbd_tool
