// strata nbd: TLS with GnuTLS (see tls.h).
//
// Why GnuTLS and not OpenSSL: QEMU uses GnuTLS, so its credential files, priority strings
// and PSK key files work unchanged with ours; Debian ships it (libgnutls28-dev).
#include "nbd/tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "aio/file_op.h"
#include "block/status.h"

namespace strata::nbd {

namespace {

absl::Status TlsError(absl::string_view what, int rc) {
  return ErrnoError(EPROTO, absl::StrCat(what, ": ", gnutls_strerror(rc)));
}

absl::Status CheckReadable(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    const int e = errno;
    return ErrnoError(e, absl::StrCat("Unable to access credentials ", path, ": ", StrError(e)));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

// GnuTLS transport callbacks over the descriptor stored with gnutls_transport_set_int.
ssize_t Push(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(ptr));
  return ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}
ssize_t Pull(gnutls_transport_ptr_t ptr, void* data, size_t size) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(ptr));
  return ::recv(fd, data, size, MSG_DONTWAIT);
}

// The loaded credentials of one --object (shared by every session made from it).
class Credentials {
 public:
  ~Credentials() {
    if (x509_ != nullptr) gnutls_certificate_free_credentials(x509_);
    if (psk_server_ != nullptr) gnutls_psk_free_server_credentials(psk_server_);
    if (psk_client_ != nullptr) gnutls_psk_free_client_credentials(psk_client_);
  }

  static absl::StatusOr<std::shared_ptr<Credentials>> Load(const TlsCredsOptions& o) {
    auto c = std::make_shared<Credentials>();
    c->options_ = o;
    const std::string dir = o.dir.empty() ? "." : o.dir;
    if (o.kind == TlsCredsOptions::Kind::kPsk) {
      const std::string keys = dir + "/keys.psk";
      STRATA_RETURN_IF_ERROR(CheckReadable(keys));
      if (o.server) {
        gnutls_psk_allocate_server_credentials(&c->psk_server_);
        int rc = gnutls_psk_set_server_credentials_file(c->psk_server_, keys.c_str());
        if (rc < 0) return TlsError(absl::StrCat("Cannot set PSK server credentials from ", keys), rc);
      } else {
        std::ifstream in(keys);
        std::string line, key;
        bool found = false;
        while (std::getline(in, line)) {
          if (absl::StartsWith(line, o.username + ":")) {
            key = line.substr(o.username.size() + 1);
            found = true;
            break;
          }
        }
        if (!found) {
          return ErrnoError(ENOENT, absl::StrCat("Username ", o.username, " not found in ", keys));
        }
        gnutls_psk_allocate_client_credentials(&c->psk_client_);
        gnutls_datum_t datum = {reinterpret_cast<unsigned char*>(key.data()),
                                static_cast<unsigned>(key.size())};
        int rc = gnutls_psk_set_client_credentials(c->psk_client_, o.username.c_str(), &datum,
                                                   GNUTLS_PSK_KEY_HEX);
        if (rc < 0) return TlsError("Cannot set PSK client credentials", rc);
      }
      return c;
    }
    gnutls_certificate_allocate_credentials(&c->x509_);
    const std::string ca = dir + "/ca-cert.pem";
    STRATA_RETURN_IF_ERROR(CheckReadable(ca));
    int rc = gnutls_certificate_set_x509_trust_file(c->x509_, ca.c_str(), GNUTLS_X509_FMT_PEM);
    if (rc < 0) return TlsError(absl::StrCat("Cannot load CA certificate ", ca), rc);
    const std::string crl = dir + "/ca-crl.pem";
    if (Exists(crl)) {
      rc = gnutls_certificate_set_x509_crl_file(c->x509_, crl.c_str(), GNUTLS_X509_FMT_PEM);
      if (rc < 0) return TlsError(absl::StrCat("Cannot load CRL ", crl), rc);
    }
    const std::string prefix = o.server ? "server" : "client";
    const std::string cert = absl::StrCat(dir, "/", prefix, "-cert.pem");
    const std::string key = absl::StrCat(dir, "/", prefix, "-key.pem");
    if (o.server || Exists(cert) || Exists(key)) {
      STRATA_RETURN_IF_ERROR(CheckReadable(cert));
      STRATA_RETURN_IF_ERROR(CheckReadable(key));
      rc = gnutls_certificate_set_x509_key_file(c->x509_, cert.c_str(), key.c_str(),
                                                GNUTLS_X509_FMT_PEM);
      if (rc < 0) {
        return TlsError(absl::StrCat("Cannot load certificate '", cert, "' & key '", key, "'"),
                        rc);
      }
    }
    if (o.server) gnutls_certificate_set_known_dh_params(c->x509_, GNUTLS_SEC_PARAM_MEDIUM);
    return c;
  }

