// Set-up and the handshake: the options checked and the SSL made (a
// server's only once its ClientHello is here), SSL_do_handshake's outcomes,
// and the status a failed handshake or record operation reports.
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using internal::InvalidOption;

using internal::OpenSslPtr;

absl::Status TlsConnection::Impl::Init(absl::Time now) {
  now_ = now;
  if (!options_.secure_context) return InvalidOption("secure_context: required");
  if (options_.max_input_buffer < internal::kMaxRecord) {
    return InvalidOption(absl::StrCat("max_input_buffer: must be at least ", internal::kMaxRecord,
                                      " bytes (one maximal TLS record)"));
  }
  if (options_.max_output_buffer < internal::kMaxRecord || options_.max_write_buffer == 0) {
    return InvalidOption(absl::StrCat("max_output_buffer: must be at least ", internal::kMaxRecord,
                                      " bytes, max_write_buffer at least 1"));
  }
  if (options_.handshake_timeout <= absl::ZeroDuration()) {
    return InvalidOption("handshake_timeout: must be positive");
  }
  if (options_.client_reneg_limit < 0 || options_.client_reneg_window <= absl::ZeroDuration()) {
    return InvalidOption("client_reneg_limit: must be >= 0, client_reneg_window positive");
  }
  absl::StatusOr<std::string> alpn = internal::ProtocolListWire("alpn_protocols", options_.alpn_protocols);
  if (!alpn.ok()) return alpn.status();
  alpn_wire_ = *alpn;
  absl::StatusOr<std::string> npn = internal::ProtocolListWire("npn_protocols", options_.npn_protocols);
  if (!npn.ok()) return npn.status();
  npn_wire_ = *npn;
  // A client offers NPN only from a context that has a list (OpenSSL sends
  // the extension whenever the context has a select callback).
  if (!options_.is_server && !npn_wire_.empty() && options_.secure_context->options().npn_protocols.empty()) {
    return InvalidOption(
        "npn_protocols: a client needs NPN in its SecureContext too (SecureContextOptions::npn_protocols); "
        "this list then replaces the context's for the connection");
  }

  ERR_clear_error();
  active_context_ = options_.secure_context;
  native_context_ = NativeHandle(*active_context_);
  if (options_.keylog) {
    // The twin with OpenSSL's key-log callback (see KeylogNativeHandle).
    absl::StatusOr<SSL_CTX*> keylog = KeylogNativeHandle(*active_context_);
    if (!keylog.ok()) return keylog.status();
    native_context_ = *keylog;
  }
  // A server makes its SSL once a ClientHello has arrived (NewSsl, from
  // DoHandshake): a connection that sends nothing, or stalls in its first
  // flight, costs no OpenSSL state. A client needs it now, for its
  // ClientHello.
  if (options_.is_server) return absl::OkStatus();
  if (absl::Status made = NewSsl(); !made.ok()) return made;

  SSL_set_connect_state(ssl_.get());
  SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER, &Impl::VerifyCallback);
  std::string sni = options_.servername;
  if (sni.empty() && !options_.host.empty() && !internal::ParseIpAddress(options_.host, nullptr)) sni = options_.host;
  if (!sni.empty() && SSL_set_tlsext_host_name(ssl_.get(), sni.c_str()) != 1) {
    return InvalidOption(absl::StrCat("servername: not a valid SNI host name: '", sni, "'"));
  }
  identity_host_ = !options_.servername.empty() ? options_.servername
                   : !options_.host.empty()     ? options_.host
                                                : "localhost";
  if (!alpn->empty() &&
      SSL_set_alpn_protos(ssl_.get(), reinterpret_cast<const unsigned char*>(alpn->data()),
                          static_cast<unsigned int>(alpn->size())) != 0) {
    return InvalidOption("alpn_protocols: rejected by OpenSSL");
  }
  if (options_.request_ocsp) SSL_set_tlsext_status_type(ssl_.get(), TLSEXT_STATUSTYPE_ocsp);
  if (options_.post_handshake_auth) SSL_set_post_handshake_auth(ssl_.get(), 1);
  if (absl::Status offered = OfferSession(); !offered.ok()) return offered;
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status TlsConnection::Impl::NewSsl() {
  ssl_.reset(SSL_new(native_context_));
  BIO* bio = ssl_ ? BIO_new(internal::EngineBioMethod(*active_context_)) : nullptr;
  if (bio == nullptr) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("SSL_new failed: ", internal::DrainErrors()));
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  // SSL_set_bio takes ownership of the one reference, for both directions.
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_app_data(ssl_.get(), this);
  SSL_set_info_callback(ssl_.get(), &Impl::InfoCallback);
  SSL_set_msg_callback(ssl_.get(), &Impl::MessageCallback);
  // Plaintext waiting for a renegotiation is retried from wherever the write
  // buffer has moved to.
  SSL_set_mode(ssl_.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (max_send_fragment_ > 0) SSL_set_max_send_fragment(ssl_.get(), static_cast<long>(max_send_fragment_));
  if (!options_.is_server) return absl::OkStatus();

  SSL_set_accept_state(ssl_.get());
  int mode = SSL_VERIFY_NONE;
  if (options_.request_cert) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (options_.reject_unauthorized) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_set_verify(ssl_.get(), mode, &Impl::VerifyCallback);
  if (options_.allow_client_renegotiation) SSL_set_options(ssl_.get(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  return absl::OkStatus();
}

bool TlsConnection::Impl::IsTransportEof(int err) const {
  if (!transport_eof_ || !input_.empty() || read_stalled_) return false;
  return err == SSL_ERROR_WANT_READ || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
         (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

absl::Status TlsConnection::Impl::OpenSslFailure(absl::Status if_empty) {
  internal::OpenSslFailure failure = internal::DrainFailure();
  if (!pending_failure_.ok()) return pending_failure_;
  const int reason = ERR_GET_REASON(failure.primary);
  long verify = SSL_get_verify_result(ssl_.get());
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    if (!identity_status_.ok()) return identity_status_;
    if (verify != X509_V_OK) return internal::VerifyError(verify);
  }
  if (failure.primary == 0) return if_empty;
  absl::StatusCode code = absl::StatusCode::kAborted;
  if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) code = absl::StatusCode::kUnauthenticated;
  return MakeError(code, internal::OpenSslCode(failure.primary), failure.detail);
}

void TlsConnection::Impl::DoHandshake() {
  if (ssl_ == nullptr) {
    // A server's first flight waits in input_ (which ReleaseIdleBuffers
    // keeps near its size) until OpenSSL can take a whole ClientHello.
    FirstFlight first = CheckFirstFlight();
    if (first == FirstFlight::kIncomplete) return;
    if (first == FirstFlight::kTooLarge) {
      // What OpenSSL sends for a message above its own limit: a plaintext
      // fatal illegal_parameter alert.
      const uint8_t alert[] = {SSL3_RT_ALERT, SSL3_VERSION_MAJOR, 1, 0, 2, SSL3_AL_FATAL, SSL_AD_ILLEGAL_PARAMETER};
      output_.Append(alert, sizeof(alert));
      sent_alert_ = SSL_AD_ILLEGAL_PARAMETER;
      Fail(MakeError(absl::StatusCode::kAborted, "ERR_SSL_EXCESSIVE_MESSAGE_SIZE",
                     absl::StrCat("the ClientHello does not fit max_input_buffer (", options_.max_input_buffer,
                                  " bytes)")));
      return;
    }
    if (absl::Status made = NewSsl(); !made.ok()) {
      Fail(made);
      return;
    }
  }
  internal::ClearErrorQueue();
  SetVerifyTime();
  read_stalled_ = false;
  int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    OnHandshakeDone();
    return;
  }
  int err = SSL_get_error(ssl_.get(), r);
  // Suspended in a callback: the event is queued; the answer resumes us.
  if (err == SSL_ERROR_WANT_CLIENT_HELLO_CB || err == SSL_ERROR_WANT_X509_LOOKUP) return;
  if (err == SSL_ERROR_WANT_READ && read_stalled_ && !pending_failure_.ok()) {
    Fail(pending_failure_);
    return;
  }
  if (err == SSL_ERROR_WANT_READ && (read_stalled_ || !(transport_eof_ && input_.empty()))) return;
  if (IsTransportEof(err) || err == SSL_ERROR_ZERO_RETURN) {
    Fail(MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                   options_.is_server
                       ? "socket hang up"
                       : "Client network socket disconnected before secure TLS connection was established"));
    return;
  }
  Fail(OpenSslFailure(MakeError(absl::StatusCode::kAborted, kErrConnReset,
                                "the peer ended the handshake without an alert")));
}

void TlsConnection::Impl::OnHandshakeDone() {
  handshake_deadline_ = absl::InfiniteFuture();
  release_ssl_buffers_ = true;
  SetState(State::kOpen);
  handshake_done_once_ = true;
  waiting_ = Waiting::kNothing;
  if (!options_.is_server && SSL_session_reused(ssl_.get())) CheckResumedIdentity();
  if (!UpdateAuthorization()) return;
  Push(EventType::kSecure);
  // End() during the handshake: what was written goes out, then close_notify.
  MaybeSendCloseNotify();
}

}  // namespace tlsengine
