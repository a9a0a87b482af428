// Observation: the key log (kKeylog), the alerts sent and received, and the
// handshake messages that count against limits (KeyUpdate, Finished).
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;

void Impl::KeylogCallback(const SSL* ssl, const char* line) {
  if (Impl* self = From(ssl)) self->OnKeylogLine(line);
}

void Impl::OnKeylogLine(const char* line) {
  if (!options_.keylog) return;
  Event event = internal::MakeEvent(EventType::kKeylog);
  event.line = line;
  Push(std::move(event));
}

void Impl::InfoCallback(const SSL* ssl, int where, int ret) {
  Impl* self = From(ssl);
  if (self != nullptr && (where & SSL_CB_ALERT) != 0) self->OnAlert(where, ret);
}

void Impl::OnAlert(int where, int ret) {
  if ((ret >> 8) != SSL3_AL_FATAL) {
    // A server refusing a client's renegotiation (OpenSSL 3.0 does unless
    // allowed) answers each ClientHello with this warning: those attempts
    // count against the same limit, so refusing costs a peer its connection
    // too after a few tries.
    if ((where & SSL_CB_WRITE) != 0 && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION && options_.is_server) {
      CountPeerRenegotiation();
    }
    return;
  }
  if ((where & SSL_CB_WRITE) != 0) sent_alert_ = ret & 0xff;
  if ((where & SSL_CB_READ) != 0) received_alert_ = ret & 0xff;
}

void Impl::MessageCallback(int write_p, int /*version*/, int content_type, const void* buf, size_t len, SSL* ssl,
                           void* /*arg*/) {
  Impl* self = From(ssl);
  if (self == nullptr || content_type != SSL3_RT_HANDSHAKE || len == 0) return;
  const auto* message = static_cast<const unsigned char*>(buf);
  self->OnHandshakeMessage(write_p != 0, message[0], message, len);
}

void Impl::OnHandshakeMessage(bool sent, int type, const unsigned char* message, size_t len) {
  if (type == SSL3_MT_KEY_UPDATE) {
    (sent ? stats_.key_updates_sent : stats_.key_updates_received)++;
    // RFC 8446 §4.6.3: update_requested (1) makes us answer with our own
    // KeyUpdate. A peer asking again and again without sending data makes us
    // do work and queue output for nothing: past the limit, the connection
    // ends (after this record; see ReadPlaintext).
    const bool requested = len >= 5 && message[4] == SSL_KEY_UPDATE_REQUESTED;
    if (!sent && requested && ++key_update_requests_ > options_.max_key_updates) {
      SetPendingFailure(MakeError(absl::StatusCode::kAborted, "ERR_TLS_TOO_MANY_KEY_UPDATES",
                                  absl::StrCat("the peer asked for more than ", options_.max_key_updates,
                                               " key updates without sending data")),
                        SSL_AD_INTERNAL_ERROR);
    }
  }
  if (type == SSL3_MT_FINISHED && !sent && handshake_done_once_) peer_finished_ = true;
}

}  // namespace tlsengine