  // A session for one connection on `fd`.
  absl::StatusOr<gnutls_session_t> NewSession(int fd, const std::string& hostname) const {
    gnutls_session_t s = nullptr;
    int rc = gnutls_init(&s, (options_.server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
    if (rc < 0) return TlsError("Cannot initialize TLS session", rc);
    std::string priority = options_.priority.empty() ? "NORMAL" : options_.priority;
    if (options_.kind == TlsCredsOptions::Kind::kPsk) priority += ":+ECDHE-PSK:+DHE-PSK:+PSK";
    const char* error_at = nullptr;
    rc = gnutls_priority_set_direct(s, priority.c_str(), &error_at);
    if (rc >= 0) {
      if (x509_ != nullptr) {
        rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, x509_);
        if (options_.server && options_.verify_peer) {
          gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        }
      } else if (psk_server_ != nullptr) {
        rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, psk_server_);
      } else {
        rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, psk_client_);
      }
    }
    if (rc < 0) {
      gnutls_deinit(s);
      return TlsError("Cannot set up TLS session", rc);
    }
    if (!options_.server && !hostname.empty()) {
      gnutls_server_name_set(s, GNUTLS_NAME_DNS, hostname.data(), hostname.size());
    }
    // Our own transport functions: MSG_NOSIGNAL (a closed peer must not raise SIGPIPE in
    // an embedder's process) and MSG_DONTWAIT (the socket may be shared with waits).
    gnutls_transport_set_int(s, fd);
    gnutls_transport_set_push_function(s, &Push);
    gnutls_transport_set_pull_function(s, &Pull);
    return s;
  }

  const TlsCredsOptions& options() const { return options_; }

 private:
  TlsCredsOptions options_;
  gnutls_certificate_credentials_t x509_ = nullptr;
  gnutls_psk_server_credentials_t psk_server_ = nullptr;
  gnutls_psk_client_credentials_t psk_client_ = nullptr;
};

// Waits until the socket is ready for what the session last wanted.
aio::FileOpAwaiter WaitFor(gnutls_session_t s, int fd) {
  return aio::Poll(fd, gnutls_record_get_direction(s) ? POLLOUT : POLLIN);
}

bool Retry(int rc) { return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED; }

// The TLS handshake on `session` over `fd`, parking while the socket is not ready.
aio::Task<absl::Status> Handshake(gnutls_session_t session, int fd) {
  for (;;) {
    int rc = gnutls_handshake(session);
    if (rc == 0) co_return absl::OkStatus();
    if (Retry(rc)) {
      int64_t events = co_await WaitFor(session, fd);
      if (events < 0) co_return ErrnoError(static_cast<int>(-events));
      continue;
    }
    if (!gnutls_error_is_fatal(rc)) continue;
    co_return TlsError("TLS handshake failed", rc);
  }
}

// Owns a session until it is handed to a stream.
struct SessionOwner {
  gnutls_session_t session;
  ~SessionOwner() {
    if (session != nullptr) gnutls_deinit(session);
  }
  gnutls_session_t release() { return std::exchange(session, nullptr); }
};

// TLS records over a socket stream (which it owns; the socket closes after the session).
class TlsStream : public Stream {
 public:
  TlsStream(std::unique_ptr<Stream> plain, gnutls_session_t session)
      : plain_(std::move(plain)), session_(session), fd_(plain_->fd()) {}
  ~TlsStream() override {
    gnutls_bye(session_, GNUTLS_SHUT_WR);  // best effort: nonblocking, never waits
    gnutls_deinit(session_);
  }

  aio::Task<absl::Status> ReadFully(void* buf, size_t n) override {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      ssize_t r = gnutls_record_recv(session_, p, n);
      if (r > 0) {
        p += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      if (r == 0) co_return absl::UnavailableError("Connection closed");
      if (r == GNUTLS_E_PREMATURE_TERMINATION) {
        // The peer went away without closing the session (still "unavailable": the
        // server treats it as a client that left); QEMU's words for clients.
        co_return absl::UnavailableError(
            "Cannot read from TLS channel: Software caused connection abort");
      }
      if (Retry(static_cast<int>(r))) {
        // Wait for input: the session's direction may be the writer's, not ours.
        int64_t events = co_await aio::Poll(fd_, POLLIN);
        if (events < 0) co_return ErrnoError(static_cast<int>(-events));
        continue;
      }
      if (!gnutls_error_is_fatal(static_cast<int>(r))) continue;  // e.g. a rehandshake alert
      co_return TlsError("Cannot read from TLS channel", static_cast<int>(r));
    }
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> WriteFully(absl::Span<const struct iovec> iov) override {
    gnutls_record_cork(session_);
    for (const struct iovec& piece : iov) {
      const auto* p = static_cast<const uint8_t*>(piece.iov_base);
      size_t left = piece.iov_len;
      while (left > 0) {
        ssize_t r = gnutls_record_send(session_, p, left);
        if (r > 0) {
          p += r;
          left -= static_cast<size_t>(r);
          continue;
        }
        if (Retry(static_cast<int>(r))) {
          int64_t events = co_await aio::Poll(fd_, POLLOUT);
          if (events < 0) co_return ErrnoError(static_cast<int>(-events));
          continue;
        }
        co_return TlsError("Cannot write to TLS channel", static_cast<int>(r));
      }
    }
    for (;;) {
      int rc = gnutls_record_uncork(session_, 0);
      if (rc >= 0) co_return absl::OkStatus();
      if (Retry(rc)) {
        int64_t events = co_await aio::Poll(fd_, POLLOUT);
        if (events < 0) co_return ErrnoError(static_cast<int>(-events));
        continue;
      }
      co_return TlsError("Cannot write to TLS channel", rc);
    }
  }

  void Shutdown() override { plain_->Shutdown(); }
  int fd() const override { return fd_; }
  gnutls_session_t session() const { return session_; }

 private:
  std::unique_ptr<Stream> plain_;
  gnutls_session_t session_;
  const int fd_;
};

// The distinguished name of the peer's first certificate, or empty.
std::string PeerDistinguishedName(gnutls_session_t s) {
  unsigned count = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(s, &count);
  if (certs == nullptr || count == 0) return {};
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return {};
  std::string dn;
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
    size_t size = 0;
    gnutls_x509_crt_get_dn(crt, nullptr, &size);
    dn.resize(size);
    if (gnutls_x509_crt_get_dn(crt, dn.data(), &size) >= 0) {
      dn.resize(size);
    } else {
      dn.clear();
    }
  }
  gnutls_x509_crt_deinit(crt);
  return dn;
}

