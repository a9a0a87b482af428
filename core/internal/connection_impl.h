// The engine's state, shared by the state machine (tls_connection.cc) and
// the OpenSSL callbacks (engine_callbacks.cc). Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_
#define TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/internal/context_data.h"
#include "core/internal/openssl_util.h"
#include "core/openssl_interop.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace internal {

// The largest record a peer may send: 2^14 plaintext + 2048 expansion + 5
// header (RFC 5246 §6.2.3; TLS 1.3 allows less).
inline constexpr size_t kMaxRecord = 16384 + 2048 + 5;
inline constexpr size_t kMaxPlaintextRecord = 16384;

// A byte queue: append at the back, consume at the front. The readable part
// is one contiguous span. Memory is allocated on first use (not zero-filled)
// and can be released when empty, so idle connections cost little.
//
// A reservation (Reserve) is space handed out to be filled later; until it
// is committed or cancelled the buffer never moves or frees its memory, so
// the span stays valid while the front is consumed.
class ByteBuffer {
 public:
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  const uint8_t* data() const { return data_.get() + start_; }
  size_t capacity() const { return capacity_; }
  bool reserved() const { return reserved_ > 0; }
  size_t reservation() const { return reserved_; }
  absl::Span<uint8_t> reserved_span() { return absl::MakeSpan(data_.get() + end_, reserved_); }

  // Space for `n` more bytes at the end, made contiguous (moving what is
  // buffered to the front, growing the allocation, to at most `limit`
  // bytes unless more are needed). Not while reserved.
  absl::Span<uint8_t> Reserve(size_t n, size_t limit = SIZE_MAX) {
    if (start_ != 0) {
      if (!empty()) std::memmove(data_.get(), data_.get() + start_, size());
      end_ -= start_;
      start_ = 0;
    }
    if (capacity_ < end_ + n) {
      size_t grown = std::max(end_ + n, std::min({2 * capacity_, end_ + n + kGrowLimit, limit}));
      std::unique_ptr<uint8_t[]> bigger(new uint8_t[grown]);  // uninitialised
      if (end_ > 0) std::memcpy(bigger.get(), data_.get(), end_);
      data_ = std::move(bigger);
      capacity_ = grown;
    }
    return absl::MakeSpan(data_.get() + end_, n);
  }
  // Reserve() that stays valid until Commit(): see the class comment.
  absl::Span<uint8_t> Hold(size_t n, size_t limit = SIZE_MAX) {
    absl::Span<uint8_t> span = Reserve(n, limit);
    reserved_ = n;
    return span;
  }
  // `n` bytes after the end were filled (n <= what was reserved); ends a
  // Hold().
  void Commit(size_t n) {
    end_ += n;
    reserved_ = 0;
    if (release_pending_) Release();
  }
  void Append(const uint8_t* p, size_t n) {
    if (n == 0) return;
    std::memcpy(Reserve(n).data(), p, n);
    end_ += n;
  }
  void Consume(size_t n) { start_ += std::min(n, size()); }
  // When less than half of the allocation is used, moves the content into
  // one of its size (none when empty), so a buffer that waits for more costs
  // little more than it holds. Only sparse ones: a buffer filled a little
  // at a time is copied so only while it holds less than a Reserve adds,
  // since growing it later doubles it. Not while reserved.
  void ShrinkIfSparse() {
    if (reserved_ > 0 || capacity_ <= 2 * size()) return;
    if (empty()) {
      Release();
      return;
    }
    std::unique_ptr<uint8_t[]> exact(new uint8_t[size()]);
    std::memcpy(exact.get(), data(), size());
    data_ = std::move(exact);
    capacity_ = end_ = size();
    start_ = 0;
  }
  // Frees the memory (idle or finished connections), dropping the content;
  // while a reservation is held, only once it is committed.
  void Release() {
    if (reserved_ > 0) {
      release_pending_ = true;
      return;
    }
    start_ = end_ = 0;
    release_pending_ = false;
    data_.reset();
    capacity_ = 0;
  }

 private:
  static constexpr size_t kGrowLimit = 64 * 1024;
  std::unique_ptr<uint8_t[]> data_;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t reserved_ = 0;
  bool release_pending_ = false;
};

// An event of `type` with nothing else set.
inline Event MakeEvent(EventType type) {
  Event event;
  event.type = type;
  return event;
}

}  // namespace internal

class TlsConnection::Impl {
 public:
  using ByteBuffer = internal::ByteBuffer;
  template <typename T>
  using OpenSslPtr = internal::OpenSslPtr<T>;

  // kOpen: secure; kClosing: our close_notify is out, waiting for the
  // peer's (End with wait_for_peer); kDone: kClosed or kError was queued.
  enum class State { kStart, kHandshaking, kOpen, kClosing, kDone };
  // What a suspended handshake waits for.
  enum class Waiting { kNothing, kSni, kResumeSession, kOcsp };

  explicit Impl(ConnectionOptions options) : options_(std::move(options)) {}
  static Impl* From(const SSL* ssl) { return static_cast<Impl*>(SSL_get_app_data(ssl)); }
  // The state behind `conn`, for core's own tests (what it holds, not what
  // it promises).
  static const Impl& Of(const TlsConnection& conn) { return *conn.impl_; }

  absl::Status Init(absl::Time now);
  // Makes ssl_ with its BIO and the per-SSL settings both roles share, and
  // a server's (a client's own are in Init).
  absl::Status NewSsl();
  // Server, before ssl_ exists: what input_ holds of the first flight.
  // kReady: what OpenSSL should start on: a whole ClientHello, bytes that
  // cannot begin one (OpenSSL then reports them), or the transport's end.
  // kTooLarge: a ClientHello that max_input_buffer cannot hold whole.
  enum class FirstFlight { kIncomplete, kReady, kTooLarge };
  FirstFlight CheckFirstFlight() const;

