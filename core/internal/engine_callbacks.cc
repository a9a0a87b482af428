// OpenSSL's callbacks into the engine. Per-SSL ones (BIO, verify, info,
// message) are set by each connection; context-wide ones by
// InstallEngineCallbacks on every SecureContext. All find their connection
// with Impl::From(ssl) (SSL_get_app_data) and leave other SSLs alone.
//
// OpenSSL re-invokes a callback that suspended (returned "retry") from its
// start, so each one is idempotent: it raises its event once and otherwise
// reads the answer prepared by the application.
#include <openssl/ocsp.h>
#include <openssl/rand.h>

#include <exception>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/openssl_util.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;
using internal::OpenSslPtr;

namespace {

// ---- BIO over the engine's buffers ----

int BioRead(BIO* bio, char* out, int len) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self->input_.empty() || !self->MayRead()) {
    if (self->input_.empty() && self->transport_eof_ && !self->read_stalled_) return 0;
    BIO_set_retry_read(bio);
    return -1;
  }
  size_t n = std::min(self->input_.size(), static_cast<size_t>(len));
  std::memcpy(out, self->input_.data(), n);
  self->input_.Consume(n);
  return static_cast<int>(n);
}

int BioWrite(BIO* bio, const char* in, int len) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  // Always accepted: what may enter is bounded by EncryptPending (plaintext)
  // and by the handshake itself (a flight).
  self->output_.Append(reinterpret_cast<const uint8_t*>(in), static_cast<size_t>(len));
  return len;
}

long BioCtrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return self->transport_eof_ && self->input_.empty();
    case BIO_CTRL_PENDING: return static_cast<long>(self->input_.size());
    case BIO_CTRL_WPENDING: return static_cast<long>(self->output_.size());
    default: return 0;
  }
}

// The host name in a ClientHello's server_name extension (RFC 6066 §3).
std::string ParseServerName(const unsigned char* p, size_t len) {
  if (len < 2 || ((size_t{p[0]} << 8) | p[1]) + 2 != len) return "";
  for (size_t at = 2; at + 3 <= len;) {
    size_t name_len = (size_t{p[at + 1]} << 8) | p[at + 2];
    if (at + 3 + name_len > len) return "";
    if (p[at] == TLSEXT_NAMETYPE_host_name) return std::string(reinterpret_cast<const char*>(p + at + 3), name_len);
    at += 3 + name_len;
  }
  return "";
}

// Whether the ClientHello offers TLS 1.3 and we may accept it: then the
// legacy session id is not a resumption request (RFC 8446 §4.1.2).
bool WillNegotiateTls13(SSL* ssl) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) != 1 || len < 1) return false;
  long max = SSL_get_max_proto_version(ssl);
  if (max != 0 && max < TLS1_3_VERSION) return false;
  for (size_t at = 1; at + 1 < len && at <= p[0]; at += 2) {
    if (p[at] == 0x03 && p[at + 1] == 0x04) return true;
  }
  return false;
}

// ---- Context-wide callbacks ----

