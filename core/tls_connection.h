// TlsConnection: one TLS endpoint (client or server) with no I/O of its own,
// Node's SecurePair / TLSSocket without the socket. Ciphertext goes in and
// comes out through buffers the engine owns; plaintext comes out as events.
//
// The loop an adapter runs (a non-blocking socket; see examples/ for a whole
// program):
//
//   auto conn = TlsConnection::Create(opts, now).value();
//   for (;;) {
//     // 1. Poll events after anything that may have changed the engine.
//     while (std::optional<Event> ev = conn->NextEvent(now)) { ... }
//     // 2. Arm the poller and the timer from one answer.
//     Interest want = conn->interest();
//     poll(fd, want.read ? POLLIN : 0 | want.write ? POLLOUT : 0, until want.deadline);
//     // 3. Move bytes. Output() encrypts pending plaintext first.
//     if (writable) for (auto span : conn->Output()) {
//       ssize_t n = send(fd, span.data(), span.size(), 0);
//       if (n < 0) break;                       // EAGAIN: keep it for later
//       conn->ConsumeOutput(n);                 // an error only if n > pending
//       if (size_t(n) < span.size()) break;
//     }
//     if (readable) {
//       absl::Span<uint8_t> space = conn->InputSpace();  // a reservation
//       ssize_t n = recv(fd, space.data(), space.size(), 0);
//       if (n > 0) conn->CommitInput(n);        // ends the reservation
//       else if (n == 0) conn->OnTransportEof();
//       else conn->CommitInput(0);              // EAGAIN: cancel it
//     }
//     if (now >= want.deadline) conn->OnTimer(now);
//   }
//
// Not thread-safe: one thread drives one connection at a time. Different
// connections (sharing a SecureContext or not) are independent.
#ifndef TLSENGINE_CORE_TLS_CONNECTION_H_
#define TLSENGINE_CORE_TLS_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/certificate.h"
#include "core/secure_context.h"
#include "core/tls_session.h"

namespace tlsengine {

enum class EventType {
  kHandshakeStart,  // the first handshake began
  kSecure,          // handshake done: Node's 'secure' / 'secureConnect'
  kData,            // plaintext from the peer, in Event::data
  kPeerClosed,      // the peer sent close_notify: no more data will come
  kTruncated,       // the transport ended without close_notify
  kClosed,          // End() finished (close_notify sent, and the peer's when
                    // waited for) or Destroy() was called; the engine is done
  kError,           // fatal; Event::status says why. Nothing follows.

  // Suspensions: the handshake waits until the application answers with
  // the named call, now or much later (Node's callbacks).
  kSniRequest,      // server, sni_callback: Event::servername -> AnswerSni()
  kResumeSession,   // server, session_cache: Event::session_id -> AnswerResumeSession()
  kNewSession,      // server, session_cache: Event::session_id, ::session -> AckNewSession();
                    // output and 'secure' are held until then, as in Node
  kOcspRequest,     // server, ocsp_request: Event::certificate, ::issuer -> AnswerOcspRequest()

