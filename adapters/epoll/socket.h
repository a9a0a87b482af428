// TlsSocket: Node's tls.TLSSocket on an epoll Loop. TlsSocket::Connect is
// tls.connect(); TlsSocket::Wrap is new tls.TLSSocket(socket, options) over
// an fd that is already connected (STARTTLS, with the bytes already read);
// Server hands out server-side TlsSockets in its secureConnection event.
//
//   TlsSocketOptions o;
//   o.host = "localhost"; o.port = 8443;
//   o.tls.secure_context = ctx;                 // every core option is in o.tls
//   auto sock = TlsSocket::Connect(loop, o).value();
//   sock->handlers().on_secure_connect = [&] { sock->End("hello\n"); };
//   sock->handlers().on_data = [](absl::string_view d) { ... };
//   sock->handlers().on_error = [](const absl::Status& s) { tlsengine::NodeCode(s); };
//   sock->handlers().on_close = [&](bool had_error) { loop->Stop(); };
//   loop->Run();
//
// Ownership: Connect and Wrap return a shared_ptr, and the socket keeps
// itself alive until it has emitted 'close', so the caller may drop its
// reference at any time (Node's sockets live while open). Handlers may call
// any method, Destroy() included, and may drop references.
//
// Threads: a socket belongs to its loop's thread; every method must be
// called there (or before the loop runs). The loop must outlive the socket:
// shut the loop down (Loop::Shutdown) before destroying it.
//
// Events are never raised from inside Connect/Wrap or from a method called
// by the application (except handlers called by the handler-running code
// itself): set handlers right after Connect/Wrap returns.
#ifndef TLSENGINE_ADAPTERS_EPOLL_SOCKET_H_
#define TLSENGINE_ADAPTERS_EPOLL_SOCKET_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/epoll/connection.h"
#include "adapters/epoll/loop.h"
#include "core/certificate.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace epoll {

// Node's address() object: {address, family, port}. family is "IPv4",
// "IPv6" or "unix" (then `address` is the path, or "" for an unnamed unix
// socket, and port is 0).
struct SocketAddress {
  std::string address;
  std::string family;
  int port = 0;
};

// The address of a socket fd (getsockname / getpeername). kUnavailable with
// the errno name as the Node code when the call fails.
absl::StatusOr<SocketAddress> LocalAddressOf(int fd);
absl::StatusOr<SocketAddress> PeerAddressOf(int fd);

// Node's readyState.
enum class ReadyState {
  kOpening,    // connecting (resolving, TCP connect)
  kOpen,       // both directions open
  kReadOnly,   // we ended (end() called), the peer may still send
  kWriteOnly,  // the peer ended, we may still send
  kClosed,
};
absl::string_view ReadyStateName(ReadyState state);  // "opening", "open", "readOnly", ...

// Node's socket events. All run on the loop thread; any may be empty.
struct SocketHandlers {
  // The TCP connection is up (Node's 'connect'): Connect's sockets, and
  // Wrap's when it waited for the connect to complete.
  std::function<void()> on_connect;
  // Client: the handshake is done and the peer authorized, or
  // reject_unauthorized is false (Node's 'secureConnect'). Server-side
  // sockets announce themselves through Server's on_secure_connection.
  std::function<void()> on_secure_connect;
  // Plaintext from the peer; the view is valid during the call only.
  std::function<void(absl::string_view data)> on_data;
  // The peer will send no more (close_notify, or a TCP EOF after the
  // handshake: check truncated()). Node's 'end'.
  std::function<void()> on_end;
  // Fatal error, with a Node code (NodeCode(status)): the engine's
  // (ERR_TLS_CERT_ALTNAME_INVALID, DEPTH_ZERO_SELF_SIGNED_CERT,
  // ERR_TLS_HANDSHAKE_TIMEOUT, ...) or the transport's (ECONNREFUSED,
  // ECONNRESET, EPIPE, ENOTFOUND, ETIMEDOUT). 'close' follows. On a socket
  // a Server accepted, errors before 'secure' go to Server's
  // on_client_error instead (a wrapped server-role socket raises on_error).
  std::function<void(const absl::Status& error)> on_error;
  // The socket is closed (fd released). Always the last event, exactly once.
  std::function<void(bool had_error)> on_close;
  // Write() returned false and everything written has since been handed to
  // the engine and encrypted (Node's 'drain').
  std::function<void()> on_drain;
  // Client with request_ocsp: the stapled response (DER), "" when none.
  std::function<void(const std::string& response)> on_ocsp_response;
  // Client: a session to resume with TlsSocketOptions::tls.session.
  std::function<void(const std::string& session)> on_session;
  // One NSS key-log line (no newline), when TlsSocketOptions::keylog or a
  // keylog file is set. Node's 'keylog'.
  std::function<void(const std::string& line)> on_keylog;
  // SetTimeout's idle period passed with no bytes in or out. Fires once per
  // idle period; the socket stays open (Node's 'timeout').
  std::function<void()> on_timeout;
  // A renegotiation (TLS 1.2) or post-handshake authentication finished,
  // whoever started it (the peer, or Renegotiate(), whose `done` runs
  // first). Node has no such event; tlsctl reports it.
  std::function<void()> on_renegotiated;
};