int ClientHelloCallback(SSL* ssl, int* alert, void* /*arg*/) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr) return SSL_CLIENT_HELLO_SUCCESS;
  if (self->handshake_done_once_) {
    // A renegotiation. Ours (HelloRequest) is free; the client's count
    // against Node's CLIENT_RENEG_LIMIT per CLIENT_RENEG_WINDOW.
    if (self->renegotiating_) return SSL_CLIENT_HELLO_SUCCESS;
    if (!self->CountPeerRenegotiation()) {
      *alert = self->pending_alert_;
      return SSL_CLIENT_HELLO_ERROR;
    }
    // Accepted: it must complete within handshake_timeout, as in Node.
    self->handshake_deadline_ = self->now_ + self->options_.handshake_timeout;
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  // The application refused (AnswerSni or AnswerResumeSession with an
  // error): fail here so the client gets an alert.
  if (!self->pending_failure_.ok()) {
    *alert = self->pending_alert_;
    return SSL_CLIENT_HELLO_ERROR;
  }
  // SNI: Node's SNICallback, or the addContext table.
  const unsigned char* ext = nullptr;
  size_t ext_len = 0;
  std::string servername;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) == 1) {
    servername = ParseServerName(ext, ext_len);
  }
  if (!servername.empty()) {
    std::shared_ptr<const SecureContext> chosen;
    if (self->options_.sni_callback) {
      if (!self->sni_answered_) {
        if (self->waiting_ != Impl::Waiting::kSni) {
          Event event = internal::MakeEvent(EventType::kSniRequest);
          event.servername = servername;
          self->Push(std::move(event));
          self->waiting_ = Impl::Waiting::kSni;
        }
        return SSL_CLIENT_HELLO_RETRY;
      }
      chosen = self->sni_answer_;
    } else if (self->options_.sni_contexts) {
      chosen = self->options_.sni_contexts->Find(servername);
    }
    if (chosen && chosen != self->active_context_) {
      SSL_CTX* native = NativeHandle(*chosen);
      if (self->options_.keylog) {
        absl::StatusOr<SSL_CTX*> keylog = KeylogNativeHandle(*chosen);
        if (!keylog.ok()) {
          if (self->pending_failure_.ok()) self->pending_failure_ = keylog.status();
          *alert = SSL_AD_INTERNAL_ERROR;
          return SSL_CLIENT_HELLO_ERROR;
        }
        native = *keylog;
      }
      SSL_set_SSL_CTX(ssl, native);  // takes its own reference
      self->active_context_ = chosen;
    }
  }
  // Node's resumeSession: a TLS 1.2 session id without a ticket.
  if (self->options_.session_cache && !self->resume_answered_) {
    const unsigned char* id = nullptr;
    size_t id_len = SSL_client_hello_get0_session_id(ssl, &id);
    const unsigned char* ticket = nullptr;
    size_t ticket_len = 0;
    bool has_ticket = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &ticket, &ticket_len) == 1 &&
                      ticket_len > 0;
    if (id_len > 0 && !has_ticket && !WillNegotiateTls13(ssl)) {
      if (self->waiting_ != Impl::Waiting::kResumeSession) {
        Event event = internal::MakeEvent(EventType::kResumeSession);
        event.session_id.assign(reinterpret_cast<const char*>(id), id_len);
        self->Push(std::move(event));
        self->waiting_ = Impl::Waiting::kResumeSession;
      }
      return SSL_CLIENT_HELLO_RETRY;
    }
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

// ---- Sessions: the serving context, and lifetimes on the engine's clock ----

// The data of the context that serves `ssl`'s handshake: the one SNI chose,
// else the default. OpenSSL runs the session and ticket callbacks of the
// context the SSL was made with (its session_ctx) even after
// SSL_set_SSL_CTX, so they look the serving one up here. Without an engine:
// the SSL's current context.
const internal::ContextData* ServingData(const SSL* ssl) {
  Impl* self = Impl::From(ssl);
  SSL_CTX* ctx = self != nullptr && self->active_context_ ? NativeHandle(*self->active_context_)
                                                          : SSL_get_SSL_CTX(ssl);
  return static_cast<const internal::ContextData*>(SSL_CTX_get_app_data(ctx));
}

// Server: stamps a session being issued (in a ticket, or as a session id for
// the application's store) with the engine's clock and the serving context's
// timeout, instead of OpenSSL's time(NULL) and the default context's. A TLS
// 1.2 resumption continues its session (RFC 5077 §3.3): a renewed ticket
// keeps the original time. TLS 1.3 tickets after a resumption carry a new
// session (OpenSSL copies it), which starts now.
void StampSession(SSL* ssl, SSL_SESSION* session) {
  Impl* self = Impl::From(ssl);
  const internal::ContextData* data = ServingData(ssl);
  if (self == nullptr || data == nullptr || session == nullptr) return;
  if (!SSL_session_reused(ssl) || SSL_version(ssl) >= TLS1_3_VERSION) {
    SSL_SESSION_set_time(session, static_cast<long>(absl::ToUnixSeconds(self->now_)));
  }
  SSL_SESSION_set_timeout(session, static_cast<long>(data->session_timeout));
}