  // Information.
  kSession,         // client: a session to resume later (Event::session); in
                    // TLS 1.3 it arrives after 'secure', with each ticket
  kOcspResponse,    // client, request_ocsp: Event::ocsp_response ("" when none stapled)
  kKeylog,          // keylog: one NSS key log line in Event::line (no newline)
  kRenegotiated,    // a renegotiation (TLS 1.2) or post-handshake
                    // authentication (TLS 1.3) completed
  kDrain,           // Node's 'drain': a Write() took less than it was given,
                    // and the write buffer has since emptied
};

absl::string_view EventTypeName(EventType type);

struct Event {
  EventType type = EventType::kError;
  // kData: the plaintext, borrowed; valid until the next non-const call.
  absl::Span<const uint8_t> data;
  // kError: the error, with NodeCode() and, when one was sent or received,
  // AlertOf().
  absl::Status status;
  std::string servername;     // kSniRequest
  std::string session_id;     // kResumeSession, kNewSession
  std::string session;        // kNewSession, kSession: serialized (DER) session
  // kNewSession: the session travels inside a TLS 1.3 ticket (tickets on):
  // it resumes from the ticket alone and nothing will ask for it by id, so
  // a session store has no need to keep it (Node still emits newSession).
  bool stateless_ticket = false;
  // kSession: the same session, decoded, to resume with without decoding
  // `session` again (ConnectionOptions::session_handle).
  std::shared_ptr<const TlsSession> session_handle;
  std::string certificate;    // kOcspRequest: our certificate, DER
  std::string issuer;         // kOcspRequest: its issuer, DER ("" when unknown)
  std::string ocsp_response;  // kOcspResponse: DER
  std::string line;           // kKeylog
};

struct ConnectionOptions {
  bool is_server = false;
  // Required. Shared; kept alive by the connection.
  std::shared_ptr<const SecureContext> secure_context;
  // Client: sent as SNI and checked against the server certificate.
  std::string servername;
  // Client: the host connected to. When `servername` is empty, a host that
  // is not an IP literal is sent as SNI (modern Node), and the identity
  // check uses this host ("localhost" when both are empty, as in Node).
  std::string host;
  // Server: ask the client for a certificate.
  bool request_cert = false;
  // Client: fail the handshake when the server is not authorized.
  // Server (with request_cert): fail when the client is not authorized.
  bool reject_unauthorized = true;
  // Client: replaces CheckServerIdentity (Node's checkServerIdentity).
  // Called with the leaf certificate, only when the chain verified: inside
  // a full handshake, after a resumed one, and, when reject_unauthorized,
  // at Create() for a `session` (not offered unless this accepts its
  // certificate; without rejection any session is offered). Return OK or an
  // error (its code is reported); an exception is caught and reported as
  // ERR_TLS_CERT_ALTNAME_INVALID "check_server_identity threw: ...".
  std::function<absl::Status(absl::string_view host, const CertificateInfo& cert)>
      check_server_identity;
  // Node's handshakeTimeout: the whole handshake must finish in this time.
  absl::Duration handshake_timeout = absl::Seconds(120);
  // End(now, wait_for_peer=true): how long the peer may stay silent while
  // we wait for its close_notify; each record of data from it starts the
  // wait again (ERR_TLS_CLOSE_TIMEOUT when it passes).
  absl::Duration close_timeout = absl::Seconds(5);

  // ---- SNI (server) ----
  // Node's server.addContext table: consulted by exact name, then wildcard,
  // falling back to secure_context. Shared; may change while in use.
  std::shared_ptr<SniContexts> sni_contexts;
  // Node's SNICallback: every ClientHello with a servername raises
  // kSniRequest instead of consulting sni_contexts.
  bool sni_callback = false;

  // ---- Application protocols ----
  // ALPN (RFC 7301) and NPN, in priority order. A server whose ALPN list
  // shares nothing with the client's ends the handshake with the
  // no_application_protocol alert, as modern Node does.
  std::vector<std::string> alpn_protocols;
  // NPN, TLS 1.2 and below only: replaces the context's list for this
  // connection. A server may have it without one in its context; a client's
  // context must have a list (SecureContextOptions::npn_protocols).
  std::vector<std::string> npn_protocols;

  // ---- Sessions ----
  // Client: a session from an earlier kSession event or GetSession(), to
  // resume (Node's `session`). With reject_unauthorized it is offered only
  // if its chain verified and its certificate passes this host's identity
  // check; without, always, and a resumed handshake reports authorized /
  // authorization_error again from the session's verify result and
  // certificate, as the full handshake did.
  std::string session;
  // Client: the same, decoded once (Event::session_handle,
  // GetSessionHandle(), TlsSession::FromDer()); shared, never changed. When
  // it is set, `session` must be empty (kInvalidArgument otherwise).
  std::shared_ptr<const TlsSession> session_handle;
  // Server: raise kNewSession / kResumeSession so the application keeps
  // sessions in its own store (Node's 'newSession'/'resumeSession').
  bool session_cache = false;

  // ---- OCSP stapling ----
  bool request_ocsp = false;  // client: ask for a stapled response
  bool ocsp_request = false;  // server: raise kOcspRequest when asked

