// strata nbd driver: server addresses (see nbd_address.h).
#include "drivers/nbd/nbd_address.h"

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "block/status.h"

namespace strata::nbd {

namespace {

constexpr char kDefaultPort[] = "10809";

absl::Status BadUrl() { return ErrnoError(EINVAL, "No valid URL specified"); }
absl::Status AddressMissing() { return ErrnoError(EINVAL, "NBD server address missing"); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// %XX escapes decoded; a malformed escape stays as written (QEMU's parser does the same).
std::string PercentDecode(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() &&
        HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// nbd[+tcp|+unix]://[user@]host[:port]/export[?query][#fragment]
absl::StatusOr<NbdAddress> ParseUrl(absl::string_view url) {
  const size_t colon = url.find(':');
  const absl::string_view scheme = url.substr(0, colon);
  bool is_unix = false;
  if (scheme == "nbd+unix") {
    is_unix = true;
  } else if (scheme != "nbd" && scheme != "nbd+tcp") {
    return BadUrl();
  }
  absl::string_view rest = url.substr(colon + 1);
  if (!absl::ConsumePrefix(&rest, "//")) return BadUrl();
  if (size_t hash = rest.find('#'); hash != absl::string_view::npos) rest = rest.substr(0, hash);
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash);
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  NbdAddress a;
  std::string host, port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return BadUrl();
    host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return BadUrl();
      port = std::string(after.substr(1));
    }
  } else {
    const size_t pc = authority.find(':');
    host = PercentDecode(authority.substr(0, pc));
    if (pc != absl::string_view::npos) port = std::string(authority.substr(pc + 1));
  }
  if (!port.empty()) {
    uint32_t number;
    if (!absl::SimpleAtoi(port, &number) || number > 65535) return BadUrl();
  }
  // The export: the path without its leading '/'.
  if (!path.empty()) a.export_name = PercentDecode(path.substr(1));
  std::vector<std::string> params;
  if (!query.empty()) params = absl::StrSplit(query, absl::ByAnyChar("&;"), absl::SkipEmpty());
  if (params.size() > 1 || (is_unix && params.empty()) || (!is_unix && !params.empty())) {
    return BadUrl();
  }
  if (is_unix) {
    if (!host.empty() || !port.empty()) return BadUrl();
    absl::string_view p = params[0];
    if (!absl::ConsumePrefix(&p, "socket=") && p != "socket") return BadUrl();
    a.unix_path = PercentDecode(p == "socket" ? "" : p);
    return a;
  }
  if (host.empty()) return BadUrl();
  a.host = host;
  a.port = port.empty() ? kDefaultPort : port;
  return a;
}

// nbd:unix:PATH[:exportname=E] or nbd:HOST:PORT[:exportname=E].
absl::StatusOr<NbdAddress> ParseLegacy(absl::string_view file) {
  NbdAddress a;
  absl::string_view spec = file;
  constexpr absl::string_view kExport = ":exportname=";
  if (size_t e = file.find(kExport); e != absl::string_view::npos) {
    if (e + kExport.size() == file.size()) return AddressMissing();
    a.export_name = std::string(file.substr(e + kExport.size()));
    spec = file.substr(0, e);
  }
  if (spec.empty()) return AddressMissing();
  if (absl::ConsumePrefix(&spec, "unix:")) {
    a.unix_path = std::string(spec);
    return a;
  }
  // HOST:PORT, HOST being [IPv6] or anything up to the last ':'.
  if (absl::StartsWith(spec, "[")) {
    const size_t close = spec.find(']');
    if (close == absl::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      return ErrnoError(EINVAL, absl::StrCat("error parsing IPv6 address '", spec, "'"));
    }
    a.host = std::string(spec.substr(1, close - 1));
    a.port = std::string(spec.substr(close + 2));
    return a;
  }
  const size_t colon = spec.find(':');
  if (colon == absl::string_view::npos) {
    return ErrnoError(EINVAL, absl::StrCat("error parsing address '", spec, "'"));
  }
  a.host = std::string(spec.substr(0, colon));
  a.port = std::string(spec.substr(colon + 1));
  return a;
}

}  // namespace

absl::StatusOr<NbdAddress> ParseNbdFilename(absl::string_view filename) {
  if (absl::StrContains(filename, "://")) return ParseUrl(filename);
  absl::string_view rest = filename;
  if (!absl::ConsumePrefix(&rest, "nbd:")) return BadUrl();
  return ParseLegacy(rest);
}

absl::StatusOr<NbdAddress> NbdAddressFromOptions(const proto::NbdOptions& options) {
  if (!options.x_filename().empty()) {
    return ParseNbdFilename(options.x_filename());
  }
  const bool legacy =
      !options.host().empty() || !options.port().empty() || !options.path().empty();
  NbdAddress a;
  a.export_name = options.export_();
  if (options.has_server()) {
    if (legacy) {
      return ErrnoError(EINVAL, "Cannot use 'server' and path/host/port at the same time");
    }
    const proto::NbdServerAddress& s = options.server();
    if (s.type().empty()) return ErrnoError(EINVAL, "Parameter 'type' is missing");
    if (s.type() == "unix") {
      if (s.path().empty()) return ErrnoError(EINVAL, "Parameter 'path' is missing");
      a.unix_path = s.path();
    } else if (s.type() == "inet") {
      if (s.host().empty()) return ErrnoError(EINVAL, "Parameter 'host' is missing");
      if (s.port().empty()) return ErrnoError(EINVAL, "Parameter 'port' is missing");
      a.host = s.host();
      a.port = s.port();
    } else if (s.type() == "fd" || s.type() == "vsock") {
      return ErrnoError(ENOTSUP, absl::StrCat("NBD server address type '", s.type(),
                                              "' is not supported by strata"));
    } else {
      return ErrnoError(EINVAL,
                        absl::StrCat("Parameter 'type' does not accept value '", s.type(), "'"));
    }
    return a;
  }
  if (!options.path().empty()) {
    if (!options.host().empty()) {
      return ErrnoError(EINVAL, "path and host may not be used at the same time");
    }
    a.unix_path = options.path();
    return a;
  }
  if (options.host().empty()) return AddressMissing();
  a.host = options.host();
  a.port = options.port().empty() ? kDefaultPort : options.port();
  return a;
}

std::string DisplayName(const NbdAddress& a) {
  if (!a.unix_path.empty() || a.host.empty()) {
    if (a.export_name.empty()) return absl::StrCat("nbd+unix://?socket=", a.unix_path);
    return absl::StrCat("nbd+unix:///", a.export_name, "?socket=", a.unix_path);
  }
  if (a.export_name.empty()) return absl::StrCat("nbd://", a.host, ":", a.port);
  return absl::StrCat("nbd://", a.host, ":", a.port, "/", a.export_name);
}

}  // namespace strata::nbd