// OpenSSL's own expiry check (ssl_get_prev_session, on time(NULL)) runs
// after ours; a session we accept gets a timeout that OpenSSL's clock cannot
// exceed (68 years), so the engine's clock alone decides. StampSession sets
// the real timeout again on any session issued from it.
constexpr long kBeyondOpenSslClock = 0x7fffffff;

// Whether a session offered for resumption (a decrypted ticket, or the
// application's answer to kResumeSession) is still alive on the engine's
// clock: issued less than its timeout before `now`.
bool AliveOnEngineClock(SSL* ssl, SSL_SESSION* session) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr) return true;  // OpenSSL's check alone
  const int64_t expires = int64_t{SSL_SESSION_get_time(session)} + SSL_SESSION_get_timeout(session);
  if (expires <= absl::ToUnixSeconds(self->now_)) return false;
  SSL_SESSION_set_timeout(session, kBeyondOpenSslClock);
  return true;
}

// SSL_CTX_set_session_ticket_cb: stamps a session about to go into a ticket.
int GenerateTicketCallback(SSL* ssl, void* /*arg*/) {
  StampSession(ssl, SSL_get0_session(ssl));  // borrowed
  return 1;
}

// SSL_CTX_set_session_ticket_cb: a ticket was decrypted (or not). An expired
// one means a full handshake and a fresh ticket; otherwise OpenSSL's verdict
// stands (renew when TicketKeyCallback asked for it).
SSL_TICKET_RETURN DecryptTicketCallback(SSL* ssl, SSL_SESSION* session, const unsigned char* /*key_name*/,
                                        size_t /*key_name_len*/, SSL_TICKET_STATUS status, void* /*arg*/) {
  if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW) return SSL_TICKET_RETURN_IGNORE_RENEW;
  if (!AliveOnEngineClock(ssl, session)) return SSL_TICKET_RETURN_IGNORE_RENEW;
  return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

SSL_SESSION* GetSessionCallback(SSL* ssl, const unsigned char* id, int id_len, int* copy) {
  *copy = 0;  // OpenSSL takes the reference we return
  Impl* self = Impl::From(ssl);
  if (self == nullptr || self->resume_answer_.empty()) return nullptr;
  std::string der = std::move(self->resume_answer_);
  self->resume_answer_.clear();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  OpenSslPtr<SSL_SESSION> session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  if (!session) return nullptr;
  unsigned int stored_len = 0;
  const unsigned char* stored = SSL_SESSION_get_id(session.get(), &stored_len);
  if (stored_len != static_cast<unsigned int>(id_len) || std::memcmp(stored, id, stored_len) != 0) return nullptr;
  if (!AliveOnEngineClock(ssl, session.get())) return nullptr;  // expired: a full handshake
  return session.release();
}

int NewSessionCallback(SSL* ssl, SSL_SESSION* session) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr) return 0;
  if (SSL_is_server(ssl)) {
    if (!self->options_.session_cache) return 0;
    StampSession(ssl, session);
    unsigned int id_len = 0;
    const unsigned char* id = SSL_SESSION_get_id(session, &id_len);
    Event event = internal::MakeEvent(EventType::kNewSession);
    event.session_id.assign(reinterpret_cast<const char*>(id), id_len);
    event.session = internal::ToDer(i2d_SSL_SESSION, session);
    const internal::ContextData* serving = ServingData(ssl);
    event.stateless_ticket = SSL_version(ssl) == TLS1_3_VERSION && serving != nullptr && !serving->no_tickets;
    self->Push(std::move(event));
    self->new_sessions_pending_++;
  } else {
    // A server may send any number of tickets; past the limit (without
    // application data in between) they are not reported, and serializing
    // them is not paid for. GetSession() still returns the newest.
    if (++self->session_events_ > self->options_.max_session_events) return 0;
    Event event = internal::MakeEvent(EventType::kSession);
    event.session = internal::ToDer(i2d_SSL_SESSION, session);
    event.session_handle = TlsSessionFromCopyOf(session);
    self->Push(std::move(event));
  }
  return 0;  // we keep no reference
}

