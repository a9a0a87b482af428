// TlsConnection: one TLS endpoint (client or server) with no I/O of its own,
// Node's SecurePair / TLSSocket without the socket. Ciphertext goes in and
// comes out through buffers the engine owns; plaintext comes out as events.
//
//   ConnectionOptions opts;
//   opts.secure_context = ctx;  opts.servername = "example.com";
//   auto conn = TlsConnection::Create(opts).value();
//   for (;;) {
//     while (std::optional<Event> ev = conn->NextEvent(now)) { ... }
//     for (absl::Span<const uint8_t> out : conn->Output()) { n = send(out); conn->ConsumeOutput(n); }
//     absl::Span<uint8_t> space = conn->InputSpace();
//     n = recv(space); n > 0 ? conn->CommitInput(n) : conn->OnTransportEof();
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

namespace tlsengine {

enum class EventType {
  kHandshakeStart,  // the first handshake began
  kSecure,          // handshake done: Node's 'secure' / 'secureConnect'
  kData,            // plaintext from the peer, in Event::data
  kPeerClosed,      // the peer sent close_notify: no more data will come
  kTruncated,       // the transport ended without close_notify
  kClosed,          // our Close() finished; the engine is done
  kError,           // fatal; Event::status says why. Nothing follows.
};

absl::string_view EventTypeName(EventType type);

struct Event {
  EventType type;
  // kData: the plaintext, borrowed; valid until the next non-const call.
  absl::Span<const uint8_t> data;
  // kError: the error, with NodeCode() and, when one was sent or received,
  // AlertOf().
  absl::Status status;
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
  // Called from inside the handshake with the leaf certificate, only when
  // the chain verified. Return OK or an error (its code is reported).
  std::function<absl::Status(absl::string_view host, const CertificateInfo& cert)>
      check_server_identity;
  // Node's handshakeTimeout: the whole handshake must finish in this time.
  absl::Duration handshake_timeout = absl::Seconds(120);
  // Close(): how long to wait for the peer's close_notify.
  absl::Duration close_timeout = absl::Seconds(5);
  // Bounds on the engine's buffers, in bytes. The input buffer must hold at
  // least one maximal record (18437 bytes).
  size_t max_input_buffer = 64 * 1024;
  size_t max_output_buffer = 64 * 1024;
  size_t max_write_buffer = 64 * 1024;
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
  // Free space at the end of the input buffer; empty means backpressure
  // (stop reading from the transport until events are polled).
  absl::Span<uint8_t> InputSpace();
  // Marks `n` bytes of InputSpace() as received. kInvalidArgument if n is
  // larger than the space; the sticky error once the connection failed.
  absl::Status CommitInput(size_t n);
  // Copies as much of `data` as fits; returns how much was taken.
  absl::StatusOr<size_t> Feed(absl::Span<const uint8_t> data);
  // The transport reached end of file. A close before the handshake ends is
  // an error (ECONNRESET); after it, kTruncated unless the peer sent
  // close_notify first.
  void OnTransportEof();

  // ---- Events ----
  // Advances the state machine with what was fed and returns the next event,
  // or nullopt when the engine needs more input (or is done).
  std::optional<Event> NextEvent(absl::Time now);

  // ---- Plaintext in ----
  // Buffers plaintext for sending (before the handshake ends too). Returns
  // how much was accepted, 0 when the write buffer is full. Small writes are
  // coalesced: records are made when Output() is called.
  // kFailedPrecondition (ERR_STREAM_WRITE_AFTER_END) after Close(); the
  // sticky error after a failure.
  absl::StatusOr<size_t> Write(absl::Span<const uint8_t> data);
  absl::StatusOr<size_t> Write(absl::string_view data);

  // ---- Ciphertext out ----
  // Encrypts buffered plaintext into records (while the output buffer has
  // room) and returns the pending ciphertext, borrowed, valid until the next
  // non-const call. Still drained after a fatal error: it carries the alert.
  absl::InlinedVector<absl::Span<const uint8_t>, 2> Output();
  // Bytes of ciphertext waiting in the output buffer.
  size_t OutputSize() const;
  // The transport took `n` bytes of Output().
  void ConsumeOutput(size_t n);

  // ---- Time ----
  // When OnTimer() must be called next; absl::InfiniteFuture() for never.
  absl::Time NextDeadline() const;
  // Fires due timers: the handshake timeout (ERR_TLS_HANDSHAKE_TIMEOUT) and
  // the close_notify wait (ERR_TLS_CLOSE_TIMEOUT).
  void OnTimer(absl::Time now);

  // ---- Closing ----
  // Sends close_notify after any buffered plaintext. With wait_for_peer,
  // kClosed comes when the peer's close_notify arrives (or close_timeout
  // passes, as an error); otherwise at once. Before the handshake ends it
  // just stops the engine (kClosed). Idempotent.
  void Close(absl::Time now, bool wait_for_peer = false);

  // ---- State and introspection (Node's names) ----
  bool is_server() const;
  bool encrypted() const { return true; }
  bool secure() const;             // handshake done and not failed
  bool finished() const;           // kClosed or kError was emitted
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

 private:
  class Impl;
  explicit TlsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_TLS_CONNECTION_H_
