// Sessions and tickets: a client's offered session, a server's new
// sessions (Node's newSession) and the application's answers to
// resumeSession, ticket keys, and session lifetimes on the engine's clock.
#include <openssl/rand.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;
using internal::OpenSslPtr;

namespace {

// OpenSSL's own expiry check (ssl_get_prev_session, on time(NULL)) runs
// after ours; a session we accept gets a timeout that OpenSSL's clock cannot
// exceed (68 years), so the engine's clock alone decides. StampSession sets
// the real timeout again on any session issued from it.
constexpr long kBeyondOpenSslClock = 0x7fffffff;

}  // namespace

absl::Status Impl::OfferSession() {
  if (options_.session_handle && !options_.session.empty()) {
    return internal::InvalidOption("session, session_handle: give one or the other");
  }
  std::shared_ptr<const TlsSession> session = options_.session_handle;
  if (!options_.session.empty()) {
    absl::StatusOr<std::shared_ptr<const TlsSession>> decoded = TlsSession::FromDer(options_.session);
    if (!decoded.ok()) return internal::InvalidOption("session: not a serialized TLS session");
    session = *std::move(decoded);
  }
  if (!session) return absl::OkStatus();
  // Its own copy: the SSL changes the session it uses.
  OpenSslPtr<SSL_SESSION> copy(SSL_SESSION_dup(NativeHandle(*session)));
  if (!copy) return MakeError(absl::StatusCode::kInternal, kErrInternal, "session: cannot copy");
  SSL_set_session(ssl_.get(), copy.get());  // takes its own reference
  // Offered unless the client rejects and would reject its server. The
  // session's chain verdict is read from the SSL, where SSL_set_session
  // copied it (OpenSSL 3.0 has no getter on the session).
  if (!MayOfferSession(copy.get(), SSL_get_verify_result(ssl_.get()))) {
    SSL_set_session(ssl_.get(), nullptr);
    SSL_set_verify_result(ssl_.get(), X509_V_OK);  // a fresh SSL's
  }
  return absl::OkStatus();
}

// The data of the context that serves `ssl`'s handshake: the one SNI chose,
// else the default. OpenSSL runs the session and ticket callbacks of the
// context the SSL was made with (its session_ctx) even after
// SSL_set_SSL_CTX, so they look the serving one up here.
const internal::ContextData* Impl::ServingData(const SSL* ssl) const {
  return internal::DataOf(active_context_ ? NativeHandle(*active_context_) : SSL_get_SSL_CTX(ssl));
}

// Server: stamps a session being issued (in a ticket, or as a session id for
// the application's store) with the engine's clock and the serving context's
// timeout, instead of OpenSSL's time(NULL) and the default context's. A TLS
// 1.2 resumption continues its session (RFC 5077 §3.3): a renewed ticket
// keeps the original time. TLS 1.3 tickets after a resumption carry a new
// session (OpenSSL copies it), which starts now.
void Impl::StampSession(SSL* ssl, SSL_SESSION* session) const {
  const internal::ContextData* data = ServingData(ssl);
  if (data == nullptr || session == nullptr) return;
  if (!SSL_session_reused(ssl) || SSL_version(ssl) >= TLS1_3_VERSION) {
    SSL_SESSION_set_time(session, static_cast<long>(absl::ToUnixSeconds(now_)));
  }
  SSL_SESSION_set_timeout(session, static_cast<long>(data->session_timeout));
}

// Whether a session offered for resumption (a decrypted ticket, or the
// application's answer to kResumeSession) is still alive on the engine's
// clock: issued less than its timeout before now.
bool Impl::AliveOnEngineClock(SSL_SESSION* session) const {
  const int64_t expires = int64_t{SSL_SESSION_get_time(session)} + SSL_SESSION_get_timeout(session);
  if (expires <= absl::ToUnixSeconds(now_)) return false;
  SSL_SESSION_set_timeout(session, kBeyondOpenSslClock);
  return true;
}

// SSL_CTX_set_session_ticket_cb: stamps a session about to go into a ticket.
int Impl::GenerateTicketCallback(SSL* ssl, void* /*arg*/) {
  if (const Impl* self = From(ssl)) self->StampSession(ssl, SSL_get0_session(ssl));  // borrowed
  return 1;
}