// The issuer of `cert`: from the chain we send, else from the trust store.
OpenSslPtr<X509> FindIssuer(SSL* ssl, X509* cert) {
  STACK_OF(X509)* chain = nullptr;  // borrowed
  SSL_get0_chain_certs(ssl, &chain);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* candidate = sk_X509_value(chain, i);
    if (X509_check_issued(candidate, cert) == X509_V_OK) {
      X509_up_ref(candidate);
      return OpenSslPtr<X509>(candidate);
    }
  }
  X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));  // borrowed
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> store_ctx(X509_STORE_CTX_new(),
                                                                             &X509_STORE_CTX_free);
  X509* issuer = nullptr;
  if (store_ctx && X509_STORE_CTX_init(store_ctx.get(), store, cert, nullptr) == 1) {
    X509_STORE_CTX_get1_issuer(&issuer, store_ctx.get(), cert);  // hands us a reference
  }
  ERR_clear_error();
  return OpenSslPtr<X509>(issuer);
}

// Server: suspends the handshake while the application fetches an OCSP
// response (Node's OCSPRequest), before the certificate goes out.
int CertCallback(SSL* ssl, void* /*arg*/) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr || !SSL_is_server(ssl) || !self->options_.ocsp_request) return 1;
  // The application's OCSP fetch failed: OpenSSL sends internal_error.
  if (self->ocsp_answered_) return self->pending_failure_.ok() ? 1 : 0;
  if (SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp) return 1;
  if (self->waiting_ != Impl::Waiting::kOcsp) {
    X509* cert = SSL_get_certificate(ssl);  // borrowed
    Event event = internal::MakeEvent(EventType::kOcspRequest);
    event.certificate = internal::ToDer(i2d_X509, cert);
    if (cert != nullptr) event.issuer = internal::ToDer(i2d_X509, FindIssuer(ssl, cert).get());
    self->Push(std::move(event));
    self->waiting_ = Impl::Waiting::kOcsp;
  }
  return -1;
}

// Server: staples the prepared response. Client: reports what was stapled.
int StatusCallback(SSL* ssl, void* /*arg*/) {
  Impl* self = Impl::From(ssl);
  if (SSL_is_server(ssl)) {
    if (self == nullptr || self->ocsp_answer_.empty()) return SSL_TLSEXT_ERR_NOACK;
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(self->ocsp_answer_.data(), self->ocsp_answer_.size()));
    if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
    // The SSL takes ownership of `copy`.
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(self->ocsp_answer_.size()));
    return SSL_TLSEXT_ERR_OK;
  }
  if (self == nullptr) return 1;
  const unsigned char* response = nullptr;
  long len = SSL_get_tlsext_status_ocsp_resp(ssl, &response);  // borrowed
  Event event = internal::MakeEvent(EventType::kOcspResponse);
  if (len > 0 && response != nullptr) event.ocsp_response.assign(reinterpret_cast<const char*>(response), len);
  self->Push(std::move(event));
  return 1;
}

