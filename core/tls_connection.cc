#include "core/tls_connection.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
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
  }
  return "unknown";
}

namespace {

// The largest record a peer may send: 2^14 plaintext + 2048 expansion + 5
// header (RFC 5246 §6.2.3; TLS 1.3 allows less).
constexpr size_t kMaxRecord = 16384 + 2048 + 5;
constexpr size_t kMaxPlaintextRecord = 16384;

// A byte queue: append at the back, consume at the front. The readable part
// is one contiguous span; consumed space is reclaimed when more is reserved.
class ByteBuffer {
 public:
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  const uint8_t* data() const { return data_.data() + start_; }
  // Space for `n` more bytes at the end; Commit() says how much was filled.
  absl::Span<uint8_t> Reserve(size_t n) {
    if (start_ != 0) {
      std::memmove(data_.data(), data_.data() + start_, size());
      end_ -= start_;
      start_ = 0;
    }
    if (data_.size() < end_ + n) data_.resize(end_ + n);
    return absl::MakeSpan(data_.data() + end_, n);
  }
  void Commit(size_t n) { end_ = std::min(end_ + n, data_.size()); }
  void Append(const uint8_t* p, size_t n) {
    if (n == 0) return;
    std::memcpy(Reserve(n).data(), p, n);
    Commit(n);
  }
  void Consume(size_t n) {
    start_ += std::min(n, size());
    if (start_ == end_) start_ = end_ = 0;
  }
  // Frees the memory (idle or finished connections).
  void Release() {
    std::vector<uint8_t>().swap(data_);
    start_ = end_ = 0;
  }

 private:
  std::vector<uint8_t> data_;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace

class TlsConnection::Impl {
 public:
  enum class State { kStart, kHandshaking, kOpen, kClosing, kDone };

  explicit Impl(ConnectionOptions options) : options_(std::move(options)) {}

  absl::Status Init(absl::Time now);

  ConnectionOptions options_;
  OpenSslPtr<SSL> ssl_;
  OpenSslPtr<BIO_METHOD> bio_method_;
  State state_ = State::kStart;
  absl::Status status_;
  std::deque<Event> events_;
  ByteBuffer input_;
  ByteBuffer output_;
  ByteBuffer plaintext_out_;
  std::vector<uint8_t> read_buf_;
  bool transport_eof_ = false;
  bool peer_closed_ = false;
  bool wait_for_peer_close_ = false;
  absl::Time now_;
  absl::Time handshake_deadline_ = absl::InfiniteFuture();
  absl::Time close_deadline_ = absl::InfiniteFuture();
  std::string identity_host_;

  // Verification results, filled by the verify callback and the handshake.
  bool chain_failed_ = false;
  absl::Status identity_status_;
  bool authorized_ = false;
  absl::Status authorization_;
  int sent_alert_ = -1;
  int received_alert_ = -1;

  // BIO callbacks over input_/output_.
  static int BioRead(BIO* bio, char* out, int len);
  static int BioWrite(BIO* bio, const char* in, int len);
  static long BioCtrl(BIO* bio, int cmd, long num, void* ptr);
  static int VerifyCallback(int preverify_ok, X509_STORE_CTX* store);
  static void InfoCallback(const SSL* ssl, int where, int ret);