// SSL_CTX_set_session_ticket_cb: a ticket was decrypted (or not). An expired
// one means a full handshake and a fresh ticket; otherwise OpenSSL's verdict
// stands (renew when TicketKeyCallback asked for it).
SSL_TICKET_RETURN Impl::DecryptTicketCallback(SSL* ssl, SSL_SESSION* session, const unsigned char* /*key_name*/,
                                              size_t /*key_name_len*/, SSL_TICKET_STATUS status, void* /*arg*/) {
  if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW) return SSL_TICKET_RETURN_IGNORE_RENEW;
  const Impl* self = From(ssl);  // without one, OpenSSL's check alone
  if (self != nullptr && !self->AliveOnEngineClock(session)) return SSL_TICKET_RETURN_IGNORE_RENEW;
  return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

SSL_SESSION* Impl::GetSessionCallback(SSL* ssl, const unsigned char* id, int id_len, int* copy) {
  *copy = 0;  // OpenSSL takes the reference we return
  Impl* self = From(ssl);
  return self != nullptr ? self->TakeResumedSession(ssl, id, id_len) : nullptr;
}

SSL_SESSION* Impl::TakeResumedSession(SSL* /*ssl*/, const unsigned char* id, int id_len) {
  if (resume_answer_.empty()) return nullptr;
  std::string der = std::move(resume_answer_);
  resume_answer_.clear();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  OpenSslPtr<SSL_SESSION> session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  if (!session) return nullptr;
  unsigned int stored_len = 0;
  const unsigned char* stored = SSL_SESSION_get_id(session.get(), &stored_len);
  if (stored_len != static_cast<unsigned int>(id_len) || std::memcmp(stored, id, stored_len) != 0) return nullptr;
  if (!AliveOnEngineClock(session.get())) return nullptr;  // expired: a full handshake
  return session.release();
}

int Impl::NewSessionCallback(SSL* ssl, SSL_SESSION* session) {
  if (Impl* self = From(ssl)) self->RecordNewSession(ssl, session);
  return 0;  // we keep no reference
}

void Impl::RecordNewSession(SSL* ssl, SSL_SESSION* session) {
  if (SSL_is_server(ssl)) {
    if (!options_.session_cache) return;
    StampSession(ssl, session);
    unsigned int id_len = 0;
    const unsigned char* id = SSL_SESSION_get_id(session, &id_len);
    Event event = internal::MakeEvent(EventType::kNewSession);
    event.session_id.assign(reinterpret_cast<const char*>(id), id_len);
    event.session = internal::ToDer(i2d_SSL_SESSION, session);
    const internal::ContextData* serving = ServingData(ssl);
    event.stateless_ticket = SSL_version(ssl) == TLS1_3_VERSION && serving != nullptr && !serving->no_tickets;
    Push(std::move(event));
    new_sessions_pending_++;
    return;
  }
  // A server may send any number of tickets; past the limit (without
  // application data in between) they are not reported, and serializing
  // them is not paid for. GetSession() still returns the newest.
  if (++session_events_ > options_.max_session_events) return;
  Event event = internal::MakeEvent(EventType::kSession);
  event.session = internal::ToDer(i2d_SSL_SESSION, session);
  event.session_handle = TlsSessionFromCopyOf(session);
  Push(std::move(event));
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
int Impl::TicketKeyCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                            EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  // Without an engine: the SSL's current context's.
  const Impl* self = From(ssl);
  const internal::ContextData* data = self != nullptr ? self->ServingData(ssl) : internal::DataOf(SSL_get_SSL_CTX(ssl));
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

// ---- What the application reads ----

std::string TlsConnection::GetSession() const {
  if (!impl_->ssl_) return "";
  SSL_SESSION* session = SSL_get_session(impl_->ssl_.get());  // borrowed
  if (session == nullptr || SSL_SESSION_is_resumable(session) != 1) return "";
  return internal::ToDer(i2d_SSL_SESSION, session);
}

std::shared_ptr<const TlsSession> TlsConnection::GetSessionHandle() const {
  if (!impl_->ssl_) return nullptr;
  SSL_SESSION* session = SSL_get_session(impl_->ssl_.get());  // borrowed
  if (session == nullptr || SSL_SESSION_is_resumable(session) != 1) return nullptr;
  return TlsSessionFromCopyOf(session);
}

std::string TlsConnection::GetTlsTicket() const {
  if (!impl_->ssl_) return "";
  SSL_SESSION* session = SSL_get_session(impl_->ssl_.get());  // borrowed
  if (session == nullptr || !SSL_SESSION_has_ticket(session)) return "";
  const unsigned char* ticket = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &len);
  return internal::ToString(ticket, len);
}

bool TlsConnection::is_session_reused() const { return impl_->ssl_ && SSL_session_reused(impl_->ssl_.get()) == 1; }

}  // namespace tlsengine
