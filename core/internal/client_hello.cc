// The first flight and the ClientHello: waiting for a whole one before a
// server makes its SSL, SNI (Node's SNICallback or the addContext table)
// and the switch to the chosen context, resumeSession's suspension, and a
// client's renegotiation attempts.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;

namespace {

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

}  // namespace

Impl::FirstFlight Impl::CheckFirstFlight() const {
  if (transport_eof_) return FirstFlight::kReady;
  // OpenSSL refuses a longer ClientHello as soon as it reads the length
  // (CLIENT_HELLO_MAX_LENGTH in its statem_local.h).
  constexpr size_t kMaxClientHello = 131396;
  const uint8_t* p = input_.data();
  const size_t n = input_.size();
  uint8_t header[4];  // the handshake message's type and length
  size_t handshake_bytes = 0;
  // Whole records of the handshake content type, as their 5-byte headers
  // (type 22, version 3.x, length) frame them; anything else (an SSLv2
  // ClientHello, HTTP, an alert, an oversized record) goes to OpenSSL.
  for (size_t at = 0; at < n;) {
    if (p[at] != SSL3_RT_HANDSHAKE || (at + 1 < n && p[at + 1] != SSL3_VERSION_MAJOR)) return FirstFlight::kReady;
    if (at + 5 > n) break;
    const size_t len = (size_t{p[at + 3]} << 8) | p[at + 4];
    // OpenSSL refuses a record this long on its header (record_overflow).
    if (len > internal::kMaxPlaintextRecord + 2048) return FirstFlight::kReady;
    if (at + 5 + len > n) break;
    // Only whole: an empty record or one over 2^14 that OpenSSL would take
    // and then wait after, with its SSL and buffers made (40-50 KB for
    // five bytes). An empty one is judged with the rest.
    if (len == 0) {
      at += 5;
      continue;
    }
    if (len > internal::kMaxPlaintextRecord) return FirstFlight::kReady;
    for (size_t i = 0; i < len && handshake_bytes + i < sizeof(header); ++i) {
      header[handshake_bytes + i] = p[at + 5 + i];
    }
    handshake_bytes += len;
    at += 5 + len;
    if (handshake_bytes < sizeof(header)) continue;
    if (header[0] != SSL3_MT_CLIENT_HELLO) return FirstFlight::kReady;
    const size_t length = sizeof(header) + ((size_t{header[1]} << 16) | (size_t{header[2]} << 8) | header[3]);
    if (length > sizeof(header) + kMaxClientHello || handshake_bytes >= length) return FirstFlight::kReady;
    // In full records, with their headers.
    const size_t records = (length + internal::kMaxPlaintextRecord - 1) / internal::kMaxPlaintextRecord;
    if (length + 5 * records > options_.max_input_buffer) return FirstFlight::kTooLarge;
  }
  return n >= options_.max_input_buffer ? FirstFlight::kTooLarge : FirstFlight::kIncomplete;
}

int Impl::ClientHelloCallback(SSL* ssl, int* alert, void* /*arg*/) {
  Impl* self = From(ssl);
  return self != nullptr ? self->OnClientHello(ssl, alert) : SSL_CLIENT_HELLO_SUCCESS;
}

int Impl::OnClientHello(SSL* ssl, int* alert) {
  if (handshake_done_once_) {
    // A renegotiation. Ours (HelloRequest) is free; the client's count
    // against Node's CLIENT_RENEG_LIMIT per CLIENT_RENEG_WINDOW.
    if (renegotiating_) return SSL_CLIENT_HELLO_SUCCESS;
    if (!CountPeerRenegotiation()) {
      *alert = pending_alert_;
      return SSL_CLIENT_HELLO_ERROR;
    }
    // Accepted: it must complete within handshake_timeout, as in Node.
    handshake_deadline_ = now_ + options_.handshake_timeout;
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  // The application refused (AnswerSni or AnswerResumeSession with an
  // error): fail here so the client gets an alert.
  if (!pending_failure_.ok()) {
    *alert = pending_alert_;
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
    if (options_.sni_callback) {
      if (!sni_answered_) {
        if (waiting_ != Waiting::kSni) {
          Event event = internal::MakeEvent(EventType::kSniRequest);
          event.servername = servername;
          Push(std::move(event));
          waiting_ = Waiting::kSni;
        }
        return SSL_CLIENT_HELLO_RETRY;
      }
      chosen = sni_answer_;
    } else if (options_.sni_contexts) {
      chosen = options_.sni_contexts->Find(servername);
    }
    if (chosen && chosen != active_context_) {
      if (absl::Status switched = SwitchContext(ssl, std::move(chosen)); !switched.ok()) {
        SetPendingFailure(std::move(switched), SSL_AD_INTERNAL_ERROR);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
      }
    }
  }
  // Node's resumeSession: a TLS 1.2 session id without a ticket.
  if (options_.session_cache && !resume_answered_) {
    const unsigned char* id = nullptr;
    size_t id_len = SSL_client_hello_get0_session_id(ssl, &id);
    const unsigned char* ticket = nullptr;
    size_t ticket_len = 0;
    bool has_ticket = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &ticket, &ticket_len) == 1 &&
                      ticket_len > 0;
    if (id_len > 0 && !has_ticket && !WillNegotiateTls13(ssl)) {
      if (waiting_ != Waiting::kResumeSession) {
        Event event = internal::MakeEvent(EventType::kResumeSession);
        event.session_id.assign(reinterpret_cast<const char*>(id), id_len);
        Push(std::move(event));
        waiting_ = Waiting::kResumeSession;
      }
      return SSL_CLIENT_HELLO_RETRY;
    }
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

absl::Status Impl::SwitchContext(SSL* ssl, std::shared_ptr<const SecureContext> chosen) {
  SSL_CTX* native = NativeHandle(*chosen);
  if (options_.keylog) {
    absl::StatusOr<SSL_CTX*> keylog = KeylogNativeHandle(*chosen);
    if (!keylog.ok()) return keylog.status();
    native = *keylog;
  }
  SSL_set_SSL_CTX(ssl, native);  // takes its own reference
  active_context_ = std::move(chosen);
  return absl::OkStatus();
}

}  // namespace tlsengine