struct TlsSocketOptions {
  // Every core option (secure_context is required; servername, ALPN,
  // session, request_ocsp, reject_unauthorized, check_server_identity,
  // handshake_timeout, keylog, ...). `tls.host` is filled from `host` when
  // empty. is_server is honoured by Wrap only (Connect makes a client).
  ConnectionOptions tls;
  // Connect by name or address and port; `path` (a unix socket) wins over
  // `port`, as in Node. A host that is not a numeric address is resolved
  // by getaddrinfo on a helper thread, so the loop never blocks.
  std::string host = "localhost";
  int port = 0;
  std::string path;
  // 0: any (IPv4 or IPv6, in resolver order, trying each); 4 or 6.
  int family = 0;
  // Write() returns false once this many bytes wait in the adapter's
  // queue beyond what the engine took (Node's writableHighWaterMark).
  size_t high_water_mark = 16 * 1024;
  // A hard bound on what Write() keeps beyond what the engine took. Write()
  // above high_water_mark still takes the data (Node's semantics: false
  // means "wait for drain", not "dropped"); one that would take the queue
  // past this bound is refused instead, and the socket is destroyed with
  // kResourceExhausted (ERR_TLS_BUFFER_FULL): a peer that never reads
  // cannot grow our memory without bound, and the stream is never left
  // with a hole in it. Must be at least high_water_mark.
  size_t max_buffered_writes = 16 << 20;
  // TCP_NODELAY at connect (Node's noDelay; on by default here, as every
  // flight is one writev of whole records).
  bool no_delay = true;
  // SO_KEEPALIVE at connect, with the initial delay when non-zero.
  bool keep_alive = false;
  absl::Duration keep_alive_initial_delay = absl::ZeroDuration();
  // Append NSS key-log lines to this file (as Node's --tls-keylog). Empty:
  // the SSLKEYLOGFILE environment variable when honour_sslkeylogfile.
  std::string keylog_file;
  bool honour_sslkeylogfile = true;
  // Node's allowHalfOpen: false (the default) ends our side as soon as
  // the peer's 'end' has been emitted; true leaves that to the application.
  bool allow_half_open = false;
  // The careful close's bounds.
  DriverOptions driver;
};

class TlsSocket : public std::enable_shared_from_this<TlsSocket> {
 public:
  // tls.connect(options). Fails at once only for bad options
  // (kInvalidArgument: no secure_context, no port and no path, a port out
  // of range, a bad family); every network failure (ENOTFOUND,
  // ECONNREFUSED, ...) arrives later as on_error then on_close.
  static absl::StatusOr<std::shared_ptr<TlsSocket>> Connect(Loop* loop, TlsSocketOptions options);

  // new tls.TLSSocket(fd, options): TLS over a connected stream socket
  // `fd` (taken: closed at the end, also on error). `already_read` is
  // ciphertext the application read from it before handing it over
  // (STARTTLS: the peer's ClientHello may already sit in the application's
  // plaintext buffer); it is fed to the engine before anything from the
  // socket. options.tls.is_server picks the role. A TCP socket whose
  // non-blocking connect is still under way (EINPROGRESS) is waited for, as
  // Node's tls.connect({socket}) waits for the socket's 'connect': then
  // on_connect, and the handshake starts (a failed connect is on_error with
  // its errno code, ECONNREFUSED, ...). kInvalidArgument for a bad fd or
  // options; kFailedPrecondition (ENOTCONN) for a socket neither connected
  // nor connecting (nothing could connect it once it is ours); kUnavailable
  // for an fd that is not a stream socket.
  static absl::StatusOr<std::shared_ptr<TlsSocket>> Wrap(Loop* loop, int fd, TlsSocketOptions options,
                                                         absl::string_view already_read = "");

  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  SocketHandlers& handlers() { return handlers_; }

