// The engine's state machine and public API. OpenSSL's callbacks, which
// feed it, are in internal/engine_callbacks.cc.
#include "core/tls_connection.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/openssl_util.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using internal::OpenSslPtr;

absl::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kHandshakeStart: return "handshake-start";
    case EventType::kSecure: return "secure";
    case EventType::kData: return "data";
    case EventType::kPeerClosed: return "peer-closed";
    case EventType::kTruncated: return "truncated";
    case EventType::kClosed: return "closed";
    case EventType::kError: return "error";
    case EventType::kSniRequest: return "sni-request";
    case EventType::kResumeSession: return "resume-session";
    case EventType::kNewSession: return "new-session";
    case EventType::kOcspRequest: return "ocsp-request";
    case EventType::kSession: return "session";
    case EventType::kOcspResponse: return "ocsp-response";
    case EventType::kKeylog: return "keylog";
    case EventType::kRenegotiated: return "renegotiated";
    case EventType::kDrain: return "drain";
  }
  return "unknown";
}

namespace {

absl::Status InvalidOption(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, message);
}

absl::Status InvalidState(absl::string_view message) {
  return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, message);
}

std::string ToString(const unsigned char* data, size_t len) {
  return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

// ---- Set-up ----

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
  native_context_ = active_context_->native_handle();
  if (options_.keylog) {
    // The twin with OpenSSL's key-log callback (see KeylogNativeHandle).
    absl::StatusOr<SSL_CTX*> keylog = active_context_->KeylogNativeHandle();
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
  if (options_.session_handle && !options_.session.empty()) {
    return InvalidOption("session, session_handle: give one or the other");
  }
  std::shared_ptr<const TlsSession> session = options_.session_handle;
  if (!options_.session.empty()) {
    absl::StatusOr<std::shared_ptr<const TlsSession>> decoded = TlsSession::FromDer(options_.session);
    if (!decoded.ok()) return InvalidOption("session: not a serialized TLS session");
    session = *std::move(decoded);
  }
  if (session) {
    // Its own copy: the SSL changes the session it uses.
    OpenSslPtr<SSL_SESSION> copy(SSL_SESSION_dup(session->native_handle()));
    if (!copy) return MakeError(absl::StatusCode::kInternal, kErrInternal, "session: cannot copy");
    SSL_set_session(ssl_.get(), copy.get());  // takes its own reference
    // Offered unless the client rejects and would reject its server. The
    // session's chain verdict is read from the SSL, where SSL_set_session
    // copied it (OpenSSL 3.0 has no getter on the session).
    if (!MayOfferSession(copy.get(), SSL_get_verify_result(ssl_.get()))) {
      SSL_set_session(ssl_.get(), nullptr);
      SSL_set_verify_result(ssl_.get(), X509_V_OK);  // a fresh SSL's
    }
  }
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status TlsConnection::Impl::NewSsl() {
  ssl_.reset(SSL_new(native_context_));
  BIO* bio = ssl_ ? BIO_new(active_context_->bio_method()) : nullptr;
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

// ---- The state machine ----

bool TlsConnection::Impl::IsTransportEof(int err) const {
  if (!transport_eof_ || !input_.empty() || read_stalled_) return false;
  return err == SSL_ERROR_WANT_READ || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
         (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

bool TlsConnection::Impl::MayRead() {
  if (events_.empty() && output_.size() < options_.max_output_buffer && pending_failure_.ok()) return true;
  read_stalled_ = true;
  return false;
}

void TlsConnection::Impl::Push(Event event) {
  // While a new session waits for the application, Node holds everything
  // but errors: 'secure' comes after the acknowledgement.
  if (new_sessions_pending_ > 0 && event.type != EventType::kNewSession && event.type != EventType::kError) {
    held_events_.push_back(std::move(event));
    return;
  }
  events_.push_back(std::move(event));
}

void TlsConnection::Impl::ReleaseIdleBuffers() {
  if (input_.empty() && !input_.reserved()) input_.Release();
  if (ssl_ == nullptr) input_.ShrinkIfSparse();  // a partial ClientHello costs about its size
  if (output_.empty()) output_.Release();
  if (plaintext_out_.empty()) plaintext_out_.Release();
  read_buf_.Release();
  // OpenSSL's record buffers (about 33 KB) once after each handshake, which
  // is where a connection typically goes idle; otherwise only when the
  // application says so (ReleaseBuffers), as freeing them at every idle
  // poll would reallocate them for every record.
  if (release_ssl_buffers_ && FreeSslBuffers()) release_ssl_buffers_ = false;
  // Also while the first handshake waits for the peer's next flight (or
  // for an answer): OpenSSL refuses while it holds part of a record, and
  // allocates them again when the flight comes.
  if (state_ == State::kHandshaking && ssl_ != nullptr && input_.empty()) SSL_free_buffers(ssl_.get());
}

bool TlsConnection::Impl::FreeSslBuffers() {
  // SSL_free_buffers itself refuses while a record is partly read or
  // written; OpenSSL allocates the buffers again on use.
  return (state_ == State::kOpen || state_ == State::kClosing) && input_.empty() && !SSL_in_init(ssl_.get()) &&
         SSL_free_buffers(ssl_.get()) == 1;
}

void TlsConnection::Impl::Fail(absl::Status status) {
  if (state_ == State::kDone) return;
  if (sent_alert_ >= 0 && !AlertOf(status)) status = WithAlert(std::move(status), sent_alert_);
  if (received_alert_ >= 0 && !AlertOf(status)) status = WithAlert(std::move(status), received_alert_);
  status_ = status;
  state_ = State::kDone;
  handshake_deadline_ = close_deadline_ = absl::InfiniteFuture();
  new_sessions_pending_ = 0;  // the alert must get out
  held_events_.clear();
  plaintext_out_.Release();
  input_.Release();
  ERR_clear_error();
  Event event = internal::MakeEvent(EventType::kError);
  event.status = std::move(status);
  events_.push_back(std::move(event));
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

TlsConnection::Impl::FirstFlight TlsConnection::Impl::CheckFirstFlight() const {
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

bool TlsConnection::Impl::UpdateAuthorization() {
  const bool checks = !options_.is_server || options_.request_cert;
  if (!checks) return true;
  OpenSslPtr<X509> peer(SSL_get1_peer_certificate(ssl_.get()));
  long verify = SSL_get_verify_result(ssl_.get());
  if (!peer) {
    // Node reports a missing certificate with this code.
    authorization_ = MakeError(absl::StatusCode::kUnauthenticated, "UNABLE_TO_GET_ISSUER_CERT",
                               "peer did not return a certificate");
  } else if (verify != X509_V_OK) {
    authorization_ = internal::VerifyError(verify);
  } else {
    authorization_ = identity_status_;
  }
  authorized_ = authorization_.ok();
  if (!authorized_ && options_.reject_unauthorized) {
    Fail(authorization_);
    return false;
  }
  return true;
}

void TlsConnection::Impl::OnHandshakeDone() {
  handshake_deadline_ = absl::InfiniteFuture();
  release_ssl_buffers_ = true;
  state_ = State::kOpen;
  handshake_done_once_ = true;
  waiting_ = Waiting::kNothing;
  if (!options_.is_server && SSL_session_reused(ssl_.get())) CheckResumedIdentity();
  if (!UpdateAuthorization()) return;
  Push(EventType::kSecure);
  // End() during the handshake: what was written goes out, then close_notify.
  MaybeSendCloseNotify();
}

void TlsConnection::Impl::OnRenegotiationDone() {
  peer_finished_ = false;
  renegotiating_ = false;
  reneg_clock_pending_ = false;
  handshake_deadline_ = absl::InfiniteFuture();
  stats_.renegotiations++;
  if (!options_.is_server && SSL_session_reused(ssl_.get())) CheckResumedIdentity();
  if (!UpdateAuthorization()) return;
  Push(EventType::kRenegotiated);
}

bool TlsConnection::Impl::CountPeerRenegotiation() {
  const absl::Time previous = last_handshake_start_;
  last_handshake_start_ = now_;
  reneg_count_ = now_ - previous >= options_.client_reneg_window ? 1 : reneg_count_ + 1;
  if (reneg_count_ <= options_.client_reneg_limit) return true;
  if (pending_failure_.ok()) {
    pending_failure_ = MakeError(absl::StatusCode::kAborted, "ERR_TLS_SESSION_ATTACK",
                                 "TLS session renegotiation attack detected");
    pending_alert_ = SSL_AD_HANDSHAKE_FAILURE;
  }
  return false;
}

void TlsConnection::Impl::ReadPlaintext() {
  internal::ClearErrorQueue();
  SetVerifyTime();
  read_stalled_ = false;
  write_blocked_ = false;  // whatever the handshake waited for may be here
  size_t n = 0;
  // Plaintext is never longer than the ciphertext it comes from: when all
  // there is to decrypt is small, no 16 KB buffer is allocated for it.
  absl::Span<uint8_t> buf = SSL_has_pending(ssl_.get()) == 0 && input_.size() <= sizeof(small_read_)
                                ? absl::MakeSpan(small_read_)
                                : read_buf_.Reserve(internal::kMaxPlaintextRecord);
  int r = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
  if (state_ == State::kDone) return;  // a callback ended the connection
  if (!pending_failure_.ok()) {
    // A limit a callback counted (key updates, refused renegotiations).
    Fail(pending_failure_);
    return;
  }
  if (peer_finished_ && SSL_is_init_finished(ssl_.get())) {
    OnRenegotiationDone();
    if (state_ == State::kDone) return;
  }
  if (r == 1) {
    key_update_requests_ = 0;
    session_events_ = 0;
    // After our close_notify the wait bounds the peer's silence, not its
    // data: a peer still sending is answering (Node keeps reading).
    if (state_ == State::kClosing) close_deadline_ = now_ + options_.close_timeout;
    // Handed out by NextEvent, which called us, without the deque when
    // nothing is queued before it.
    data_ready_ = absl::MakeConstSpan(buf.data(), n);
    has_data_ready_ = true;
    return;
  }
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    if (peer_closed_) return;
    peer_closed_ = true;
    Push(EventType::kPeerClosed);
    if (state_ == State::kClosing) FinishClose();
    return;
  }
  if (err == SSL_ERROR_WANT_READ && (read_stalled_ || !(transport_eof_ && input_.empty()))) return;
  if (IsTransportEof(err)) {
    ERR_clear_error();
    if (peer_closed_) return;
    // Transport EOF without close_notify (RFC 8446 §6.1): possibly a
    // truncation attack; reported, never mistaken for a clean close.
    peer_closed_ = true;
    truncated_ = true;
    Push(EventType::kTruncated);
    if (state_ == State::kClosing) FinishClose();
    return;
  }
  Fail(OpenSslFailure(MakeError(absl::StatusCode::kInternal, kErrInternal, "TLS read failed")));
}

void TlsConnection::Impl::EncryptPending() {
  while (state_ == State::kOpen && !write_blocked_ && !plaintext_out_.empty() &&
         output_.size() < options_.max_output_buffer) {
    internal::ClearErrorQueue();
    size_t chunk = std::min(plaintext_out_.size(), internal::kMaxPlaintextRecord);
    size_t written = 0;
    if (SSL_write_ex(ssl_.get(), plaintext_out_.data(), chunk, &written) != 1) {
      int err = SSL_get_error(ssl_.get(), 0);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        // A renegotiation is under way: the plaintext waits for it (the
        // retry passes the same bytes: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
        write_blocked_ = true;
        ERR_clear_error();
        return;
      }
      Fail(OpenSslFailure(MakeError(absl::StatusCode::kInternal, kErrInternal, "TLS write failed")));
      return;
    }
    plaintext_out_.Consume(written);
  }
  if (plaintext_out_.empty() && state_ != State::kDone) {
    if (write_was_full_) {
      write_was_full_ = false;
      Push(EventType::kDrain);
    }
  }
  MaybeSendCloseNotify();
}

size_t TlsConnection::Impl::EncryptDirect(absl::Span<const uint8_t> data) {
  size_t done = 0;
  while (state_ == State::kOpen && !write_blocked_ && new_sessions_pending_ == 0 && plaintext_out_.empty() &&
         options_.max_write_buffer >= internal::kMaxPlaintextRecord &&
         output_.size() < options_.max_output_buffer && data.size() - done >= internal::kMaxPlaintextRecord) {
    internal::ClearErrorQueue();
    size_t written = 0;
    if (SSL_write_ex(ssl_.get(), data.data() + done, internal::kMaxPlaintextRecord, &written) != 1) {
      int err = SSL_get_error(ssl_.get(), 0);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        // As in EncryptPending: the same bytes are retried from the write
        // buffer once the renegotiation is done (the caller buffers them).
        write_blocked_ = true;
        ERR_clear_error();
        return done;
      }
      Fail(OpenSslFailure(MakeError(absl::StatusCode::kInternal, kErrInternal, "TLS write failed")));
      return done;
    }
    done += written;
  }
  return done;
}

void TlsConnection::Impl::MaybeSendCloseNotify() {
  // After a truncation OpenSSL is in its error state and sends nothing more
  // (what it queued, if anything, is still drained): End() just finishes.
  if (end_requested_ && truncated_ && !close_notify_sent_ && state_ == State::kOpen) {
    close_notify_sent_ = true;
    FinishClose();
    return;
  }
  // Not while a kNewSession waits, nor during a renegotiation (OpenSSL
  // refuses to shut down in init): retried from Output() and AckNewSession().
  if (!end_requested_ || close_notify_sent_ || state_ != State::kOpen || !plaintext_out_.empty() ||
      new_sessions_pending_ > 0 || SSL_in_init(ssl_.get())) {
    return;
  }
  ERR_clear_error();
  SSL_shutdown(ssl_.get());  // queues close_notify in output_
  ERR_clear_error();
  close_notify_sent_ = true;
  if (!end_wait_for_peer_ || peer_closed_) {
    FinishClose();
  } else {
    state_ = State::kClosing;
    close_deadline_ = now_ + options_.close_timeout;
  }
}

void TlsConnection::Impl::Step() {
  switch (state_) {
    case State::kStart:
      state_ = State::kHandshaking;
      handshake_deadline_ = now_ + options_.handshake_timeout;
      last_handshake_start_ = now_;
      Push(EventType::kHandshakeStart);
      DoHandshake();
      return;
    case State::kHandshaking:
      DoHandshake();
      return;
    case State::kOpen:
    case State::kClosing:
      // Without input, buffered or to come as EOF, SSL_read can only say
      // it wants more: not asked (it would be a second read per record).
      if (!peer_closed_ && (!input_.empty() || transport_eof_ || SSL_has_pending(ssl_.get()) == 1)) {
        ReadPlaintext();
      }
      return;
    case State::kDone:
      return;
  }
}

void TlsConnection::Impl::FinishClose() {
  state_ = State::kDone;
  close_deadline_ = handshake_deadline_ = absl::InfiniteFuture();
  plaintext_out_.Release();
  input_.Release();
  Push(EventType::kClosed);
}

// ---- Public API ----

TlsConnection::TlsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsConnection::~TlsConnection() = default;

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::Create(ConnectionOptions options, absl::Time now) {
  auto impl = std::make_unique<Impl>(std::move(options));
  absl::Status status = impl->Init(now);
  ERR_clear_error();
  if (!status.ok()) return status;
  return std::unique_ptr<TlsConnection>(new TlsConnection(std::move(impl)));
}

absl::Span<uint8_t> TlsConnection::InputSpace() {
  Impl& s = *impl_;
  if (s.input_.reserved()) return s.input_.reserved_span();
  if (!s.interest_read()) return {};
  // One maximal record at a time (bounded by what is left): reads come in
  // record-sized pieces and the buffer grows only as far as it must.
  size_t n = std::min(s.options_.max_input_buffer - s.input_.size(), internal::kMaxRecord);
  return s.input_.Hold(n, s.options_.max_input_buffer);
}

absl::Status TlsConnection::CommitInput(size_t n) {
  Impl& s = *impl_;
  if (!s.input_.reserved()) {
    if (n == 0 && !s.status_.ok()) return s.status_;
    return InvalidState(absl::StrCat("CommitInput: ", n, " bytes committed without a reservation from InputSpace()"));
  }
  const size_t reserved = s.input_.reservation();
  if (n > reserved) {
    return InvalidOption(absl::StrCat("CommitInput: ", n, " bytes committed but only ", reserved, " reserved"));
  }
  if (s.state_ == Impl::State::kDone || s.transport_eof_) {
    s.input_.Commit(0);
    if (s.state_ == Impl::State::kDone && s.input_.empty()) s.input_.Release();
    if (!s.status_.ok()) return s.status_;
    if (n == 0) return absl::OkStatus();
    return InvalidState("CommitInput: the connection no longer takes input");
  }
  s.input_.Commit(n);
  return absl::OkStatus();
}

absl::StatusOr<size_t> TlsConnection::Feed(absl::Span<const uint8_t> data) {
  absl::Span<uint8_t> space = InputSpace();
  if (!impl_->status_.ok()) {
    if (impl_->input_.reserved()) CommitInput(0).IgnoreError();  // the sticky error is returned below
    return impl_->status_;
  }
  if (space.empty()) return 0;
  size_t n = std::min(space.size(), data.size());
  if (n > 0) std::memcpy(space.data(), data.data(), n);
  absl::Status status = CommitInput(n);
  if (!status.ok()) return status;
  return n;
}

void TlsConnection::OnTransportEof() { impl_->transport_eof_ = true; }

std::optional<Event> TlsConnection::NextEvent(absl::Time now) {
  Impl& s = *impl_;
  s.now_ = now;
  if (s.reneg_clock_pending_) {
    s.reneg_clock_pending_ = false;
    s.handshake_deadline_ = now + s.options_.handshake_timeout;
    s.last_handshake_start_ = now;
  }
  if (s.events_.empty()) {
    if (now >= NextDeadline()) OnTimer(now);
    if (s.events_.empty() && s.new_sessions_pending_ == 0) s.Step();
    if (s.has_data_ready_) {
      s.has_data_ready_ = false;
      Event data = internal::MakeEvent(EventType::kData);
      data.data = s.data_ready_;
      // Callbacks during that read (tickets, key log) queued theirs first.
      if (s.events_.empty() && s.new_sessions_pending_ == 0) return data;
      s.Push(std::move(data));
    }
  }
  if (s.events_.empty()) {
    s.ReleaseIdleBuffers();
    return std::nullopt;
  }
  Event event = std::move(s.events_.front());
  s.events_.pop_front();
  return event;
}

absl::StatusOr<size_t> TlsConnection::Write(absl::Span<const uint8_t> data) {
  Impl& s = *impl_;
  if (!s.status_.ok()) return s.status_;
  if (s.end_requested_ || s.state_ == Impl::State::kClosing || s.state_ == Impl::State::kDone) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_STREAM_WRITE_AFTER_END", "write after end");
  }
  // Whole records straight from the caller's bytes when nothing is
  // buffered before them (no copy into the write buffer); the rest, and
  // small writes, are buffered and coalesced as before.
  // Those count against max_write_buffer until the next Output(), as if
  // they had waited in the buffer: Write() takes what it always took.
  const size_t held = s.plaintext_out_.size() + s.direct_since_output_;
  const size_t room = s.options_.max_write_buffer - std::min(s.options_.max_write_buffer, held);
  const size_t n = std::min(room, data.size());
  if (n < data.size()) s.write_was_full_ = true;
  const size_t direct = s.EncryptDirect(data.first(n));
  if (!s.status_.ok()) return s.status_;
  s.direct_since_output_ += direct;
  s.plaintext_out_.Append(data.data() + direct, n - direct);
  return n;
}

absl::StatusOr<size_t> TlsConnection::Write(absl::string_view data) {
  return Write(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

absl::InlinedVector<absl::Span<const uint8_t>, 2> TlsConnection::Output() {
  absl::InlinedVector<absl::Span<const uint8_t>, 2> out;
  Impl& s = *impl_;
  if (s.new_sessions_pending_ > 0) return out;  // held until AckNewSession()
  s.direct_since_output_ = 0;
  s.EncryptPending();
  if (!s.output_.empty()) out.push_back(absl::MakeConstSpan(s.output_.data(), s.output_.size()));
  return out;
}

size_t TlsConnection::OutputSize() const { return impl_->new_sessions_pending_ > 0 ? 0 : impl_->output_.size(); }

absl::Status TlsConnection::ConsumeOutput(size_t n) {
  Impl& s = *impl_;
  const size_t pending = OutputSize();
  if (n > pending) {
    return InvalidOption(absl::StrCat("ConsumeOutput: ", n, " bytes consumed but only ", pending, " pending"));
  }
  // Emptied, the buffer keeps its memory until NextEvent finds the
  // connection idle (ReleaseIdleBuffers): not an allocation per record.
  s.output_.Consume(n);
  return absl::OkStatus();
}

bool TlsConnection::Impl::interest_read() const {
  return state_ != State::kDone && !transport_eof_ && input_.size() < options_.max_input_buffer &&
         output_.size() < options_.max_output_buffer;
}

Interest TlsConnection::interest() const {
  const Impl& s = *impl_;
  Interest want;
  want.read = s.input_.reserved() || s.interest_read();
  if (s.new_sessions_pending_ == 0) {
    const bool can_encrypt = s.state_ == Impl::State::kOpen && !s.write_blocked_ &&
                             s.output_.size() < s.options_.max_output_buffer;
    const bool close_notify_due = s.end_requested_ && !s.close_notify_sent_ && s.state_ == Impl::State::kOpen &&
                                  !SSL_in_init(s.ssl_.get());
    want.write = !s.output_.empty() || (can_encrypt && (!s.plaintext_out_.empty() || close_notify_due));
  }
  want.deadline = NextDeadline();
  return want;
}

absl::Time TlsConnection::NextDeadline() const {
  return std::min(impl_->handshake_deadline_, impl_->close_deadline_);
}

void TlsConnection::OnTimer(absl::Time now) {
  Impl& s = *impl_;
  s.now_ = now;
  if ((s.state_ == Impl::State::kHandshaking || s.state_ == Impl::State::kOpen) && now >= s.handshake_deadline_) {
    s.Fail(MakeError(absl::StatusCode::kDeadlineExceeded, kErrHandshakeTimeout,
                     s.state_ == Impl::State::kHandshaking ? "TLS handshake timeout"
                                                           : "TLS renegotiation timeout"));
  }
  if (s.state_ == Impl::State::kClosing && now >= s.close_deadline_) {
    s.Fail(MakeError(absl::StatusCode::kDeadlineExceeded, kErrCloseTimeout,
                     "the peer did not answer close_notify in time"));
  }
}

void TlsConnection::End(absl::Time now, bool wait_for_peer) {
  Impl& s = *impl_;
  s.now_ = now;
  if (s.end_requested_ || s.state_ == Impl::State::kDone) return;
  s.end_requested_ = true;
  s.end_wait_for_peer_ = wait_for_peer;
  // Now if nothing is left to send first; else when Output() has sent it,
  // or when the handshake completes.
  if (s.new_sessions_pending_ == 0) s.MaybeSendCloseNotify();
}

bool TlsConnection::ReleaseBuffers() {
  Impl& s = *impl_;
  if (s.input_.reserved() || !s.input_.empty() || !s.output_.empty() || !s.plaintext_out_.empty()) return false;
  s.ReleaseIdleBuffers();
  return s.state_ == Impl::State::kDone || s.FreeSslBuffers();
}

void TlsConnection::Destroy() {
  Impl& s = *impl_;
  if (s.state_ == Impl::State::kDone) {
    s.events_.clear();
    return;
  }
  s.events_.clear();
  s.held_events_.clear();
  s.new_sessions_pending_ = 0;
  s.end_requested_ = true;
  s.output_.Release();
  s.FinishClose();
}

bool TlsConnection::is_server() const { return impl_->options_.is_server; }
bool TlsConnection::secure() const {
  return impl_->state_ == Impl::State::kOpen || impl_->state_ == Impl::State::kClosing;
}
bool TlsConnection::finished() const { return impl_->state_ == Impl::State::kDone; }
absl::Status TlsConnection::status() const { return impl_->status_; }
bool TlsConnection::authorized() const { return impl_->authorized_; }
std::string TlsConnection::authorization_error() const { return NodeCode(impl_->authorization_); }
absl::Status TlsConnection::authorization_status() const { return impl_->authorization_; }

std::optional<CertificateInfo> TlsConnection::GetPeerCertificate(bool detailed) const {
  SSL* ssl = impl_->ssl_.get();
  if (ssl == nullptr) return std::nullopt;  // a server before the ClientHello
  OpenSslPtr<X509> leaf(SSL_get1_peer_certificate(ssl));
  if (!leaf) return std::nullopt;
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(leaf.get());
  if (!info.ok()) return std::nullopt;
  if (!detailed) return *std::move(info);
  // The verified chain runs leaf first up to the trust anchor; without one
  // (verification failed), what the peer sent.
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);  // borrowed
  if (chain == nullptr || sk_X509_num(chain) == 0) chain = SSL_get_peer_cert_chain(ssl);  // borrowed
  std::vector<X509*> issuers;  // borrowed from `chain`
  X509* current = leaf.get();
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* candidate = sk_X509_value(chain, i);
    if (X509_cmp(candidate, current) == 0) continue;
    if (X509_check_issued(candidate, current) != X509_V_OK) continue;
    issuers.push_back(candidate);
    current = candidate;
  }
  std::shared_ptr<const CertificateInfo> next;
  for (auto it = issuers.rbegin(); it != issuers.rend(); ++it) {
    absl::StatusOr<CertificateInfo> issuer = internal::InfoFromX509(*it);
    if (!issuer.ok()) break;
    issuer->issuer_certificate = next;
    next = std::make_shared<const CertificateInfo>(*std::move(issuer));
  }
  info->issuer_certificate = next;
  return *std::move(info);
}

std::optional<CertificateInfo> TlsConnection::GetCertificate() const {
  // Before a server's SSL exists, the certificate it will start with.
  X509* own = impl_->ssl_ ? SSL_get_certificate(impl_->ssl_.get())
                          : SSL_CTX_get0_certificate(impl_->native_context_);  // borrowed
  if (own == nullptr) return std::nullopt;
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(own);
  if (!info.ok()) return std::nullopt;
  return *std::move(info);
}

std::optional<CipherInfo> TlsConnection::GetCipher() const {
  if (!impl_->ssl_) return std::nullopt;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(impl_->ssl_.get());  // static
  if (cipher == nullptr) return std::nullopt;
  CipherInfo info;
  info.name = SSL_CIPHER_get_name(cipher);
  const char* standard = SSL_CIPHER_standard_name(cipher);
  info.standard_name = standard != nullptr ? standard : info.name;
  info.version = SSL_CIPHER_get_version(cipher);
  return info;
}

std::string TlsConnection::protocol() const {
  if (!secure() && !impl_->handshake_done_once_) return "";
  return SSL_get_version(impl_->ssl_.get());
}

std::string TlsConnection::servername() const {
  if (!impl_->ssl_) return "";
  const char* name = SSL_get_servername(impl_->ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

bool TlsConnection::is_session_reused() const { return impl_->ssl_ && SSL_session_reused(impl_->ssl_.get()) == 1; }

// ---- Answers to suspensions ----

// Shared by the Answer* calls: `call` is valid only while `what` waits. A
// value goes to `slot` for the callback OpenSSL will invoke again; an error
// goes to pending_failure_, and that callback then fails the handshake, so
// the peer gets an alert and the connection ends with the application's
// error.
template <typename T>
absl::Status TlsConnection::Impl::Answer(Waiting what, absl::string_view call, absl::StatusOr<T> answer,
                                         bool& answered, T& slot, int alert) {
  if (waiting_ != what) return InvalidState(absl::StrCat(call, ": nothing of the kind is waiting"));
  waiting_ = Waiting::kNothing;
  answered = true;
  if (!answer.ok()) {
    pending_failure_ = answer.status();
    pending_alert_ = alert;
    return absl::OkStatus();
  }
  slot = *std::move(answer);
  return absl::OkStatus();
}

absl::Status TlsConnection::AnswerSni(absl::StatusOr<std::shared_ptr<const SecureContext>> context) {
  return impl_->Answer(Impl::Waiting::kSni, "AnswerSni", std::move(context), impl_->sni_answered_,
                       impl_->sni_answer_, SSL_AD_UNRECOGNIZED_NAME);
}

absl::Status TlsConnection::AnswerResumeSession(absl::StatusOr<std::string> session) {
  return impl_->Answer(Impl::Waiting::kResumeSession, "AnswerResumeSession", std::move(session),
                       impl_->resume_answered_, impl_->resume_answer_, SSL_AD_INTERNAL_ERROR);
}

absl::Status TlsConnection::AnswerOcspRequest(absl::StatusOr<std::string> response) {
  // OpenSSL sends internal_error when the certificate callback fails.
  return impl_->Answer(Impl::Waiting::kOcsp, "AnswerOcspRequest", std::move(response), impl_->ocsp_answered_,
                       impl_->ocsp_answer_, SSL_AD_INTERNAL_ERROR);
}

absl::Status TlsConnection::AckNewSession(absl::Status stored) {
  Impl& s = *impl_;
  if (s.new_sessions_pending_ == 0) return InvalidState("AckNewSession: no new session is waiting");
  if (!stored.ok()) {
    s.Fail(stored);
    return absl::OkStatus();
  }
  if (--s.new_sessions_pending_ > 0) return absl::OkStatus();
  for (Event& e : s.held_events_) s.events_.push_back(std::move(e));
  s.held_events_.clear();
  // End() while the session waited.
  s.MaybeSendCloseNotify();
  return absl::OkStatus();
}

// ---- Sessions and protocols ----

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
  return TlsSession::FromCopyOf(session);
}

std::string TlsConnection::GetTlsTicket() const {
  if (!impl_->ssl_) return "";
  SSL_SESSION* session = SSL_get_session(impl_->ssl_.get());  // borrowed
  if (session == nullptr || !SSL_SESSION_has_ticket(session)) return "";
  const unsigned char* ticket = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &len);
  return ToString(ticket, len);
}

std::string TlsConnection::alpn_protocol() const {
  if (!impl_->ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(impl_->ssl_.get(), &p, &len);
  return ToString(p, len);
}

std::string TlsConnection::npn_protocol() const {
  if (!impl_->options_.is_server) return impl_->npn_selected_;
  if (!impl_->ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_next_proto_negotiated(impl_->ssl_.get(), &p, &len);
  return ToString(p, len);
}

// ---- Renegotiation, key update ----

absl::Status TlsConnection::Renegotiate(const RenegotiateOptions& options) {
  Impl& s = *impl_;
  auto cannot = [](absl::string_view why) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_TLS_RENEGOTIATE",
                     absl::StrCat("Attempt to renegotiate TLS session failed: ", why));
  };
  if (s.state_ != Impl::State::kOpen) return cannot("the connection is not secure");
  if (s.renegotiating_) return cannot("a renegotiation is already under way");
  SSL* ssl = s.ssl_.get();
  const bool tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
  if (tls13 && !(s.options_.is_server && options.request_cert)) {
    return cannot("TLS 1.3 has no renegotiation (use KeyUpdate, or request_cert on a server)");
  }
  if (s.options_.is_server) {
    s.options_.request_cert = options.request_cert;
    s.options_.reject_unauthorized = options.reject_unauthorized;
    int mode = SSL_VERIFY_NONE;
    if (options.request_cert) {
      mode = SSL_VERIFY_PEER | (options.reject_unauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
      if (tls13) mode |= SSL_VERIFY_POST_HANDSHAKE;
    }
    SSL_set_verify(ssl, mode, &Impl::VerifyCallback);
  }
  s.chain_failed_ = false;
  // A client keeps its identity verdict until a check replaces it: a
  // renegotiation that resumes, or never completes, runs no check.
  if (s.options_.is_server) s.identity_status_ = absl::OkStatus();
  ERR_clear_error();
  int started = tls13 ? SSL_verify_client_post_handshake(ssl) : SSL_renegotiate(ssl);
  if (started != 1) {
    std::string detail = internal::DrainErrors();
    return cannot(detail.empty() ? "refused by OpenSSL" : detail);
  }
  s.renegotiating_ = true;
  // Node's server fails a renegotiation after handshakeTimeout; so do both
  // of our sides. The clock starts at the next call that brings `now`.
  s.reneg_clock_pending_ = true;
  // Sends the HelloRequest, ClientHello or CertificateRequest now.
  SSL_do_handshake(ssl);
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status TlsConnection::KeyUpdate(bool request_peer) {
  Impl& s = *impl_;
  if (s.state_ != Impl::State::kOpen || SSL_version(s.ssl_.get()) < TLS1_3_VERSION) {
    return InvalidState("KeyUpdate: needs a secure TLS 1.3 connection");
  }
  ERR_clear_error();
  if (SSL_key_update(s.ssl_.get(), request_peer ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("KeyUpdate: ", internal::DrainErrors()));
  }
  SSL_do_handshake(s.ssl_.get());  // sends the KeyUpdate message now
  ERR_clear_error();
  return absl::OkStatus();
}

// ---- More controls and information ----

bool TlsConnection::SetMaxSendFragment(size_t size) {
  if (size < 512 || size > 16384) return false;
  if (!impl_->ssl_) {
    impl_->max_send_fragment_ = size;  // applied when the server's SSL is made
    return true;
  }
  return SSL_set_max_send_fragment(impl_->ssl_.get(), static_cast<long>(size)) == 1;
}

absl::StatusOr<std::string> TlsConnection::ExportKeyingMaterial(size_t length, absl::string_view label,
                                                               std::optional<absl::string_view> context) const {
  if (!secure()) return InvalidState("ExportKeyingMaterial: the connection is not secure");
  if (length == 0 || length > 1 << 20) return InvalidOption("ExportKeyingMaterial: length must be 1..1048576");
  std::string out(length, '\0');
  ERR_clear_error();
  if (SSL_export_keying_material(impl_->ssl_.get(), reinterpret_cast<unsigned char*>(out.data()), length,
                                 label.data(), label.size(),
                                 context ? reinterpret_cast<const unsigned char*>(context->data()) : nullptr,
                                 context ? context->size() : 0, context.has_value() ? 1 : 0) != 1) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("ExportKeyingMaterial: ", internal::DrainErrors()));
  }
  return out;
}

std::string TlsConnection::GetFinished() const {
  if (!impl_->ssl_) return "";
  unsigned char buf[EVP_MAX_MD_SIZE];
  size_t len = SSL_get_finished(impl_->ssl_.get(), buf, sizeof(buf));
  return ToString(buf, std::min(len, sizeof(buf)));
}

std::string TlsConnection::GetPeerFinished() const {
  if (!impl_->ssl_) return "";
  unsigned char buf[EVP_MAX_MD_SIZE];
  size_t len = SSL_get_peer_finished(impl_->ssl_.get(), buf, sizeof(buf));
  return ToString(buf, std::min(len, sizeof(buf)));
}

std::optional<EphemeralKeyInfo> TlsConnection::GetEphemeralKeyInfo() const {
  if (impl_->options_.is_server || !secure()) return std::nullopt;
  EVP_PKEY* raw = nullptr;
  if (SSL_get_peer_tmp_key(impl_->ssl_.get(), &raw) != 1) return std::nullopt;
  OpenSslPtr<EVP_PKEY> key(raw);  // SSL_get_peer_tmp_key hands us a reference
  EphemeralKeyInfo info;
  info.size = EVP_PKEY_get_bits(key.get());
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_DH:
      info.type = "DH";
      break;
    case EVP_PKEY_EC: {
      info.type = "ECDH";
      char group[80];
      size_t group_len = 0;
      if (EVP_PKEY_get_utf8_string_param(key.get(), "group", group, sizeof(group), &group_len) == 1) {
        int nid = OBJ_txt2nid(group);
        info.name = nid != NID_undef ? OBJ_nid2sn(nid) : group;
      }
      break;
    }
    case EVP_PKEY_X25519:
      info = {"ECDH", "X25519", 253};
      break;
    case EVP_PKEY_X448:
      info = {"ECDH", "X448", 448};
      break;
    default:
      return std::nullopt;
  }
  return info;
}

std::vector<std::string> TlsConnection::GetSharedSigalgs() const {
  std::vector<std::string> out;
  SSL* ssl = impl_->ssl_.get();
  if (ssl == nullptr) return out;
  int count = SSL_get_shared_sigalgs(ssl, 0, nullptr, nullptr, nullptr, nullptr, nullptr);
  for (int i = 0; i < count; ++i) {
    int sign = NID_undef, hash = NID_undef;
    SSL_get_shared_sigalgs(ssl, i, &sign, &hash, nullptr, nullptr, nullptr);
    // Node's spelling (GetSharedSigalgs in node_crypto): "<key>+<hash>".
    std::string name;
    switch (sign) {
      case EVP_PKEY_RSA: name = "RSA+"; break;
      case EVP_PKEY_RSA_PSS: name = "RSA-PSS+"; break;
      case EVP_PKEY_DSA: name = "DSA+"; break;
      case EVP_PKEY_ED25519: name = "Ed25519+"; break;
      case EVP_PKEY_ED448: name = "Ed448+"; break;
      case EVP_PKEY_EC: name = "ECDSA+"; break;
      default: name = absl::StrCat(OBJ_nid2ln(sign) != nullptr ? OBJ_nid2ln(sign) : "UNDEF", "+"); break;
    }
    absl::StrAppend(&name, hash != NID_undef && OBJ_nid2sn(hash) != nullptr ? OBJ_nid2sn(hash) : "UNDEF");
    out.push_back(std::move(name));
  }
  return out;
}

ConnectionStats TlsConnection::stats() const { return impl_->stats_; }

}  // namespace tlsengine