  // ---- Renegotiation and post-handshake authentication ----
  // Server: accept client-initiated TLS 1.2 renegotiation, at most
  // client_reneg_limit times per client_reneg_window (Node's
  // CLIENT_RENEG_LIMIT / CLIENT_RENEG_WINDOW); one more ends the connection
  // with ERR_TLS_SESSION_ATTACK. Off by default (OpenSSL 3.0's default).
  bool allow_client_renegotiation = false;
  int client_reneg_limit = 3;
  absl::Duration client_reneg_window = absl::Seconds(600);
  // Client: offer TLS 1.3 post-handshake authentication (RFC 8446 §4.6.2),
  // which Renegotiate({.request_cert = true}) on a TLS 1.3 server uses.
  bool post_handshake_auth = true;

  // Raise kKeylog events (for SSLKEYLOGFILE).
  bool keylog = false;

  // Bounds on the engine's buffers, in bytes. The input buffer must hold at
  // least one maximal record (18437 bytes). A server holds the peer's
  // first flight there until the ClientHello is whole, and only then
  // starts OpenSSL; a ClientHello that cannot fit is refused
  // (ERR_SSL_EXCESSIVE_MESSAGE_SIZE, illegal_parameter alert). The engine
  // stops reading input while its output buffer holds max_output_buffer
  // bytes or more, so a peer cannot make it queue responses without bound;
  // a single record can still add its response (a flight at most) past the
  // bound.
  size_t max_input_buffer = 64 * 1024;
  size_t max_output_buffer = 64 * 1024;
  size_t max_write_buffer = 64 * 1024;

  // Peer-triggered work without application data in between: more TLS 1.3
  // KeyUpdates asking for ours than this end the connection
  // (ERR_TLS_TOO_MANY_KEY_UPDATES); more NewSessionTickets than
  // max_session_events raise no further kSession events (GetSession()
  // still returns the newest).
  int max_key_updates = 32;
  int max_session_events = 16;
};

// What the engine wants from its transport, in one answer, so an adapter can
// arm its poller and its timer without calling Output() speculatively
// (rustls's wants_read/wants_write, Asio's want_input/want_output).
struct Interest {
  // InputSpace() would offer room: arm EPOLLIN. False while the input or the
  // output buffer is full (backpressure), after transport EOF and when done.
  bool read = false;
  // Output() would return ciphertext (counting plaintext it can encrypt
  // now and a close_notify it has to send): arm EPOLLOUT.
  bool write = false;
  // When OnTimer() must be called; absl::InfiniteFuture() for never.
  absl::Time deadline = absl::InfiniteFuture();
};

// Node's renegotiate() options.
struct RenegotiateOptions {
  bool request_cert = false;
  bool reject_unauthorized = true;
};

// Node's getEphemeralKeyInfo(): the peer's key-exchange key (client only).
struct EphemeralKeyInfo {
  std::string type;  // "ECDH" or "DH"
  std::string name;  // "X25519", "prime256v1", ... (ECDH only)
  int size = 0;      // bits
};

// Counters, for tests and monitoring.
struct ConnectionStats {
  uint64_t key_updates_sent = 0;
  uint64_t key_updates_received = 0;
  uint64_t renegotiations = 0;  // completed renegotiations / post-handshake auths
};

// Node's getCipher().
struct CipherInfo {
  std::string name;           // OpenSSL name, "ECDHE-RSA-AES128-GCM-SHA256"
  std::string standard_name;  // IANA name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
  std::string version;        // "TLSv1.2", "TLSv1.3"
};

class TlsConnection {
 public:
  // kInvalidArgument for a missing context or out-of-range limits.
  static absl::StatusOr<std::unique_ptr<TlsConnection>> Create(ConnectionOptions options,
                                                               absl::Time now);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // ---- Ciphertext in ----
  // Reserves free space at the end of the input buffer and returns it; an
  // empty span means backpressure (poll events and drain Output() first).
  // The reservation stays valid, whatever else is called, until
  // CommitInput() ends it, so a read may be outstanding while the engine is
  // polled (io_uring, Asio). Calling again before committing returns the same
  // reservation.
  absl::Span<uint8_t> InputSpace();
  // The first `n` bytes of the reservation were filled; ends it (n == 0
  // cancels it). kFailedPrecondition (ERR_TLS_INVALID_STATE) without a
  // reservation, kInvalidArgument when n exceeds it; after a failure the
  // sticky error (the bytes are dropped).
  absl::Status CommitInput(size_t n);
  // Copies as much of `data` as fits; returns how much was taken.
  absl::StatusOr<size_t> Feed(absl::Span<const uint8_t> data);
  // The transport reached end of file. A close before the handshake ends is
  // an error (ECONNRESET); after it, kTruncated unless the peer sent
  // close_notify first.
  void OnTransportEof();