  void Step();
  void DoHandshake();
  void OnHandshakeDone();
  void ReadPlaintext();
  void EncryptPending(bool ignore_output_limit);
  void Fail(absl::Status status);
  void Push(EventType type) { events_.push_back(Event{type, {}, absl::OkStatus()}); }
  void FinishClose();
  // The status for a failed handshake or record operation, from OpenSSL's
  // error queue (drained) and the verification results.
  absl::Status HandshakeFailure();
  absl::Status RecordFailure(absl::string_view what);
  // Whether SSL_get_error's `err` means the transport ended (OpenSSL 3 says
  // so with SSL_R_UNEXPECTED_EOF_WHILE_READING; the BIO's EOF is ours).
  bool IsTransportEof(int err) const {
    if (!transport_eof_ || !input_.empty()) return false;
    return err == SSL_ERROR_WANT_READ || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
           (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  }
  void SetVerifyTime() {
    X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl_.get()), absl::ToTimeT(now_));
  }
};

absl::Status TlsConnection::Impl::Init(absl::Time now) {
  now_ = now;
  if (!options_.secure_context) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     "secure_context: required");
  }
  if (options_.max_input_buffer < kMaxRecord) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("max_input_buffer: must be at least ", kMaxRecord,
                                  " bytes (one maximal TLS record)"));
  }
  if (options_.max_output_buffer < kMaxRecord || options_.max_write_buffer == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("max_output_buffer: must be at least ", kMaxRecord,
                                  " bytes, max_write_buffer at least 1"));
  }
  if (options_.handshake_timeout <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     "handshake_timeout: must be positive");
  }
  ERR_clear_error();
  ssl_.reset(SSL_new(options_.secure_context->native_handle()));
  bio_method_.reset(BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tlsengine"));
  if (!ssl_ || !bio_method_) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("SSL_new failed: ", internal::DrainErrors()));
  }
  BIO_meth_set_read(bio_method_.get(), &Impl::BioRead);
  BIO_meth_set_write(bio_method_.get(), &Impl::BioWrite);
  BIO_meth_set_ctrl(bio_method_.get(), &Impl::BioCtrl);
  BIO* bio = BIO_new(bio_method_.get());
  if (bio == nullptr) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal, "BIO_new failed");
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  // SSL_set_bio takes ownership of the one reference, for both directions.
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_app_data(ssl_.get(), this);
  SSL_set_info_callback(ssl_.get(), &Impl::InfoCallback);
  read_buf_.resize(kMaxPlaintextRecord);

  if (options_.is_server) {
    SSL_set_accept_state(ssl_.get());
    int mode = SSL_VERIFY_NONE;
    if (options_.request_cert) {
      mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
      if (options_.reject_unauthorized) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_set_verify(ssl_.get(), mode, &Impl::VerifyCallback);
  } else {
    SSL_set_connect_state(ssl_.get());
    SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER, &Impl::VerifyCallback);
    std::string sni = options_.servername;
    if (sni.empty() && !options_.host.empty() && !internal::ParseIpAddress(options_.host, nullptr)) sni = options_.host;
    if (!sni.empty() && SSL_set_tlsext_host_name(ssl_.get(), sni.c_str()) != 1) {
      return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                       absl::StrCat("servername: not a valid SNI host name: '", sni, "'"));
    }
    identity_host_ = !options_.servername.empty() ? options_.servername
                     : !options_.host.empty()     ? options_.host
                                                  : "localhost";
  }
  return absl::OkStatus();
}

// ---- BIO over the engine's buffers ----

int TlsConnection::Impl::BioRead(BIO* bio, char* out, int len) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self->input_.empty()) {
    if (self->transport_eof_) return 0;
    BIO_set_retry_read(bio);
    return -1;
  }
  size_t n = std::min(self->input_.size(), static_cast<size_t>(len));
  std::memcpy(out, self->input_.data(), n);
  self->input_.Consume(n);
  return static_cast<int>(n);
}

int TlsConnection::Impl::BioWrite(BIO* bio, const char* in, int len) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  // Always accepted: what may enter is bounded by EncryptPending (plaintext)
  // and by the handshake itself (a flight).
  self->output_.Append(reinterpret_cast<const uint8_t*>(in), static_cast<size_t>(len));
  return len;
}

long TlsConnection::Impl::BioCtrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  auto* self = static_cast<Impl*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return self->transport_eof_ && self->input_.empty();
    case BIO_CTRL_PENDING: return static_cast<long>(self->input_.size());
    case BIO_CTRL_WPENDING: return static_cast<long>(self->output_.size());
    default: return 0;
  }
}

// ---- Verification ----

