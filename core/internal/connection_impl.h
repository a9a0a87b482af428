// The engine's state and its operations, internal to core. The state is
// private: the public entry points (core/tls_connection.cc) and OpenSSL's
// callbacks reach it only through the operations below. The callbacks are
// static members that find their connection with From(ssl) and call one
// named operation; each lives in the file of its topic, as BoringSSL splits
// ssl/:
//
//   core/tls_connection.cc         public entry points, the state machine (SetState, Step)
//   core/internal/handshake.cc     set-up (Init, NewSsl), the handshake, failures
//   core/internal/records.cc       application data: decrypt, encrypt, close_notify
//   core/internal/bio.cc           the BIO over the engine's buffers
//   core/internal/client_hello.cc  the first flight, ClientHello: SNI, context swap, resumeSession
//   core/internal/sessions.cc      sessions, tickets and their lifetimes, newSession
//   core/internal/ocsp_stapling.cc OCSP request and stapling
//   core/internal/alpn.cc          ALPN and NPN
//   core/internal/verify.cc        chain verification, identity, authorization
//   core/internal/observe.cc       key log, alerts and handshake messages seen
//   core/internal/renegotiation.cc renegotiation, key update and their limits
//   core/internal/introspection.cc what the connection tells about itself
//   core/internal/context_callbacks.cc  installs the context-wide callbacks
//
// OpenSSL re-invokes a callback that suspended (returned "retry") from its
// start, so each one is idempotent: it raises its event once and otherwise
// reads the answer prepared by the application.
#ifndef TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_
#define TLSENGINE_CORE_INTERNAL_CONNECTION_IMPL_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/errors.h"
#include "core/internal/byte_buffer.h"
#include "core/internal/context_data.h"
#include "core/internal/openssl_util.h"
#include "core/openssl_interop.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace internal {

