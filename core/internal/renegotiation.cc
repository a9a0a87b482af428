// Renegotiation (TLS 1.2), post-handshake authentication and key update
// (TLS 1.3): ours on request, the peer's counted against Node's limits.
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;

bool Impl::CountPeerRenegotiation() {
  const absl::Time previous = last_handshake_start_;
  last_handshake_start_ = now_;
  reneg_count_ = now_ - previous >= options_.client_reneg_window ? 1 : reneg_count_ + 1;
  if (reneg_count_ <= options_.client_reneg_limit) return true;
  SetPendingFailure(
      MakeError(absl::StatusCode::kAborted, "ERR_TLS_SESSION_ATTACK", "TLS session renegotiation attack detected"),
      SSL_AD_HANDSHAKE_FAILURE);
  return false;
}

void Impl::OnRenegotiationDone() {
  peer_finished_ = false;
  renegotiating_ = false;
  reneg_clock_pending_ = false;
  handshake_deadline_ = absl::InfiniteFuture();
  stats_.renegotiations++;
  if (!options_.is_server && SSL_session_reused(ssl_.get())) CheckResumedIdentity();
  if (!UpdateAuthorization()) return;
  Push(EventType::kRenegotiated);
}

absl::Status Impl::Renegotiate(const RenegotiateOptions& options) {
  auto cannot = [](absl::string_view why) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_TLS_RENEGOTIATE",
                     absl::StrCat("Attempt to renegotiate TLS session failed: ", why));
  };
  if (state_ != State::kOpen) return cannot("the connection is not secure");
  if (renegotiating_) return cannot("a renegotiation is already under way");
  SSL* ssl = ssl_.get();
  const bool tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
  if (tls13 && !(options_.is_server && options.request_cert)) {
    return cannot("TLS 1.3 has no renegotiation (use KeyUpdate, or request_cert on a server)");
  }
  if (options_.is_server) {
    options_.request_cert = options.request_cert;
    options_.reject_unauthorized = options.reject_unauthorized;
    int mode = SSL_VERIFY_NONE;
    if (options.request_cert) {
      mode = SSL_VERIFY_PEER | (options.reject_unauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
      if (tls13) mode |= SSL_VERIFY_POST_HANDSHAKE;
    }
    SSL_set_verify(ssl, mode, &Impl::VerifyCallback);
  }
  ResetVerification();
  ERR_clear_error();
  int started = tls13 ? SSL_verify_client_post_handshake(ssl) : SSL_renegotiate(ssl);
  if (started != 1) {
    std::string detail = internal::DrainErrors();
    return cannot(detail.empty() ? "refused by OpenSSL" : detail);
  }
  renegotiating_ = true;
  // Node's server fails a renegotiation after handshakeTimeout; so do both
  // of our sides. The clock starts at the next call that brings `now`.
  reneg_clock_pending_ = true;
  // Sends the HelloRequest, ClientHello or CertificateRequest now.
  SSL_do_handshake(ssl);
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status Impl::KeyUpdate(bool request_peer) {
  if (state_ != State::kOpen || SSL_version(ssl_.get()) < TLS1_3_VERSION) {
    return internal::InvalidState("KeyUpdate: needs a secure TLS 1.3 connection");
  }
  ERR_clear_error();
  if (SSL_key_update(ssl_.get(), request_peer ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("KeyUpdate: ", internal::DrainErrors()));
  }
  SSL_do_handshake(ssl_.get());  // sends the KeyUpdate message now
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status TlsConnection::Renegotiate(const RenegotiateOptions& options) { return impl_->Renegotiate(options); }
absl::Status TlsConnection::KeyUpdate(bool request_peer) { return impl_->KeyUpdate(request_peer); }

}  // namespace tlsengine