  // ---- Writing (Node's write(), end(), destroy()) ----
  // Queues `data` (it is taken, before the handshake too). Returns false
  // when the queue beyond what the engine holds is at or above
  // high_water_mark (then on_drain follows), or when the socket is ending
  // or closed (the data is then dropped and on_error gets
  // ERR_STREAM_WRITE_AFTER_END / ERR_STREAM_DESTROYED once), or when
  // taking it would pass max_buffered_writes (dropped; the socket is
  // destroyed: on_error with kResourceExhausted / ERR_TLS_BUFFER_FULL, then
  // on_close(true), both from the loop).
  bool Write(absl::string_view data);
  // Bytes Write() holds that the engine has not taken yet (part of Node's
  // writableLength; the engine's own write buffer is not counted).
  size_t buffered_writes() const { return pending_bytes_; }
  // Sends `data`, everything queued, then close_notify, and shuts down our
  // write side. The socket closes once the peer has ended too (or the close
  // timeout of the engine passes). Idempotent.
  void End(absl::string_view data = "");
  // Closes at once, discarding queued data; `error` (when not OK) is
  // emitted as on_error before on_close(true). Idempotent.
  void Destroy(absl::Status error = absl::OkStatus());
  // Stop / restart delivering on_data (and reading from the socket).
  void Pause();
  void Resume();
  bool paused() const { return paused_; }

  // ---- Socket controls ----
  // Idle timeout: on_timeout after `timeout` without bytes read or written
  // (TLS traffic counts). ZeroDuration() turns it off. Does not close.
  void SetTimeout(absl::Duration timeout);
  // TCP_NODELAY / SO_KEEPALIVE (with TCP_KEEPIDLE when initial_delay > 0).
  // Errors: kUnavailable with the errno name; kFailedPrecondition before the
  // socket is connected or after close.
  absl::Status SetNoDelay(bool no_delay = true);
  absl::Status SetKeepAlive(bool enable, absl::Duration initial_delay = absl::ZeroDuration());

  // ---- TLS (Node's names; see core/tls_connection.h). Defaults ("",
  // nullopt, false) before the handshake. After Destroy() (from its call
  // on, on_error included) the session's getters return them too, as
  // Node's return null on a destroyed socket: GetPeerCertificate,
  // GetCertificate, GetCipher, protocol, GetSession, GetTlsTicket,
  // is_session_reused (false); ExportKeyingMaterial fails and
  // SetMaxSendFragment returns false. authorized, authorization_error,
  // alpn_protocol, npn_protocol and servername keep their values, as Node's
  // properties do. After any other close (End, the peer, an error) every
  // getter keeps the connection's last values.
  bool encrypted() const { return true; }
  bool authorized() const;
  std::string authorization_error() const;
  std::optional<CertificateInfo> GetPeerCertificate(bool detailed = false) const;
  std::optional<CertificateInfo> GetCertificate() const;
  std::optional<CipherInfo> GetCipher() const;
  std::string protocol() const;       // Node's getProtocol()
  std::string alpn_protocol() const;
  std::string npn_protocol() const;
  std::string servername() const;
  std::string GetSession() const;
  std::string GetTlsTicket() const;
  bool is_session_reused() const;
  bool is_server() const { return is_server_; }
  // Renegotiate (TLS 1.2) or post-handshake auth (TLS 1.3 server);
  // `done` runs with OK after kRenegotiated or with the error. Returns the
  // engine's status for starting (kFailedPrecondition, ERR_TLS_RENEGOTIATE).
  absl::Status Renegotiate(const RenegotiateOptions& options,
                           std::function<void(const absl::Status&)> done = nullptr);
  // TLS 1.3 KeyUpdate. Errors as TlsConnection::KeyUpdate;
  // kFailedPrecondition after close.
  absl::Status KeyUpdate(bool request_peer);
  bool SetMaxSendFragment(size_t size);
  absl::StatusOr<std::string> ExportKeyingMaterial(
      size_t length, absl::string_view label,
      std::optional<absl::string_view> context = std::nullopt) const;
  // The engine, for everything else core offers; nullptr while a client is
  // still connecting (and if it never connected). Call Pump() after
  // changing it.
  TlsConnection* engine();
  void Pump();

  // ---- Addresses and counters (kept after close) ----
  // Node's address(): the local end.
  SocketAddress address() const { return local_; }
  std::string remote_address() const { return remote_.address; }
  std::string remote_family() const { return remote_.family; }
  int remote_port() const { return remote_.port; }
  std::string local_address() const { return local_.address; }
  int local_port() const { return local_.port; }
  // Plaintext bytes received from the peer / accepted by Write().
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // Ciphertext over the socket.
  uint64_t raw_bytes_read() const;
  uint64_t raw_bytes_written() const;
  ReadyState ready_state() const;
  // Whether 'end' came from a TCP EOF without close_notify.
  bool truncated() const { return truncated_; }
  // Whether the handshake has completed (Node's 'secure' has happened).
  bool secure_established() const { return secure_seen_; }
  // The error the socket closed with (OK for a clean close or while open).
  absl::Status close_status() const { return close_status_; }
  Loop* loop() const { return loop_; }