// kInvalidArgument (ERR_INVALID_ARG_VALUE): a bad option or argument.
inline absl::Status InvalidOption(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, message);
}
// kFailedPrecondition (ERR_INVALID_STATE): a call the connection's state
// does not allow.
inline absl::Status InvalidState(absl::string_view message) {
  return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, message);
}
// OpenSSL's (data, len) as bytes.
inline std::string ToString(const unsigned char* data, size_t len) {
  return std::string(reinterpret_cast<const char*>(data), len);
}

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

  explicit Impl(ConnectionOptions options) : options_(std::move(options)) {}
  static Impl* From(const SSL* ssl) { return static_cast<Impl*>(SSL_get_app_data(ssl)); }
  // The state behind `conn`, for core's own tests (what it holds, not what
  // it promises): read through the accessors below.
  static const Impl& Of(const TlsConnection& conn) { return *conn.impl_; }
  SSL* ssl() const { return ssl_.get(); }  // null on a server before its ClientHello
  const ByteBuffer& input() const { return input_; }
  // Our NPN list, wire form; empty: the context's (alpn.cc).
  const std::string& npn_wire() const { return npn_wire_; }

  // ---- Set-up (handshake.cc) ----
  absl::Status Init(absl::Time now);

  // ---- OpenSSL's callbacks, by topic; each calls one operation below ----
  // bio.cc (the BIO method's functions)
  static int BioRead(BIO* bio, char* out, int len);
  static int BioWrite(BIO* bio, const char* in, int len);
  static long BioCtrl(BIO* bio, int cmd, long num, void* ptr);
  // client_hello.cc
  static int ClientHelloCallback(SSL* ssl, int* alert, void* arg);
  // sessions.cc
  static int GenerateTicketCallback(SSL* ssl, void* arg);
  static SSL_TICKET_RETURN DecryptTicketCallback(SSL* ssl, SSL_SESSION* session, const unsigned char* key_name,
                                                 size_t key_name_len, SSL_TICKET_STATUS status, void* arg);
  static SSL_SESSION* GetSessionCallback(SSL* ssl, const unsigned char* id, int id_len, int* copy);
  static int NewSessionCallback(SSL* ssl, SSL_SESSION* session);
  static int TicketKeyCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                               EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc);
  // ocsp_stapling.cc
  static int CertCallback(SSL* ssl, void* arg);
  static int StatusCallback(SSL* ssl, void* arg);
  // alpn.cc
  static int AlpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* out_len,
                                const unsigned char* in, unsigned int in_len, void* arg);
  static int NpnAdvertiseCallback(SSL* ssl, const unsigned char** out, unsigned int* out_len, void* arg);
  static int NpnSelectCallback(SSL* ssl, unsigned char** out, unsigned char* out_len, const unsigned char* in,
                               unsigned int in_len, void* arg);
  // verify.cc
  static int VerifyCallback(int preverify_ok, X509_STORE_CTX* store);
  // observe.cc
  static void KeylogCallback(const SSL* ssl, const char* line);
  static void InfoCallback(const SSL* ssl, int where, int ret);
  static void MessageCallback(int write_p, int version, int content_type, const void* buf, size_t len,
                              SSL* ssl, void* arg);

 private:
  friend class TlsConnection;  // the public entry points

  // kOpen: secure; kClosing: our close_notify is out, waiting for the
  // peer's (End with wait_for_peer); kDone: kClosed or kError was queued.
  // Transitions: SetState (tls_connection.cc), the only place state_ changes.
  enum class State { kStart, kHandshaking, kOpen, kClosing, kDone };
  // What a suspended handshake waits for.
  enum class Waiting { kNothing, kSni, kResumeSession, kOcsp };
  // Server, before ssl_ exists: what input_ holds of the first flight.
  // kReady: what OpenSSL should start on: a whole ClientHello, bytes that
  // cannot begin one (OpenSSL then reports them), or the transport's end.
  // kTooLarge: a ClientHello that max_input_buffer cannot hold whole.
  enum class FirstFlight { kIncomplete, kReady, kTooLarge };

  // ---- The state machine (tls_connection.cc) ----
  // Moves to `next`; the allowed transitions are listed there.
  void SetState(State next);
  bool secure() const { return state_ == State::kOpen || state_ == State::kClosing; }
  void Step();
  void Push(Event event);
  void Push(EventType type) { Push(internal::MakeEvent(type)); }
  // Ends the connection with `status` (kError); once.
  void Fail(absl::Status status);
  // Ends it cleanly (kClosed).
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
  // Takes the application's answer to the suspension `what`; an error will
  // be sent to the peer as `alert`.
  template <typename T>
  absl::Status Answer(Waiting what, absl::string_view call, absl::StatusOr<T> answer, bool& answered, T& slot,
                      int alert);
  // Sets a failure a callback found (a limit, a refused answer), reported
  // instead of OpenSSL's generic error, after `alert` went to the peer;
  // the first one set stays.
  void SetPendingFailure(absl::Status failure, int alert);

  // ---- The handshake (handshake.cc) ----
  // Makes ssl_ with its BIO and the per-SSL settings both roles share, and
  // a server's (a client's own are in Init).
  absl::Status NewSsl();
  void DoHandshake();
  void OnHandshakeDone();
  // The status for a failed handshake or record operation, from OpenSSL's
  // error queue (drained), the verification results and pending_failure_;
  // `if_empty` when OpenSSL queued nothing.
  absl::Status OpenSslFailure(absl::Status if_empty);
  // Whether SSL_get_error's `err` means the transport ended (OpenSSL 3 says
  // so with SSL_R_UNEXPECTED_EOF_WHILE_READING; the BIO's EOF is ours).
  bool IsTransportEof(int err) const;
  void SetVerifyTime() { X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl_.get()), absl::ToTimeT(now_)); }

  // ---- Application data (records.cc) ----
  void ReadPlaintext();
  // Encrypts buffered plaintext while the output buffer has room, then sends
  // the close_notify End() asked for once everything before it is out.
  void EncryptPending();
  // Write(): encrypts whole records of `data` (borrowed) directly while
  // EncryptPending could and the write buffer is empty; returns how many
  // bytes it took.
  size_t EncryptDirect(absl::Span<const uint8_t> data);
  void MaybeSendCloseNotify();

  // ---- The BIO (bio.cc) ----
  int ReadInput(char* out, int len);
  void WriteOutput(const char* in, int len);
  long BioControl(int cmd) const;

  // ---- ClientHello (client_hello.cc) ----
  FirstFlight CheckFirstFlight() const;
  // The ClientHello callback's work: SSL_CLIENT_HELLO_SUCCESS, _RETRY
  // (suspended for kSniRequest or kResumeSession) or _ERROR with *alert.
  int OnClientHello(SSL* ssl, int* alert);
  // Serves the rest of the handshake from `chosen` (SNI's choice).
  absl::Status SwitchContext(SSL* ssl, std::shared_ptr<const SecureContext> chosen);

  // ---- Sessions (sessions.cc) ----
  // Client: offers the session of ConnectionOptions (at Init).
  absl::Status OfferSession();
  // The data of the context that serves this handshake.
  const internal::ContextData* ServingData(const SSL* ssl) const;
  void StampSession(SSL* ssl, SSL_SESSION* session) const;
  bool AliveOnEngineClock(SSL_SESSION* session) const;
  // The application's answer to kResumeSession, for session id `id`; null
  // for a full handshake.
  SSL_SESSION* TakeResumedSession(SSL* ssl, const unsigned char* id, int id_len);
  // OpenSSL made a session: kNewSession (server) or kSession (client).
  void RecordNewSession(SSL* ssl, SSL_SESSION* session);

  // ---- OCSP (ocsp_stapling.cc) ----
  // The certificate callback's work: 1 go on, -1 suspended (kOcspRequest),
  // 0 fail.
  int OnCertificateNeeded(SSL* ssl);
  int OnStatus(SSL* ssl);

  // ---- ALPN, NPN (alpn.cc) ----
  int SelectAlpn(const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                 unsigned int in_len) const;
  void RecordNpnSelected(std::string protocol) { npn_selected_ = std::move(protocol); }

  // ---- Verification and identity (verify.cc) ----
  // The verify callback's verdict for the certificate at the top of `store`.
  int OnVerify(int preverify_ok, X509_STORE_CTX* store);
  // Client identity: checks `leaf` (borrowed) for identity_host_ and
  // stores the verdict in identity_status_; again after a resumed
  // handshake; and whether a session (with the chain verdict stored in it,
  // `verify_result`) may be offered at all.
  absl::Status CheckPeerIdentity(X509* leaf);
  void CheckResumedIdentity();
  bool MayOfferSession(SSL_SESSION* session, long verify_result) const;
  // Node's authorized/authorizationError from the verification results;
  // false when the connection had to fail because of them.
  bool UpdateAuthorization();
  // Before a renegotiation: verification starts again.
  void ResetVerification();

  // ---- Observation (observe.cc) ----
  void OnKeylogLine(const char* line);
  void OnAlert(int where, int ret);
  void OnHandshakeMessage(bool sent, int type, const unsigned char* message, size_t len);

  // ---- Renegotiation, key update (renegotiation.cc) ----
  // Counts a renegotiation attempt by the peer (accepted or refused)
  // against Node's CLIENT_RENEG_LIMIT per CLIENT_RENEG_WINDOW; false (and
  // the pending failure set) when it is one too many.
  bool CountPeerRenegotiation();
  // A renegotiation or post-handshake authentication completed.
  void OnRenegotiationDone();
  absl::Status Renegotiate(const RenegotiateOptions& options);
  absl::Status KeyUpdate(bool request_peer);

  // ---- The state ----
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
