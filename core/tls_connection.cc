// The engine's public entry points and its state machine: the states, the
// one place they change (SetState), the step each takes, events, the end
// of a connection and its buffers. The rest of the engine is split by topic
// in core/internal (see connection_impl.h for the map).
#include "core/tls_connection.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/openssl_util.h"

namespace tlsengine {

using internal::InvalidOption;
using internal::InvalidState;

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

// ---- The state machine ----

// The only place state_ changes. Allowed transitions:
//   kStart       -> kHandshaking (the first step), kDone (Destroy, a failure)
//   kHandshaking -> kOpen (handshake done), kDone (failure, Destroy)
//   kOpen        -> kClosing (our close_notify out, waiting for the peer's), kDone
//   kClosing     -> kDone (the peer's close_notify or end, a failure, a timeout)
//   kDone        -> nothing
void TlsConnection::Impl::SetState(State next) {
  bool allowed = false;
  switch (state_) {
    case State::kStart: allowed = next == State::kHandshaking || next == State::kDone; break;
    case State::kHandshaking: allowed = next == State::kOpen || next == State::kDone; break;
    case State::kOpen: allowed = next == State::kClosing || next == State::kDone; break;
    case State::kClosing: allowed = next == State::kDone; break;
    case State::kDone: allowed = false; break;
  }
  assert(allowed && "TlsConnection::Impl::SetState: a transition outside the table");
  (void)allowed;
  state_ = next;
}

void TlsConnection::Impl::SetPendingFailure(absl::Status failure, int alert) {
  if (!pending_failure_.ok()) return;
  pending_failure_ = std::move(failure);
  pending_alert_ = alert;
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
  SetState(State::kDone);
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

void TlsConnection::Impl::Step() {
  switch (state_) {
    case State::kStart:
      SetState(State::kHandshaking);
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
  SetState(State::kDone);
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
bool TlsConnection::secure() const { return impl_->secure(); }
bool TlsConnection::finished() const { return impl_->state_ == Impl::State::kDone; }
absl::Status TlsConnection::status() const { return impl_->status_; }

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

}  // namespace tlsengine
