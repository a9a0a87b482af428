// Blocking TLS over sockets, with a deadline on every call: TlsStream (one
// connection, client or server) and TlsListener (accepts TlsStreams). For
// programs that use a thread per connection or a plain request-reply
// client. No call blocks past its deadline: a silent peer costs a timeout,
// never a hang.
//
//   StreamOptions opts;                       // Node's tls.connect() options
//   opts.secure_context = ctx;
//   absl::Time deadline = absl::Now() + absl::Seconds(10);
//   auto stream = TlsStream::Connect("example.com", 443, opts, deadline);
//   if (!stream.ok()) return stream.status();  // NodeCode(): ECONNREFUSED, ...
//   absl::Status s = (*stream)->Write("GET / HTTP/1.0\r\n\r\n", deadline);
//   char buf[4096];
//   absl::StatusOr<size_t> n = (*stream)->Read(absl::MakeSpan(buf), deadline);
//
// Inside, each call is a poll() loop over the engine contract
// (core/tls_connection.h): interest() arms poll(), InputSpace()/CommitInput()
// take ciphertext in, Output()/ConsumeOutput() send it, NextEvent() is polled
// until nullopt after every change. Handshake messages met mid-stream
// (renegotiation, key update, post-handshake authentication) are handled by
// whatever call is running.
//
// Errors carry Node codes (NodeCode()): ENOTFOUND (name resolution),
// ECONNREFUSED, ETIMEDOUT (a deadline passed after the handshake, or while
// connecting), ERR_TLS_HANDSHAKE_TIMEOUT (the deadline passed during the
// handshake), ECONNRESET / EPIPE (the transport failed, or ended without
// close_notify), ERR_STREAM_DESTROYED (used after Close), or the engine's
// own (DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID, ...).
//
// Threads: a TlsStream is used by one thread at a time; different streams
// (sharing a SecureContext or not) are independent. TlsListener::Accept may
// be called from several threads at once.
#ifndef TLSENGINE_ADAPTERS_BLOCKING_TLS_STREAM_H_
#define TLSENGINE_ADAPTERS_BLOCKING_TLS_STREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "adapters/fd/fd_driver.h"
#include "core/certificate.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace blocking {

// The engine's options under their own names (Node's), plus the answers to
// the engine's suspension events, which the blocking calls give synchronously
// on the calling thread. An unset hook gives the default answer (keep the
// context, staple nothing, store nothing, no session to resume).
struct StreamOptions : ConnectionOptions {
  StreamOptions() = default;
  // From the engine's options alone (no hooks): StreamOptions(conn_opts).
  StreamOptions(const ConnectionOptions& options) : ConnectionOptions(options) {}  // NOLINT: implicit on purpose

  // Server with sni_callback (Node's SNICallback): the context for a name;
  // nullptr keeps secure_context, an error refuses the handshake.
  std::function<absl::StatusOr<std::shared_ptr<const SecureContext>>(const std::string& servername)> on_sni;
  // Server with ocsp_request (Node's 'OCSPRequest'): the DER response to
  // staple for our certificate (DER) and its issuer (DER, "" when unknown);
  // "" staples nothing.
  std::function<absl::StatusOr<std::string>(const std::string& certificate, const std::string& issuer)>
      on_ocsp_request;
  // Server with session_cache (Node's 'newSession' / 'resumeSession').
  std::function<absl::Status(const std::string& id, const std::string& session)> on_new_session;
  std::function<absl::StatusOr<std::string>(const std::string& id)> on_resume_session;
  // Client: each new session (Node's 'session' event); GetSession() holds
  // the newest too.
  std::function<void(const std::string& session)> on_session;
  // With keylog: each NSS key log line (Node's 'keylog').
  std::function<void(const std::string& line)> on_keylog;

  // Plaintext read from the peer but not yet asked for by Read() is kept up
  // to this many bytes; past it the stream stops reading the socket
  // (backpressure) until Read() takes some.
  size_t max_read_buffer = 256 * 1024;
  // Close(): how long, and how many bytes, to drain from the peer after
  // shutting down writing, so that closing does not reset the connection
  // before the peer has read our last alert (DESIGN.md, careful close).
  absl::Duration close_drain_time = absl::Milliseconds(250);
  size_t close_drain_bytes = 256 * 1024;
};

class TlsListener;