int TlsConnection::Impl::VerifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  // Both borrowed: the SSL behind this verification, and our Impl on it.
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* self = static_cast<Impl*>(SSL_get_app_data(ssl));
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
  absl::StatusOr<CertificateInfo> leaf = internal::InfoFromX509(X509_STORE_CTX_get_current_cert(store));
  absl::Status identity = leaf.status();
  if (leaf.ok()) {
    identity = self->options_.check_server_identity
                   ? self->options_.check_server_identity(self->identity_host_, *leaf)
                   : CheckServerIdentity(self->identity_host_, *leaf);
  }
  if (identity.ok()) return 1;
  if (NodeCode(identity).empty()) {
    identity = MakeError(absl::StatusCode::kUnauthenticated, kErrCertAltnameInvalid, identity.message());
  }
  self->identity_status_ = identity;
  if (!reject) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

void TlsConnection::Impl::InfoCallback(const SSL* ssl, int where, int ret) {
  auto* self = static_cast<Impl*>(SSL_get_app_data(ssl));
  if ((where & SSL_CB_ALERT) == 0 || (ret >> 8) != SSL3_AL_FATAL) return;
  if ((where & SSL_CB_WRITE) != 0) self->sent_alert_ = ret & 0xff;
  if ((where & SSL_CB_READ) != 0) self->received_alert_ = ret & 0xff;
}

// ---- The state machine ----

void TlsConnection::Impl::Fail(absl::Status status) {
  if (state_ == State::kDone) return;
  if (sent_alert_ >= 0 && !AlertOf(status)) status = WithAlert(std::move(status), sent_alert_);
  if (received_alert_ >= 0 && !AlertOf(status)) status = WithAlert(std::move(status), received_alert_);
  status_ = status;
  state_ = State::kDone;
  plaintext_out_.Release();
  input_.Release();
  events_.push_back(Event{EventType::kError, {}, std::move(status)});
}

absl::Status TlsConnection::Impl::HandshakeFailure() {
  internal::OpenSslFailure failure = internal::DrainFailure();
  const int reason = ERR_GET_REASON(failure.primary);
  long verify = SSL_get_verify_result(ssl_.get());
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    if (!identity_status_.ok()) return identity_status_;
    if (verify != X509_V_OK) return internal::VerifyError(verify);
  }
  if (failure.primary == 0) {
    return MakeError(absl::StatusCode::kAborted, kErrConnReset,
                     "the peer ended the handshake without an alert");
  }
  absl::StatusCode code = absl::StatusCode::kAborted;
  if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) code = absl::StatusCode::kUnauthenticated;
  return MakeError(code, internal::OpenSslCode(failure.primary), failure.detail);
}

absl::Status TlsConnection::Impl::RecordFailure(absl::string_view what) {
  internal::OpenSslFailure failure = internal::DrainFailure();
  return MakeError(absl::StatusCode::kAborted,
                   failure.primary != 0 ? internal::OpenSslCode(failure.primary) : std::string(kErrInternal),
                   failure.detail.empty() ? what : failure.detail);
}

void TlsConnection::Impl::DoHandshake() {
  ERR_clear_error();
  SetVerifyTime();
  int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    OnHandshakeDone();
    return;
  }
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_READ && !(transport_eof_ && input_.empty())) return;
  if (IsTransportEof(err) || err == SSL_ERROR_ZERO_RETURN) {
    Fail(MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                   options_.is_server
                       ? "socket hang up"
                       : "Client network socket disconnected before secure TLS connection was established"));
    return;
  }
  Fail(HandshakeFailure());
}

void TlsConnection::Impl::OnHandshakeDone() {
  handshake_deadline_ = absl::InfiniteFuture();
  state_ = State::kOpen;
  OpenSslPtr<X509> peer(SSL_get1_peer_certificate(ssl_.get()));
  const bool checks = !options_.is_server || options_.request_cert;
  if (checks) {
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
      return;
    }
  }
  Push(EventType::kSecure);
}

