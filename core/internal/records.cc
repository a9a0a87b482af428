// Application data: decrypting what the peer sent (and the ends it can
// come to), encrypting what the application wrote, and our close_notify.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"

namespace tlsengine {

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
    SetState(State::kClosing);
    close_deadline_ = now_ + options_.close_timeout;
  }
}

}  // namespace tlsengine