// Server ALPN (RFC 7301 §3.2): our first protocol the client also offers;
// none in common is the fatal no_application_protocol alert.
int AlpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                       unsigned int in_len, void* /*arg*/) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr || self->alpn_wire_.empty()) return SSL_TLSEXT_ERR_NOACK;
  const std::string& ours = self->alpn_wire_;
  for (size_t i = 0; i < ours.size(); i += 1 + static_cast<unsigned char>(ours[i])) {
    size_t len = static_cast<unsigned char>(ours[i]);
    for (unsigned int j = 0; j < in_len; j += 1 + in[j]) {
      if (in[j] == len && j + 1 + len <= in_len && std::memcmp(in + j + 1, ours.data() + i + 1, len) == 0) {
        *out = in + j + 1;
        *out_len = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

const internal::ContextData* DataOf(SSL* ssl) {
  return static_cast<const internal::ContextData*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

// The connection's NPN list (ConnectionOptions::npn_protocols), else the
// context's; empty when neither has one.
const std::string* NpnWire(SSL* ssl) {
  Impl* self = Impl::From(ssl);
  if (self != nullptr && !self->npn_wire_.empty()) return &self->npn_wire_;
  const internal::ContextData* data = DataOf(ssl);
  if (data == nullptr || data->npn_wire.empty()) return nullptr;
  return &data->npn_wire;
}

int NpnAdvertiseCallback(SSL* ssl, const unsigned char** out, unsigned int* out_len, void* /*arg*/) {
  const std::string* wire = NpnWire(ssl);
  if (wire == nullptr) return SSL_TLSEXT_ERR_NOACK;
  *out = reinterpret_cast<const unsigned char*>(wire->data());
  *out_len = static_cast<unsigned int>(wire->size());
  return SSL_TLSEXT_ERR_OK;
}

// Client NPN: as in io.js, with no overlap we send our first protocol and
// report none.
int NpnSelectCallback(SSL* ssl, unsigned char** out, unsigned char* out_len, const unsigned char* in,
                      unsigned int in_len, void* /*arg*/) {
  const std::string* wire = NpnWire(ssl);
  if (wire == nullptr) return SSL_TLSEXT_ERR_NOACK;
  int status = SSL_select_next_proto(out, out_len, in, in_len, reinterpret_cast<const unsigned char*>(wire->data()),
                                     static_cast<unsigned int>(wire->size()));
  if (Impl* self = Impl::From(ssl)) {
    self->npn_selected_ = status == OPENSSL_NPN_NEGOTIATED
                              ? std::string(reinterpret_cast<const char*>(*out), *out_len)
                              : "";
  }
  return SSL_TLSEXT_ERR_OK;
}

void KeylogCallback(const SSL* ssl, const char* line) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr || !self->options_.keylog) return;
  Event event = internal::MakeEvent(EventType::kKeylog);
  event.line = line;
  self->Push(std::move(event));
}

// Node's ticket keys: 16 bytes name, 16 HMAC-SHA256 key, 16 AES-128-CBC key,
// those of the context serving the handshake (ServingData): a ticket is
// issued and accepted by the same context, SNI-chosen or default, and one
// from another context means a full handshake. enc=1: encrypt with the first
// key. enc=0: find the key by name; 2 asks OpenSSL to issue a new ticket:
// for one made with an older key, and always in TLS 1.3, where clients use a
// ticket once (RFC 8446 §8.1) and OpenSSL sends none after a resumption
// unless asked. A serving context with SSL_OP_NO_TICKET neither issues nor
// accepts tickets (0).
int TicketKeyCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                      EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  const internal::ContextData* data = ServingData(ssl);
  if (data == nullptr || data->ticket_keys == nullptr) return -1;
  if (data->no_tickets) return 0;
  // The keys now: TicketKeys::Set changes them without a new SSL_CTX.
  std::shared_ptr<const std::vector<std::string>> keys = data->ticket_keys->Get();
  auto use = [&](const std::string& key) {
    const auto* k = reinterpret_cast<const unsigned char*>(key.data());
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string("key", const_cast<unsigned char*>(k + 16), 16),
        OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1 &&
           (enc ? EVP_EncryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, k + 32, iv)
                : EVP_DecryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, k + 32, iv)) == 1;
  };
  if (enc) {
    const std::string& key = keys->front();
    std::memcpy(key_name, key.data(), 16);
    if (RAND_bytes(iv, 16) != 1 || !use(key)) return -1;
    return 1;
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    const std::string& key = (*keys)[i];
    if (std::memcmp(key_name, key.data(), 16) != 0) continue;
    if (!use(key)) return -1;
    return i == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
  }
  return 0;  // unknown key: a full handshake
}

}  // namespace

// ---- Per-SSL callbacks ----