void TlsConnection::Impl::ReadPlaintext() {
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_read_ex(ssl_.get(), read_buf_.data(), read_buf_.size(), &n);
  if (r == 1) {
    events_.push_back(Event{EventType::kData, absl::MakeConstSpan(read_buf_.data(), n), absl::OkStatus()});
    return;
  }
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_ZERO_RETURN) {
    if (peer_closed_) return;
    peer_closed_ = true;
    Push(EventType::kPeerClosed);
    if (state_ == State::kClosing) FinishClose();
    return;
  }
  if (err == SSL_ERROR_WANT_READ && !(transport_eof_ && input_.empty())) return;
  if (IsTransportEof(err)) {
    if (peer_closed_) return;
    // Transport EOF without close_notify (RFC 8446 §6.1): possibly a
    // truncation attack; reported, never mistaken for a clean close.
    peer_closed_ = true;
    Push(EventType::kTruncated);
    if (state_ == State::kClosing) FinishClose();
    return;
  }
  Fail(RecordFailure("TLS read failed"));
}

void TlsConnection::Impl::EncryptPending(bool ignore_output_limit) {
  while (state_ == State::kOpen && !plaintext_out_.empty() &&
         (ignore_output_limit || output_.size() < options_.max_output_buffer)) {
    ERR_clear_error();
    size_t chunk = std::min(plaintext_out_.size(), kMaxPlaintextRecord);
    size_t written = 0;
    if (SSL_write_ex(ssl_.get(), plaintext_out_.data(), chunk, &written) != 1) {
      Fail(RecordFailure("TLS write failed"));
      return;
    }
    plaintext_out_.Consume(written);
  }
}

void TlsConnection::Impl::Step() {
  switch (state_) {
    case State::kStart:
      state_ = State::kHandshaking;
      handshake_deadline_ = now_ + options_.handshake_timeout;
      Push(EventType::kHandshakeStart);
      DoHandshake();
      return;
    case State::kHandshaking:
      DoHandshake();
      return;
    case State::kOpen:
    case State::kClosing:
      if (!peer_closed_) ReadPlaintext();
      return;
    case State::kDone:
      return;
  }
}

void TlsConnection::Impl::FinishClose() {
  state_ = State::kDone;
  close_deadline_ = absl::InfiniteFuture();
  plaintext_out_.Release();
  input_.Release();
  Push(EventType::kClosed);
}

// ---- Public API ----

TlsConnection::TlsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsConnection::~TlsConnection() = default;

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::Create(ConnectionOptions options,
                                                                     absl::Time now) {
  auto impl = std::make_unique<Impl>(std::move(options));
  absl::Status status = impl->Init(now);
  if (!status.ok()) return status;
  return std::unique_ptr<TlsConnection>(new TlsConnection(std::move(impl)));
}

absl::Span<uint8_t> TlsConnection::InputSpace() {
  Impl& s = *impl_;
  if (s.state_ == Impl::State::kDone || s.transport_eof_ || s.input_.size() >= s.options_.max_input_buffer) {
    return {};
  }
  return s.input_.Reserve(s.options_.max_input_buffer - s.input_.size());
}

absl::Status TlsConnection::CommitInput(size_t n) {
  Impl& s = *impl_;
  if (!s.status_.ok()) return s.status_;
  if (n == 0) return absl::OkStatus();
  if (s.state_ == Impl::State::kDone || s.transport_eof_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     "CommitInput: the connection no longer takes input");
  }
  size_t space = s.options_.max_input_buffer - s.input_.size();
  if (n > space) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("CommitInput: ", n, " bytes committed but only ", space, " free"));
  }
  s.input_.Commit(n);
  return absl::OkStatus();
}

absl::StatusOr<size_t> TlsConnection::Feed(absl::Span<const uint8_t> data) {
  absl::Span<uint8_t> space = InputSpace();
  if (!impl_->status_.ok()) return impl_->status_;
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
  if (s.events_.empty()) {
    if (now >= s.handshake_deadline_ || now >= s.close_deadline_) OnTimer(now);
    if (s.events_.empty()) s.Step();
  }
  if (s.events_.empty()) return std::nullopt;
  Event event = std::move(s.events_.front());
  s.events_.pop_front();
  return event;
}