  // ---- Events ----
  // Advances the state machine with what was fed and returns the next event,
  // or nullopt when nothing can happen without more input, drained output,
  // an answer or a timer. One call processes at most one record's worth of
  // input while events wait, so what a peer can make the engine queue is
  // bounded. Call it until nullopt after every call that feeds or changes
  // the engine (CommitInput, OnTransportEof, ConsumeOutput, Write, the
  // Answer* calls, OnTimer, End, Renegotiate, KeyUpdate).
  std::optional<Event> NextEvent(absl::Time now);

  // ---- Plaintext in ----
  // Buffers plaintext for sending (before the handshake ends too, and while
  // a renegotiation runs). Returns how much was accepted, 0 when the write
  // buffer is full; kDrain follows once it has emptied. Small writes are
  // coalesced: records are made when Output() is called.
  // kFailedPrecondition (ERR_STREAM_WRITE_AFTER_END) after End() or
  // Destroy(); the sticky error after a failure.
  absl::StatusOr<size_t> Write(absl::Span<const uint8_t> data);
  absl::StatusOr<size_t> Write(absl::string_view data);

  // ---- Ciphertext out ----
  // Encrypts buffered plaintext into records (while the output buffer has
  // room; then the close_notify End() asked for) and returns the pending
  // ciphertext, borrowed, valid until the next non-const call. Still drained
  // after a fatal error or End(): it carries the alert or close_notify.
  // Empty while a kNewSession waits for AckNewSession().
  absl::InlinedVector<absl::Span<const uint8_t>, 2> Output();
  // Bytes of ciphertext ready in the output buffer (plaintext not yet
  // encrypted does not count: see interest().write).
  size_t OutputSize() const;
  // The transport took `n` bytes of Output(). kInvalidArgument, consuming
  // nothing, when n is more than is pending.
  absl::Status ConsumeOutput(size_t n);

  // ---- Interest and time ----
  // What the engine wants now: transport input, transport output, a timer.
  Interest interest() const;
  // When OnTimer() must be called next; absl::InfiniteFuture() for never.
  absl::Time NextDeadline() const;
  // Fires due timers: the handshake timeout, for the first handshake and
  // for each renegotiation or post-handshake authentication
  // (ERR_TLS_HANDSHAKE_TIMEOUT), and the close_notify wait
  // (ERR_TLS_CLOSE_TIMEOUT).
  void OnTimer(absl::Time now);

  // ---- Closing (Node's end() and destroy()) ----
  // Node's end(): finishes the handshake if it is under way, sends all
  // plaintext written so far, then close_notify. Data from the peer keeps
  // arriving until its close_notify. kClosed comes once our close_notify is
  // queued or, with wait_for_peer, once the peer's arrives (close_timeout
  // bounds each silence in the wait: ERR_TLS_CLOSE_TIMEOUT). Idempotent.
  void End(absl::Time now, bool wait_for_peer = false);
  // Node's destroy(): stops at once. Buffered plaintext, pending ciphertext
  // and queued events are dropped; the only event left is kClosed (none if
  // the engine had already finished). An input reservation stays valid
  // until committed. Idempotent.
  void Destroy();

  // ---- Memory ----
  // Frees what an idle connection need not hold: the engine's empty
  // buffers (NextEvent does that too when it returns nullopt) and
  // OpenSSL's record buffers (SSL_free_buffers, about 33 KB), which
  // NextEvent frees by itself only while the first handshake waits for the
  // peer and once after each handshake. Call it when the connection waits
  // (a keep-alive connection whose transport has nothing to read and whose
  // Output() is drained); the next record
  // allocates them again, so calling it after every record costs time.
  // False, freeing nothing, while input, output or plaintext is buffered
  // or a reservation is held; false too while a handshake is under way or
  // a record is partly read; true once the connection is done.
  bool ReleaseBuffers();

