// The engine's state, shared by the state machine (tls_connection.cc) and
// the OpenSSL callbacks (engine_callbacks.cc). Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_
#define TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/internal/openssl_util.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace internal {

// The largest record a peer may send: 2^14 plaintext + 2048 expansion + 5
// header (RFC 5246 §6.2.3; TLS 1.3 allows less).
inline constexpr size_t kMaxRecord = 16384 + 2048 + 5;
inline constexpr size_t kMaxPlaintextRecord = 16384;

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

// An event of `type` with nothing else set.
inline Event MakeEvent(EventType type) {
  Event event;
  event.type = type;
  return event;
}

// Makes the BIO method engines use over their own buffers (one per
// SecureContext, never per connection: BIO types are a process-wide count).
OpenSslPtr<BIO_METHOD> NewEngineBioMethod();

// What a context's callbacks read that belongs to the context (immutable).
struct ContextData {
  std::string npn_wire;                  // NPN list, wire form
  std::vector<std::string> ticket_keys;  // 48 bytes each, Node's layout
};

// Installs the context-wide OpenSSL callbacks (SNI and session lookup at
// ClientHello, OCSP, ALPN, NPN when `data` has a list, new sessions, key
// log, ticket keys when `data` has some). Each finds its connection through
// SSL_get_app_data and does nothing for other SSLs. `data` must outlive ctx.
void InstallEngineCallbacks(SSL_CTX* ctx, const ContextData* data);

}  // namespace internal

class TlsConnection::Impl {
 public:
  using ByteBuffer = internal::ByteBuffer;
  template <typename T>
  using OpenSslPtr = internal::OpenSslPtr<T>;

  enum class State { kStart, kHandshaking, kOpen, kClosing, kDone };
  // What a suspended handshake waits for.
  enum class Waiting { kNothing, kSni, kResumeSession, kOcsp };

  explicit Impl(ConnectionOptions options) : options_(std::move(options)) {}
  static Impl* From(const SSL* ssl) { return static_cast<Impl*>(SSL_get_app_data(ssl)); }

  absl::Status Init(absl::Time now);

  // ---- The state machine ----
  void Step();
  void DoHandshake();
  void OnHandshakeDone();
  void ReadPlaintext();
  void EncryptPending(bool ignore_output_limit);
  void Fail(absl::Status status);
  void Push(Event event);
  void Push(EventType type) { Push(internal::MakeEvent(type)); }
  void FinishClose();
  // Node's authorized/authorizationError from the verification results;
  // false when the connection had to fail because of them.
  bool UpdateAuthorization();
  // The status for a failed handshake or record operation, from OpenSSL's
  // error queue (drained), the verification results and pending_failure_;
  // `if_empty` when OpenSSL queued nothing.
  absl::Status OpenSslFailure(absl::Status if_empty);
  // Whether SSL_get_error's `err` means the transport ended (OpenSSL 3 says
  // so with SSL_R_UNEXPECTED_EOF_WHILE_READING; the BIO's EOF is ours).
  bool IsTransportEof(int err) const;
  void SetVerifyTime() { X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl_.get()), absl::ToTimeT(now_)); }
  // A renegotiation or post-handshake authentication completed.
  void OnRenegotiationDone();
  // Takes the application's answer to the suspension `what`; an error will
  // be sent to the peer as `alert`.
  template <typename T>
  absl::Status Answer(Waiting what, absl::string_view call, absl::StatusOr<T> answer, bool& answered, T& slot,
                      int alert);

  // ---- Per-SSL callbacks (engine_callbacks.cc) ----
  static int VerifyCallback(int preverify_ok, X509_STORE_CTX* store);
  // Client identity (engine_callbacks.cc): checks `leaf` (borrowed) for
  // identity_host_ and stores the verdict in identity_status_; again after
  // a resumed handshake; and whether a session may be offered at all.
  absl::Status CheckPeerIdentity(X509* leaf);
  void CheckResumedIdentity();
  bool MayOfferSession(SSL_SESSION* session) const;
  static void InfoCallback(const SSL* ssl, int where, int ret);
  static void MessageCallback(int write_p, int version, int content_type, const void* buf, size_t len,
                              SSL* ssl, void* arg);

  ConnectionOptions options_;
  OpenSslPtr<SSL> ssl_;
  std::shared_ptr<const SecureContext> active_context_;  // after SNI, may differ
  State state_ = State::kStart;
  absl::Status status_;
  std::deque<Event> events_;
  std::deque<Event> held_events_;  // held until kNewSession is acknowledged
  ByteBuffer input_;
  ByteBuffer output_;
  ByteBuffer plaintext_out_;
  std::vector<uint8_t> read_buf_;
  bool transport_eof_ = false;
  bool peer_closed_ = false;
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

  // Suspensions: what is asked, and the answers prepared for OpenSSL's
  // re-invoked callbacks (which must be idempotent).
  Waiting waiting_ = Waiting::kNothing;
  bool sni_answered_ = false;
  std::shared_ptr<const SecureContext> sni_answer_;
  bool resume_answered_ = false;
  std::string resume_answer_;
  bool ocsp_answered_ = false;
  std::string ocsp_answer_;
  bool new_session_pending_ = false;
  // Set by a callback that must fail the handshake (renegotiation limit) or
  // by an error answer; reported instead of OpenSSL's generic error, after
  // pending_alert_ went to the peer.
  absl::Status pending_failure_;
  int pending_alert_ = SSL_AD_INTERNAL_ERROR;

  // Sessions, protocols, renegotiation.
  std::string npn_selected_;  // client: what we chose ("" when no overlap)
  bool handshake_done_once_ = false;
  bool renegotiating_ = false;  // we started a renegotiation / PHA
  // The peer's Finished arrived after the first handshake: a renegotiation
  // (TLS 1.2) or post-handshake authentication (TLS 1.3) is complete once
  // OpenSSL leaves init. (SSL_CB_HANDSHAKE_DONE also fires for HelloRequests,
  // refused renegotiations and TLS 1.3 tickets, and not for PHA.)
  bool peer_finished_ = false;
  std::string alpn_wire_;       // server: our ALPN list, wire form
  int reneg_count_ = 0;
  absl::Time reneg_window_start_ = absl::InfinitePast();
  ConnectionStats stats_;
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_