absl::StatusOr<size_t> TlsConnection::Write(absl::Span<const uint8_t> data) {
  Impl& s = *impl_;
  if (!s.status_.ok()) return s.status_;
  if (s.state_ == Impl::State::kClosing || s.state_ == Impl::State::kDone) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_STREAM_WRITE_AFTER_END",
                     "write after end");
  }
  size_t room = s.options_.max_write_buffer - std::min(s.options_.max_write_buffer, s.plaintext_out_.size());
  size_t n = std::min(room, data.size());
  s.plaintext_out_.Append(data.data(), n);
  return n;
}

absl::StatusOr<size_t> TlsConnection::Write(absl::string_view data) {
  return Write(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

absl::InlinedVector<absl::Span<const uint8_t>, 2> TlsConnection::Output() {
  impl_->EncryptPending(/*ignore_output_limit=*/false);
  absl::InlinedVector<absl::Span<const uint8_t>, 2> out;
  if (!impl_->output_.empty()) out.push_back(absl::MakeConstSpan(impl_->output_.data(), impl_->output_.size()));
  return out;
}

size_t TlsConnection::OutputSize() const { return impl_->output_.size(); }

void TlsConnection::ConsumeOutput(size_t n) { impl_->output_.Consume(n); }

absl::Time TlsConnection::NextDeadline() const {
  return std::min(impl_->handshake_deadline_, impl_->close_deadline_);
}

void TlsConnection::OnTimer(absl::Time now) {
  Impl& s = *impl_;
  s.now_ = now;
  if (s.state_ == Impl::State::kHandshaking && now >= s.handshake_deadline_) {
    s.handshake_deadline_ = absl::InfiniteFuture();
    s.Fail(MakeError(absl::StatusCode::kDeadlineExceeded, kErrHandshakeTimeout, "TLS handshake timeout"));
  }
  if (s.state_ == Impl::State::kClosing && now >= s.close_deadline_) {
    s.close_deadline_ = absl::InfiniteFuture();
    s.Fail(MakeError(absl::StatusCode::kDeadlineExceeded, kErrCloseTimeout,
                     "the peer did not answer close_notify in time"));
  }
}

void TlsConnection::Close(absl::Time now, bool wait_for_peer) {
  Impl& s = *impl_;
  s.now_ = now;
  switch (s.state_) {
    case Impl::State::kStart:
    case Impl::State::kHandshaking:
      s.handshake_deadline_ = absl::InfiniteFuture();
      s.FinishClose();
      return;
    case Impl::State::kOpen: {
      s.EncryptPending(/*ignore_output_limit=*/true);
      if (s.state_ != Impl::State::kOpen) return;  // the flush failed
      ERR_clear_error();
      SSL_shutdown(s.ssl_.get());  // queues close_notify in output_
      ERR_clear_error();
      if (!wait_for_peer || s.peer_closed_) {
        s.FinishClose();
      } else {
        s.state_ = Impl::State::kClosing;
        s.close_deadline_ = now + s.options_.close_timeout;
      }
      return;
    }
    case Impl::State::kClosing:
    case Impl::State::kDone:
      return;
  }
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
  X509* own = SSL_get_certificate(impl_->ssl_.get());  // borrowed
  if (own == nullptr) return std::nullopt;
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(own);
  if (!info.ok()) return std::nullopt;
  return *std::move(info);
}

std::optional<CipherInfo> TlsConnection::GetCipher() const {
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
  if (!SSL_is_init_finished(impl_->ssl_.get()) && !secure()) return "";
  return SSL_get_version(impl_->ssl_.get());
}

std::string TlsConnection::servername() const {
  const char* name = SSL_get_servername(impl_->ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

bool TlsConnection::is_session_reused() const { return SSL_session_reused(impl_->ssl_.get()) == 1; }

}  // namespace tlsengine