  // ---- State and introspection (Node's names) ----
  bool is_server() const;
  bool encrypted() const { return true; }
  bool secure() const;             // handshake done and not failed or closed
  bool finished() const;           // kClosed or kError was queued
  absl::Status status() const;     // OK, or the sticky error
  // Node's authorized / authorizationError. authorization_error() is a code
  // such as "DEPTH_ZERO_SELF_SIGNED_CERT" ("" when authorized or unchecked).
  bool authorized() const;
  std::string authorization_error() const;
  // The full status behind authorization_error(), with OpenSSL's message.
  absl::Status authorization_status() const;
  // The peer's certificate, with the issuer chain when `detailed`.
  std::optional<CertificateInfo> GetPeerCertificate(bool detailed = false) const;
  // Our own certificate as sent (Node's getCertificate()).
  std::optional<CertificateInfo> GetCertificate() const;
  std::optional<CipherInfo> GetCipher() const;
  std::string protocol() const;    // "TLSv1.3"; "" before the handshake
  std::string servername() const;  // the SNI name sent (client) or received (server)
  bool is_session_reused() const;

  // ---- Answers to suspensions (each: kFailedPrecondition with
  // ERR_TLS_INVALID_STATE when nothing waits for it). An error answer ends
  // the handshake with that error, after sending the client an alert
  // (unrecognized_name for SNI, internal_error otherwise). ----
  // kSniRequest: the context to use; nullptr keeps secure_context.
  absl::Status AnswerSni(absl::StatusOr<std::shared_ptr<const SecureContext>> context);
  // kResumeSession: the serialized session stored under the id, "" for none.
  absl::Status AnswerResumeSession(absl::StatusOr<std::string> session);
  // kNewSession: stored (or an error, which ends the connection). Each
  // kNewSession event takes one acknowledgement (TLS 1.3 servers issue two
  // tickets); output and later events wait until all are acknowledged.
  absl::Status AckNewSession(absl::Status stored = absl::OkStatus());
  // kOcspRequest: the DER response to staple, "" for none.
  absl::Status AnswerOcspRequest(absl::StatusOr<std::string> response);

  // ---- Sessions (Node's getSession(), getTLSTicket()) ----
  std::string GetSession() const;    // serialized; "" before there is one
  // The same, decoded (for ConnectionOptions::session_handle); nullptr
  // before there is one.
  std::shared_ptr<const TlsSession> GetSessionHandle() const;
  std::string GetTlsTicket() const;  // client: the ticket bytes; "" when none

  // ---- Application protocols ----
  std::string alpn_protocol() const;  // "" when none was agreed
  std::string npn_protocol() const;   // "" when none was agreed

  // ---- Renegotiation, key update ----
  // TLS 1.2: renegotiates (a server may ask for the client's certificate).
  // TLS 1.3 server with request_cert: post-handshake authentication. Ends
  // with kRenegotiated (or kError). kFailedPrecondition with
  // ERR_TLS_RENEGOTIATE when it cannot start (not secure, TLS 1.3 without
  // request_cert, client without post-handshake support).
  absl::Status Renegotiate(const RenegotiateOptions& options);
  // TLS 1.3 KeyUpdate (RFC 8446 §4.6.3); request_peer asks the peer to
  // update its keys too. kFailedPrecondition on TLS 1.2 or before 'secure'.
  absl::Status KeyUpdate(bool request_peer);

  // ---- More controls and information (Node's names) ----
  // Records we send carry at most `size` bytes of plaintext; false (and no
  // change) outside 512..16384.
  bool SetMaxSendFragment(size_t size);
  // RFC 5705 / RFC 8446 §7.5 exporter. kFailedPrecondition before 'secure'.
  absl::StatusOr<std::string> ExportKeyingMaterial(size_t length, absl::string_view label,
                                                   std::optional<absl::string_view> context = std::nullopt) const;
  std::string GetFinished() const;      // our last Finished message; "" before
  std::string GetPeerFinished() const;  // the peer's
  std::optional<EphemeralKeyInfo> GetEphemeralKeyInfo() const;  // client only
  std::vector<std::string> GetSharedSigalgs() const;  // "ECDSA+SHA256", "RSA-PSS+SHA256", ...
  ConnectionStats stats() const;

  // The engine's state; defined in core/internal (opaque to users).
  class Impl;

 private:
  explicit TlsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_TLS_CONNECTION_H_