  // ---- The state machine ----
  void Step();
  void DoHandshake();
  void OnHandshakeDone();
  void ReadPlaintext();
  // Encrypts buffered plaintext while the output buffer has room, then sends
  // the close_notify End() asked for once everything before it is out.
  void EncryptPending();
  // Write(): encrypts whole records of `data` (borrowed) directly while
  // EncryptPending could and the write buffer is empty; returns how many
  // bytes it took.
  size_t EncryptDirect(absl::Span<const uint8_t> data);
  void MaybeSendCloseNotify();
  void Fail(absl::Status status);
  void Push(Event event);
  void Push(EventType type) { Push(internal::MakeEvent(type)); }
  void FinishClose();
  // Whether BioRead may hand OpenSSL more input now: not while events wait
  // to be polled, while the output buffer is full, or once a callback asked
  // for the connection to fail. Sets read_stalled_ when it may not.
  bool MayRead();
  // Whether InputSpace() may hand out new space (see Interest::read).
  bool interest_read() const;
  // Releases buffers that are empty (idle connections stay small).
  void ReleaseIdleBuffers();
  // SSL_free_buffers when the connection is secure, no handshake is under
  // way and no input waits; whether it freed them.
  bool FreeSslBuffers();
  // Counts a renegotiation attempt by the peer (accepted or refused)
  // against Node's CLIENT_RENEG_LIMIT per CLIENT_RENEG_WINDOW; false (and
  // pending_failure_ set) when it is one too many.
  bool CountPeerRenegotiation();
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
  // a resumed handshake; and whether a session (with the chain verdict
  // stored in it, `verify_result`) may be offered at all.
  absl::Status CheckPeerIdentity(X509* leaf);
  void CheckResumedIdentity();
  bool MayOfferSession(SSL_SESSION* session, long verify_result) const;
  static void InfoCallback(const SSL* ssl, int where, int ret);
  static void MessageCallback(int write_p, int version, int content_type, const void* buf, size_t len,
                              SSL* ssl, void* arg);

  ConnectionOptions options_;
  // Null on a server until its ClientHello has arrived (CheckFirstFlight).
  OpenSslPtr<SSL> ssl_;
  SSL_CTX* native_context_ = nullptr;  // what ssl_ is made from; owned by options_.secure_context
  size_t max_send_fragment_ = 0;       // SetMaxSendFragment before ssl_ existed
  std::shared_ptr<const SecureContext> active_context_;  // after SNI, may differ
  State state_ = State::kStart;
  absl::Status status_;
  std::deque<Event> events_;
  std::deque<Event> held_events_;  // held until kNewSession is acknowledged
  ByteBuffer input_;
  ByteBuffer output_;
  ByteBuffer plaintext_out_;
  ByteBuffer read_buf_;  // the plaintext of the last kData event
  uint8_t small_read_[512];  // instead of read_buf_ for small records
  // ReadPlaintext's plaintext, for the NextEvent call that ran it.
  absl::Span<const uint8_t> data_ready_;
  bool has_data_ready_ = false;
  size_t direct_since_output_ = 0;  // Write() bytes encrypted directly since Output()
  bool release_ssl_buffers_ = false;  // a handshake completed: free OpenSSL's at idle
  bool transport_eof_ = false;
  bool peer_closed_ = false;
  bool truncated_ = false;      // peer_closed_ by a transport EOF without close_notify
  bool read_stalled_ = false;   // BioRead refused input (see MayRead)
  bool write_blocked_ = false;  // SSL_write waits for the handshake (renegotiation)
  bool write_was_full_ = false; // a Write() took less than given: kDrain is owed
  bool end_requested_ = false;  // End() was called
  bool end_wait_for_peer_ = false;
  bool close_notify_sent_ = false;
  absl::Time now_;
  absl::Time handshake_deadline_ = absl::InfiniteFuture();  // also renegotiations
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
  int new_sessions_pending_ = 0;  // kNewSession events not yet acknowledged
  // Set by a callback that must fail the handshake (renegotiation limit) or
  // by an error answer; reported instead of OpenSSL's generic error, after
  // pending_alert_ went to the peer.
  absl::Status pending_failure_;
  int pending_alert_ = SSL_AD_INTERNAL_ERROR;

  // Sessions, protocols, renegotiation.
  std::string npn_selected_;  // client: what we chose ("" when no overlap)
  bool handshake_done_once_ = false;
  bool renegotiating_ = false;  // we started a renegotiation / PHA
  bool reneg_clock_pending_ = false;  // its deadline starts at the next NextEvent(now)
  // The peer's Finished arrived after the first handshake: a renegotiation
  // (TLS 1.2) or post-handshake authentication (TLS 1.3) is complete once
  // OpenSSL leaves init. (SSL_CB_HANDSHAKE_DONE also fires for HelloRequests,
  // refused renegotiations and TLS 1.3 tickets, and not for PHA.)
  bool peer_finished_ = false;
  std::string alpn_wire_;       // server: our ALPN list, wire form
  std::string npn_wire_;        // our NPN list, wire form; empty: the context's
  // Node's onhandshakestart: handshakes counted since the count was reset,
  // which happens when a start comes a whole window after the previous one.
  int reneg_count_ = 0;
  absl::Time last_handshake_start_ = absl::InfinitePast();
  // Peer-triggered work since the peer last sent application data.
  int key_update_requests_ = 0;
  int session_events_ = 0;
  ConnectionStats stats_;
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_