absl::Status VerifyPeer(gnutls_session_t s, const Credentials& creds,
                        const std::string& hostname) {
  if (creds.options().kind != TlsCredsOptions::Kind::kX509 || !creds.options().verify_peer) {
    return absl::OkStatus();
  }
  unsigned status = 0;
  int rc = creds.options().server
               ? gnutls_certificate_verify_peers2(s, &status)
               : gnutls_certificate_verify_peers3(s, hostname.empty() ? nullptr : hostname.c_str(),
                                                  &status);
  if (rc < 0) return TlsError("Cannot verify peer certificate", rc);
  if (status != 0) {
    gnutls_datum_t text = {};
    std::string why = "The certificate is not trusted";
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
      why = std::string(reinterpret_cast<char*>(text.data), text.size);
      gnutls_free(text.data);
    }
    return ErrnoError(EACCES, why);
  }
  return absl::OkStatus();
}

class ServerCredentials : public TlsServerCredentials {
 public:
  ServerCredentials(std::shared_ptr<Credentials> creds, TlsAuthorizer authorize)
      : creds_(std::move(creds)), authorize_(std::move(authorize)) {}

  aio::Task<absl::Status> Accept(std::unique_ptr<Stream>* stream) override {
    const int fd = (*stream)->fd();
    absl::StatusOr<gnutls_session_t> made = creds_->NewSession(fd, "");
    if (!made.ok()) co_return made.status();
    SessionOwner session{*made};
    STRATA_CO_RETURN_IF_ERROR(co_await Handshake(session.session, fd));
    STRATA_CO_RETURN_IF_ERROR(VerifyPeer(session.session, *creds_, ""));
    if (authorize_) {
      std::string identity;
      if (creds_->options().kind == TlsCredsOptions::Kind::kPsk) {
        const char* user = gnutls_psk_server_get_username(session.session);
        if (user != nullptr) identity = user;
      } else {
        identity = PeerDistinguishedName(session.session);
      }
      if (!authorize_(identity)) {
        co_return ErrnoError(EACCES, absl::StrCat("TLS x509 authz check for ", identity,
                                                  " is denied"));
      }
    }
    *stream = std::make_unique<TlsStream>(std::move(*stream), session.release());
    co_return absl::OkStatus();
  }

 private:
  std::shared_ptr<Credentials> creds_;
  TlsAuthorizer authorize_;
};

class ClientCredentials : public TlsClientCredentials {
 public:
  explicit ClientCredentials(std::shared_ptr<Credentials> creds) : creds_(std::move(creds)) {}

  aio::Task<absl::Status> Connect(std::unique_ptr<Stream>* stream,
                                  const std::string& hostname) override {
    const int fd = (*stream)->fd();
    absl::StatusOr<gnutls_session_t> made = creds_->NewSession(fd, hostname);
    if (!made.ok()) co_return made.status();
    SessionOwner session{*made};
    STRATA_CO_RETURN_IF_ERROR(co_await Handshake(session.session, fd));
    STRATA_CO_RETURN_IF_ERROR(VerifyPeer(session.session, *creds_, hostname));
    *stream = std::make_unique<TlsStream>(std::move(*stream), session.release());
    co_return absl::OkStatus();
  }

 private:
  std::shared_ptr<Credentials> creds_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<TlsServerCredentials>> NewTlsServerCredentials(
    const TlsCredsOptions& options, TlsAuthorizer authorize) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<Credentials> creds, Credentials::Load(options));
  return std::make_shared<ServerCredentials>(std::move(creds), std::move(authorize));
}

absl::StatusOr<std::shared_ptr<TlsClientCredentials>> NewTlsClientCredentials(
    const TlsCredsOptions& options) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<Credentials> creds, Credentials::Load(options));
  return std::make_shared<ClientCredentials>(std::move(creds));
}

}  // namespace strata::nbd