class TlsStream {
 public:
  // Resolves `host` (getaddrinfo: names, IPv4 and IPv6 literals), connects
  // to each address in turn and runs the handshake, all before `deadline`.
  // `options.host` defaults to `host` (SNI and the identity check, as in
  // Node). Returns the secure stream, or ENOTFOUND, ECONNREFUSED, ETIMEDOUT
  // (TCP connect), ERR_TLS_HANDSHAKE_TIMEOUT, ECONNRESET or the engine's code.
  // A failed handshake's careful close also ends by `deadline`.
  static absl::StatusOr<std::unique_ptr<TlsStream>> Connect(const std::string& host, int port,
                                                            StreamOptions options, absl::Time deadline);
  // The same over a unix-domain stream socket at `path`.
  static absl::StatusOr<std::unique_ptr<TlsStream>> ConnectUnix(const std::string& path, StreamOptions options,
                                                                absl::Time deadline);
  // Takes a connected stream socket (owned from now on, even on error) and
  // starts TLS on it, as client or server per options.is_server: STARTTLS.
  // `already_read` is ciphertext the caller read from the socket before
  // (a ClientHello read with the plaintext protocol's last line). The
  // handshake runs in the first call that needs it, or in Handshake().
  // kInvalidArgument for a bad fd or bad options.
  static absl::StatusOr<std::unique_ptr<TlsStream>> Wrap(int fd, StreamOptions options,
                                                         absl::string_view already_read = "");

  ~TlsStream();  // Close()
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Completes the handshake (OK at once when already done). A deadline
  // that passes is ERR_TLS_HANDSHAKE_TIMEOUT and fails the stream, as
  // Node's handshakeTimeout destroys the socket.
  absl::Status Handshake(absl::Time deadline);

  // Reads at most buf.size() bytes of plaintext; returns how many, at least
  // 1 when buf is not empty, or 0 once the peer sent close_notify (end of
  // stream). Waits for the handshake first. ETIMEDOUT when nothing arrived
  // by the deadline (the stream stays usable: call again); ECONNRESET when
  // the transport ended without close_notify (truncation); the engine's
  // code on a TLS failure (sticky).
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf, absl::Time deadline);
  absl::StatusOr<size_t> Read(absl::Span<char> buf, absl::Time deadline);
  // Fills all of buf, or fails: as Read, and ECONNRESET when the stream
  // ends (close_notify) first. What was read before an error is lost.
  absl::Status ReadFull(absl::Span<uint8_t> buf, absl::Time deadline);
  // Reads until `delimiter` has arrived (included in the result), max_size
  // bytes have, or the stream ended (then what came; "" once nothing is
  // left after close_notify). For line protocols; errors as Read.
  absl::StatusOr<std::string> ReadUntil(absl::string_view delimiter, size_t max_size, absl::Time deadline);

  // Encrypts and sends all of `data`: returns once the kernel has taken all
  // of it, or the error. ETIMEDOUT when the deadline passes first (part of
  // the data may have been sent, so this fails the stream);
  // ERR_STREAM_WRITE_AFTER_END after Shutdown().
  absl::Status Write(absl::string_view data, absl::Time deadline);
  absl::Status Write(absl::Span<const uint8_t> data, absl::Time deadline);

  // Node's end(): completes the handshake if under way, sends close_notify
  // after everything written and, with wait_for_peer, reads (and discards)
  // until the peer's close_notify. ETIMEDOUT at the deadline. Reads after it
  // still return buffered plaintext.
  absl::Status Shutdown(absl::Time deadline, bool wait_for_peer = false);

  // Sends close_notify if the stream is secure and was not shut down, and
  // any alert the engine still holds, shuts down writing, drains the peer
  // briefly (close_drain_time / close_drain_bytes) and closes the socket.
  // Bounded by close_drain_time plus the same again for sending. Idempotent;
  // later calls fail with ERR_STREAM_DESTROYED.
  void Close();

  // Mid-stream controls, each driven to completion before the deadline.
  // Renegotiate: TLS 1.2 renegotiation, or TLS 1.3 post-handshake
  // authentication with request_cert (server); waits for kRenegotiated.
  absl::Status Renegotiate(const RenegotiateOptions& options, absl::Time deadline);
  // TLS 1.3 KeyUpdate; returns once it has been sent.
  absl::Status KeyUpdate(bool request_peer, absl::Time deadline);

  // ---- Information (Node's names; the engine has the rest) ----
  const TlsConnection& connection() const { return *conn_; }
  bool authorized() const { return conn_->authorized(); }
  std::string authorization_error() const { return conn_->authorization_error(); }
  std::optional<CertificateInfo> GetPeerCertificate(bool detailed = false) const {
    return conn_->GetPeerCertificate(detailed);
  }
  std::optional<CertificateInfo> GetCertificate() const { return conn_->GetCertificate(); }
  std::optional<CipherInfo> GetCipher() const { return conn_->GetCipher(); }
  std::string protocol() const { return conn_->protocol(); }
  std::string servername() const { return conn_->servername(); }
  std::string alpn_protocol() const { return conn_->alpn_protocol(); }
  bool is_session_reused() const { return conn_->is_session_reused(); }
  std::string GetSession() const { return conn_->GetSession(); }
  // Client with request_ocsp: the stapled response ("" when none).
  const std::string& ocsp_response() const { return ocsp_response_; }
  // The sticky error, or OK.
  absl::Status status() const { return error_; }
  // The socket (owned by the stream), -1 after Close().
  int fd() const { return fd_; }

 private:
  friend class TlsListener;
  TlsStream(int fd, StreamOptions options, std::unique_ptr<TlsConnection> conn);

  // The one loop every call runs: drives the engine until done() is true,
  // an error, or the deadline (ETIMEDOUT, or ERR_TLS_HANDSHAKE_TIMEOUT
  // before 'secure', which is sticky).
  absl::Status Drive(absl::Time deadline, const std::function<bool()>& done);
  void PollEvents();
  void HandleEvent(const Event& ev);
  absl::Status Flush();  // sends what the socket takes now, without waiting
  void ReadSocket();     // until EAGAIN into InputSpace() (or the Wrap() bytes first)
  absl::Status Fail(absl::Status status);  // makes `status` sticky, returns it
  // Close(), with every wait also ending at `limit`: past it, the alert is
  // sent and the peer drained only as far as the socket allows at once.
  void CloseWithin(absl::Time limit);
  // Connect's last step: the handshake, and on failure the close, both
  // before `deadline`.
  static absl::StatusOr<std::unique_ptr<TlsStream>> HandshakeWithin(std::unique_ptr<TlsStream> stream,
                                                                    absl::Time deadline);
  absl::Status Usable() const;
  size_t readable_size() const { return readable_.size() - readable_start_; }
  size_t TakeReadable(absl::Span<uint8_t> buf);

  int fd_ = -1;
  StreamOptions options_;
  std::unique_ptr<TlsConnection> conn_;
  fdio::FdDriver driver_;       // fd_ and conn_, borrowed: reads, writes, the careful close
  std::string readable_;        // plaintext received, not yet Read()
  size_t readable_start_ = 0;   // readable_[0, start) was already Read()
  std::string already_read_;    // Wrap()'s bytes, fed before the socket's
  std::string ocsp_response_;
  absl::Status error_;          // sticky
  absl::Status transport_error_;
  bool secure_ = false;
  bool peer_closed_ = false;    // close_notify received
  bool truncated_ = false;      // transport EOF without close_notify
  bool transport_eof_ = false;
  bool ended_ = false;          // Shutdown() or Close() called End()
  bool engine_closed_ = false;  // kClosed seen
  bool closed_ = false;         // Close() done
  bool discard_input_ = false;  // Shutdown(wait_for_peer) drops plaintext
  uint64_t renegotiations_ = 0;
};