int Impl::VerifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  // Borrowed: the SSL behind this verification.
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  Impl* self = Impl::From(ssl);
  const bool reject = self->options_.reject_unauthorized;
  // As Node does, verification always runs to its end, so the error
  // reported is OpenSSL's final verdict (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE
  // for a missing intermediate) whether or not we reject.
  if (!preverify_ok) {
    self->chain_failed_ = true;
    return 1;
  }
  // OpenSSL signals success at depth 0 last, keeping any earlier error in
  // the store context: this is where the verdict is made, inside the
  // handshake, so that a rejection reaches the peer as an alert.
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  if (self->chain_failed_) return reject ? 0 : 1;
  if (self->options_.is_server) return 1;
  // The chain is good: check the server's identity, as Node does only then.
  if (self->CheckPeerIdentity(X509_STORE_CTX_get_current_cert(store)).ok() || !reject) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

namespace {

// Runs the application's check_server_identity, or CheckServerIdentity, on
// `leaf` (borrowed). The user's function may be called from inside
// OpenSSL's C frames: an exception must not unwind through them, so it
// becomes an error here. A result without a Node code gets
// ERR_TLS_CERT_ALTNAME_INVALID.
absl::Status IdentityOf(const ConnectionOptions& options, const std::string& host, X509* leaf) {
  absl::Status identity;
  if (!options.check_server_identity) {
    // The built-in check reads only the names: no CertificateInfo (with
    // its key encoding and digests) unless it fails.
    identity = internal::CheckServerIdentityOfX509(host, leaf);
  } else if (absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(leaf); !info.ok()) {
    identity = info.status();
  } else {
    try {
      identity = options.check_server_identity(host, *info);
    } catch (const std::exception& e) {
      identity = absl::UnauthenticatedError(absl::StrCat("check_server_identity threw: ", e.what()));
    } catch (...) {
      identity = absl::UnauthenticatedError("check_server_identity threw a non-standard exception");
    }
  }
  if (!identity.ok() && NodeCode(identity).empty()) {
    identity = MakeError(absl::StatusCode::kUnauthenticated, kErrCertAltnameInvalid, identity.message());
  }
  return identity;
}

}  // namespace

absl::Status Impl::CheckPeerIdentity(X509* leaf) {
  identity_status_ = IdentityOf(options_, identity_host_, leaf);
  return identity_status_;
}

void Impl::CheckResumedIdentity() {
  // OpenSSL runs no verification on resumption: the session carries the
  // first handshake's verdict and peer certificate. The identity is this
  // connection's own question, so it is asked again, as Node does after
  // every handshake; only when the stored chain verdict is good.
  OpenSslPtr<X509> peer(SSL_get1_peer_certificate(ssl_.get()));
  if (!peer || SSL_get_verify_result(ssl_.get()) != X509_V_OK) return;
  CheckPeerIdentity(peer.get()).IgnoreError();  // kept in identity_status_ for UpdateAuthorization
}

bool Impl::MayOfferSession(SSL_SESSION* session, long verify_result) const {
  // A client that accepts unauthorized servers offers any session, as Node
  // does (self-signed services, IP-addressed hosts): the resumed handshake
  // reports the verdict again from the session's verify result and peer
  // certificate (UpdateAuthorization, CheckResumedIdentity).
  if (!options_.reject_unauthorized) return true;
  // A client that rejects offers only a session it would accept: one whose
  // chain verified and whose server proves this host. Anything else gets a
  // full, verified handshake (and the server an alert on mismatch), so a
  // session from one host is never reused for another.
  X509* peer = SSL_SESSION_get0_peer(session);  // borrowed
  return peer != nullptr && verify_result == X509_V_OK && IdentityOf(options_, identity_host_, peer).ok();
}

void Impl::InfoCallback(const SSL* ssl, int where, int ret) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr) return;
  if ((where & SSL_CB_ALERT) == 0) return;
  if ((ret >> 8) != SSL3_AL_FATAL) {
    // A server refusing a client's renegotiation (OpenSSL 3.0 does unless
    // allowed) answers each ClientHello with this warning: those attempts
    // count against the same limit, so refusing costs a peer its connection
    // too after a few tries.
    if ((where & SSL_CB_WRITE) != 0 && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION && self->options_.is_server) {
      self->CountPeerRenegotiation();
    }
    return;
  }
  if ((where & SSL_CB_WRITE) != 0) self->sent_alert_ = ret & 0xff;
  if ((where & SSL_CB_READ) != 0) self->received_alert_ = ret & 0xff;
}