  // ---- For Server (and other adapters building server sockets) ----
  // Events a server-side socket raises before the application has it.
  struct ServerHooks {
    std::function<void(TlsSocket&)> on_secure;                    // 'secureConnection'
    std::function<void(TlsSocket&, const absl::Status&)> on_client_error;  // error before 'secure'
    // kSniRequest, kResumeSession, kNewSession, kOcspRequest: true when it
    // answers (now or later); false, or unset, for the default answer
    // (core/default_answers.h).
    std::function<bool(TlsSocket&, const Event&)> on_suspension;
    std::function<void(TlsSocket&, const std::string&)> on_keylog;
    std::function<void(TlsSocket&)> on_closed;  // after on_close
  };
  // A server socket over an accepted fd (taken). The engine is made from
  // options.tls with is_server = true. Used by Server; public so that other
  // acceptors can reuse it.
  static absl::StatusOr<std::shared_ptr<TlsSocket>> Accept(Loop* loop, int fd, TlsSocketOptions options,
                                                           ServerHooks hooks);
  // Answers a suspension from ServerHooks::on_suspension (from the loop
  // thread), then pumps. kFailedPrecondition when the socket has closed,
  // else the engine's status.
  absl::Status AnswerSni(absl::StatusOr<std::shared_ptr<const SecureContext>> context);
  absl::Status AnswerResumeSession(absl::StatusOr<std::string> session);
  absl::Status AckNewSession(absl::Status stored = absl::OkStatus());
  absl::Status AnswerOcspRequest(absl::StatusOr<std::string> response);

 private:
  class Handler;
  class Closer;
  TlsSocket(Loop* loop, TlsSocketOptions options);
  static absl::StatusOr<std::shared_ptr<TlsSocket>> Make(Loop* loop, TlsSocketOptions options);

  absl::Status StartEngine(int fd, absl::string_view already_read);
  void StartConnect();
  void OnResolved(absl::StatusOr<std::vector<std::string>> addresses, int port);
  void TryNextAddress();
  void OnConnectReady(Ready ready);
  void HandleEvent(const Event& event);
  void HandleClosed(const absl::Status& status);
  void FlushPending();
  bool EngineHasRoom() const;
  void EmitError(const absl::Status& status);
  void Emit(const std::function<void()>& fn);
  void TouchIdle();
  void ArmIdle();
  void OnIdleTimer();
  void CloseBeforeEngine(absl::Status status);
  void WriteKeylog(const std::string& line);
  // The engine for the session's getters: nullptr before it exists and
  // after Destroy().
  const TlsConnection* session_engine() const;

  Loop* const loop_;
  TlsSocketOptions options_;
  SocketHandlers handlers_;
  ServerHooks hooks_;
  bool is_server_ = false;
  std::shared_ptr<TlsSocket> self_;  // alive until 'close'
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<Closer> closer_;  // registered with the loop's Shutdown
  std::unique_ptr<Connection> conn_;

  // Connecting.
  std::thread resolver_;
  std::vector<std::string> candidates_;
  size_t next_candidate_ = 0;
  int connect_port_ = 0;
  int connecting_fd_ = -1;
  absl::Status last_connect_error_;
  bool wrap_connecting_ = false;   // Wrap of a socket still connecting
  std::string wrap_already_read_;  // its already_read, for StartEngine

  // Lists, not deques: an empty std::deque still allocates about 600 bytes,
  // and most sockets never queue anything.
  std::list<std::string> pending_;  // plaintext the engine has not taken yet
  size_t pending_bytes_ = 0;
  bool need_drain_ = false;
  bool ending_ = false;
  bool end_sent_ = false;      // engine End() called
  bool end_emitted_ = false;   // on_end delivered
  bool closed_pending_ = false;  // closing without an engine (connect failed)
  bool paused_ = false;
  std::list<std::string> paused_data_;
  bool peer_ended_ = false;
  bool truncated_ = false;
  bool secure_seen_ = false;
  bool errored_ = false;
  bool closed_ = false;
  bool write_error_reported_ = false;
  bool destroyed_ = false;  // Destroy() was called: see the TLS getters
  absl::Status close_status_;
  std::function<void(const absl::Status&)> reneg_done_;

  absl::Duration idle_timeout_ = absl::ZeroDuration();
  absl::Time last_activity_;
  TimerId idle_timer_ = kNoTimer;
  bool idle_fired_ = false;

  int keylog_fd_ = -1;
  SocketAddress local_, remote_;
  uint64_t bytes_read_ = 0, bytes_written_ = 0;
  uint64_t final_raw_read_ = 0, final_raw_written_ = 0;
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_SOCKET_H_