// A listening socket that accepts TLS servers' streams.
class TlsListener {
 public:
  // Listens on host:port (port 0: the kernel picks; see port()). host may be
  // a name, an IPv4 or an IPv6 literal; "" listens on every address.
  // `options` (is_server is forced) are used for every accepted stream.
  static absl::StatusOr<std::unique_ptr<TlsListener>> Listen(const std::string& host, int port,
                                                             StreamOptions options, int backlog = 128);
  // Listens on a unix-domain socket at `path` (an existing socket file there
  // is replaced; it is removed again by the destructor).
  static absl::StatusOr<std::unique_ptr<TlsListener>> ListenUnix(const std::string& path, StreamOptions options,
                                                                 int backlog = 128);
  ~TlsListener();
  TlsListener(const TlsListener&) = delete;
  TlsListener& operator=(const TlsListener&) = delete;

  // Waits for a connection until `deadline` (ETIMEDOUT) and returns its
  // stream before any TLS byte is read: the handshake runs in the stream's
  // first call, or in Handshake(deadline), so a thread per connection
  // spends the handshake's time, not the accepting thread. Thread-safe.
  absl::StatusOr<std::unique_ptr<TlsStream>> Accept(absl::Time deadline);
  // Stops the listener: Accept calls waiting in other threads return
  // ECONNABORTED within a short poll interval. Thread-safe.
  void Shutdown();

  int port() const { return port_; }  // 0 for a unix socket
  int fd() const { return fd_; }

 private:
  TlsListener(int fd, int port, std::string unix_path, StreamOptions options);
  int fd_ = -1;
  int port_ = 0;
  std::string unix_path_;
  StreamOptions options_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace blocking
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_BLOCKING_TLS_STREAM_H_