void Impl::MessageCallback(int write_p, int /*version*/, int content_type, const void* buf, size_t len, SSL* ssl,
                           void* /*arg*/) {
  Impl* self = Impl::From(ssl);
  if (self == nullptr || content_type != SSL3_RT_HANDSHAKE || len == 0) return;
  const int type = static_cast<const unsigned char*>(buf)[0];
  if (type == SSL3_MT_KEY_UPDATE) {
    (write_p ? self->stats_.key_updates_sent : self->stats_.key_updates_received)++;
    // RFC 8446 §4.6.3: update_requested (1) makes us answer with our own
    // KeyUpdate. A peer asking again and again without sending data makes us
    // do work and queue output for nothing: past the limit, the connection
    // ends (after this record; see ReadPlaintext).
    const bool requested = len >= 5 && static_cast<const unsigned char*>(buf)[4] == SSL_KEY_UPDATE_REQUESTED;
    if (!write_p && requested && ++self->key_update_requests_ > self->options_.max_key_updates &&
        self->pending_failure_.ok()) {
      self->pending_failure_ = MakeError(absl::StatusCode::kAborted, "ERR_TLS_TOO_MANY_KEY_UPDATES",
                                         absl::StrCat("the peer asked for more than ", self->options_.max_key_updates,
                                                      " key updates without sending data"));
    }
  }
  if (type == SSL3_MT_FINISHED && !write_p && self->handshake_done_once_) self->peer_finished_ = true;
}

namespace internal {

OpenSslPtr<BIO_METHOD> NewEngineBioMethod() {
  // A fixed type: BIO_get_new_index() is a process-wide counter that runs out.
  OpenSslPtr<BIO_METHOD> method(BIO_meth_new(0x6e | BIO_TYPE_SOURCE_SINK, "tlsengine"));
  if (method) {
    BIO_meth_set_read(method.get(), &BioRead);
    BIO_meth_set_write(method.get(), &BioWrite);
    BIO_meth_set_ctrl(method.get(), &BioCtrl);
  }
  return method;
}

void InstallKeylogCallback(SSL_CTX* ctx) { SSL_CTX_set_keylog_callback(ctx, &KeylogCallback); }

void InstallEngineCallbacks(SSL_CTX* ctx, const ContextData* data) {
  SSL_CTX_set_app_data(ctx, const_cast<ContextData*>(data));  // borrowed; outlives ctx
  // Like Node: no internal session cache; tickets resume statelessly and
  // the application may keep session ids (newSession/resumeSession).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_BOTH | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx, &NewSessionCallback);
  SSL_CTX_sess_set_get_cb(ctx, &GetSessionCallback);
  SSL_CTX_set_client_hello_cb(ctx, &ClientHelloCallback, nullptr);
  SSL_CTX_set_cert_cb(ctx, &CertCallback, nullptr);
  SSL_CTX_set_tlsext_status_cb(ctx, &StatusCallback);
  SSL_CTX_set_alpn_select_cb(ctx, &AlpnSelectCallback, nullptr);
  // A server advertises a connection's own list even when its context has
  // none (nothing is sent when neither has one); a client sends the NPN
  // extension whenever a select callback is set, so only from a context
  // with a list.
  SSL_CTX_set_next_protos_advertised_cb(ctx, &NpnAdvertiseCallback, nullptr);
  if (!data->npn_wire.empty()) SSL_CTX_set_next_proto_select_cb(ctx, &NpnSelectCallback, nullptr);
  // On every context: OpenSSL calls those of the SSL's first context, which
  // find the serving one.
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketKeyCallback);
  SSL_CTX_set_session_ticket_cb(ctx, &GenerateTicketCallback, &DecryptTicketCallback, nullptr);
}

}  // namespace internal
}  // namespace tlsengine
