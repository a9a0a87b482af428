// Server: Node's tls.Server (tls.createServer) on one or more epoll Loops.
// One acceptor on the first loop hands accepted sockets round-robin to all
// loops (like Node's cluster, without processes); the loops share the
// SecureContexts and ticket keys, so a ticket issued on one loop resumes on
// any other.
//
//   ServerOptions o;
//   o.context.key = {key_pem};  o.context.cert = {cert_pem};
//   ServerHandlers h;
//   h.on_secure_connection = [](std::shared_ptr<TlsSocket> s) {
//     s->handlers().on_data = [s = s.get()](absl::string_view d) { s->Write(d); };  // echo
//     s->handlers().on_end = [s = s.get()] { s->End(); };
//   };
//   h.on_client_error = [](const absl::Status& e, TlsSocket*) { NodeCode(e); };
//   auto server = Server::Create({loop.get()}, o, h).value();
//   server->Listen(0, "127.0.0.1").IgnoreError();   // port 0: an ephemeral port
//   int port = server->address()->port;
//   loop->Run();
//
// Threads: every method is thread-safe (configuration is read by each loop
// when it accepts). Events run on the loop that serves the connection;
// on_listening and Close's callback on the first loop. Destroy the Server
// only after Close()'s callback ran or after its loops stopped running for
// good; the loops must outlive it.
#ifndef TLSENGINE_ADAPTERS_EPOLL_SERVER_H_
#define TLSENGINE_ADAPTERS_EPOLL_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/epoll/bound_name.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/session_store.h"
#include "adapters/epoll/socket.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace epoll {

struct ServerOptions {
  // The default context, built at Create() (tls.createServer's context
  // options). Ignored when `secure_context` is set, which is served as it
  // is: its key set becomes the server's (SetTicketKeys changes that
  // context's keys, as Node's server.setTicketKeys does).
  SecureContextOptions context;
  std::shared_ptr<const SecureContext> secure_context;
  // Per-connection options: request_cert, reject_unauthorized, ALPN/NPN,
  // renegotiation limits, buffer bounds, ... (is_server, secure_context,
  // handshake_timeout, session_cache, sni_callback, ocsp_request and keylog
  // are set by the Server). `connection.sni_contexts`, when set, is the
  // first addContext table: its entries are copied at Create() (later
  // changes to that object do not reach the Server; use AddContext /
  // RemoveContext) and served with the server's ticket keys.
  ConnectionOptions connection;
  // Node's handshakeTimeout: a connection whose handshake has not finished
  // in this time is closed with ERR_TLS_HANDSHAKE_TIMEOUT (on_client_error).
  absl::Duration handshake_timeout = absl::Seconds(120);
  // Node's maxConnections: connections accepted past it are closed at once,
  // with no on_client_error. 0: no limit.
  int max_connections = 0;
  // Session-id resumption (TLS 1.2) and Node's newSession/resumeSession.
  // When ServerHandlers::on_new_session / on_resume_session are both empty,
  // sessions go to `session_store` (a MemorySessionStore of
  // `session_store_entries` entries / `session_store_bytes` bytes made at
  // Create() when null), each kept for the context's session_timeout.
  // session_cache = false: no server-side cache (tickets still resume).
  bool session_cache = true;
  std::shared_ptr<SessionStore> session_store;
  size_t session_store_entries = 20000;
  size_t session_store_bytes = 32 << 20;
  // Append NSS key-log lines of every connection to this file. Empty: the
  // SSLKEYLOGFILE environment variable when honour_sslkeylogfile.
  std::string keylog_file;
  bool honour_sslkeylogfile = true;
  // listen(2) backlog.
  int backlog = 511;
  // Accepted sockets: TCP_NODELAY, the write high-water mark, the careful
  // close's bounds.
  bool no_delay = true;
  size_t high_water_mark = 16 * 1024;
  DriverOptions driver;
};

// Node's server events. Each runs on the loop serving the connection.
struct ServerHandlers {
  // Node's 'secureConnection': a handshaked socket. Keep the shared_ptr or
  // not: the socket stays alive until its 'close' either way.
  std::function<void(std::shared_ptr<TlsSocket> socket)> on_secure_connection;
  // Node's 'tlsClientError' / 'clientError': the connection failed before
  // 'secureConnection', with a Node code: ERR_TLS_HANDSHAKE_TIMEOUT, a
  // verify code (ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE,
  // UNABLE_TO_GET_ISSUER_CERT_LOCALLY, ...), a protocol error
  // (kAborted, with the alert), ECONNRESET. At most once per connection.
  // The socket is closing; use it for its properties only.
  std::function<void(const absl::Status& error, TlsSocket& socket)> on_client_error;
  // Node's 'newSession'(id, data, cb): store `session` under `id`, then call
  // `done` (from any thread, now or later). Output and 'secureConnection'
  // wait for it, as in Node.
  std::function<void(TlsSocket& socket, const std::string& id, const std::string& session,
                     std::function<void(absl::Status stored)> done)>
      on_new_session;
  // Node's 'resumeSession'(id, cb): call `done` with the stored session, ""
  // for none (any thread, now or later).
  std::function<void(TlsSocket& socket, const std::string& id,
                     std::function<void(absl::StatusOr<std::string> session)> done)>
      on_resume_session;
  // Node's 'OCSPRequest'(certificate, issuer, cb): DER of our certificate
  // and its issuer ("" when unknown); call `done` with the DER response to
  // staple, "" for none.
  std::function<void(TlsSocket& socket, const std::string& certificate, const std::string& issuer,
                     std::function<void(absl::StatusOr<std::string> response)> done)>
      on_ocsp_request;
  // Node's SNICallback(servername, cb): call `done` with the context for
  // `servername` (nullptr: the default) or an error (the handshake then
  // fails with unrecognized_name). Replaces the addContext table.
  std::function<void(const std::string& servername,
                     std::function<void(absl::StatusOr<std::shared_ptr<const SecureContext>>)> done)>
      sni_callback;
  // Node's server 'keylog'(line, socket).
  std::function<void(const std::string& line, TlsSocket& socket)> on_keylog;
  // Node's 'connection': a TCP connection was accepted (before TLS).
  std::function<void(TlsSocket& socket)> on_connection;
  // Node's 'listening' (first loop).
  std::function<void()> on_listening;
  // Node's server 'error' for accept(2) failures, on the first loop:
  // kResourceExhausted with the errno name as the code (EMFILE, ENFILE,
  // ENOBUFS, ENOMEM) or kUnavailable for others, message "accept EMFILE:
  // Too many open files". The server keeps listening and serving the open
  // connections; it reports at most once per pause (see Listen).
  std::function<void(const absl::Status& error)> on_error;
};

// One entry of the contexts a Server serves (Server::Contexts()).
struct ServedContext {
  // "" for the default context, else the addContext name ("example.com")
  // or pattern ("*.example.com"), lower-case.
  std::string servername;
  std::shared_ptr<const SecureContext> context;
};

// `context` as a Server whose key set is `keys` serves it: itself when it
// reads `keys` already, else a copy built from its options with them (one
// SecureContext::Create, on the calling thread: build here, off the loops,
// what a live change will hand to Server::AddContext / SetSecureContext).
// SecureContext::Create's errors.
absl::StatusOr<std::shared_ptr<const SecureContext>> WithTicketKeySet(const std::shared_ptr<const SecureContext>& context,
                                                                      const std::shared_ptr<TicketKeys>& keys);

class Server {
 public:
  // tls.createServer(options). `loops` (at least one, not owned, must
  // outlive the Server) serve the connections; the first also accepts.
  // kInvalidArgument (ERR_INVALID_ARG_VALUE) for no loops, a bad context,
  // a negative max_connections or a non-positive handshake_timeout; the
  // keylog file's open error (kUnavailable, errno name).
  static absl::StatusOr<std::unique_ptr<Server>> Create(std::vector<Loop*> loops, ServerOptions options,
                                                        ServerHandlers handlers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // server.listen(port[, host]): binds and listens now (so address() is
  // valid on return), then accepts on the first loop. port 0 picks a free
  // port. host "" listens on :: (dual stack) when IPv6 is available, else
  // 0.0.0.0; "127.0.0.1", "::1" and other numeric addresses bind to that
  // address; a name ("localhost") is resolved with getaddrinfo and, as in
  // Node, the server listens on its first address. That resolution BLOCKS
  // the calling thread: call Listen before the loops run or from another
  // thread, not from a loop callback, when names may be slow to resolve.
  // Accepting: when accept(2) fails for lack of descriptors (EMFILE,
  // ENFILE), the pending connections are accepted and closed at once with a
  // descriptor kept in reserve (libuv's trick) so that they do not wait in
  // the backlog; after those and any other failure but EAGAIN, EINTR and
  // ECONNABORTED (ENOBUFS, ENOMEM, ...), accepting pauses for 100 ms (as
  // nginx does) instead of spinning on a listener that stays readable;
  // on_error hears of it and open connections carry on.
  // Errors: kFailedPrecondition (ERR_SERVER_ALREADY_LISTEN) when listening;
  // kInvalidArgument for a port outside 0..65535; kUnavailable with Node's
  // code: ENOTFOUND / EAI_AGAIN when the name does not resolve, the errno
  // name (EADDRINUSE, EACCES, ...) when binding fails.
  absl::Status Listen(int port, const std::string& host = "");
  // server.listen(path): a unix stream socket at `path` (which must not
  // exist; it is unlinked at Close, in the directory it was bound in and
  // only while the name still refers to the socket: BoundName). Errors as
  // for Listen.
  absl::Status ListenUnix(const std::string& path);
  // server.close(cb): stop accepting now; `done` runs (on the first loop)
  // once every open connection has closed. Connections are not ended by
  // this (as in Node); End() or Destroy() them, or use CloseAll.
  // kFailedPrecondition (ERR_SERVER_NOT_RUNNING) when not listening.
  absl::Status Close(std::function<void()> done = nullptr);
  // Ends every open connection gracefully (close_notify), on its loop.
  void EndAll();

  // server.address(): where it listens. kFailedPrecondition when not
  // listening.
  absl::StatusOr<SocketAddress> address() const;
  bool listening() const;
  // Node's server.connections / getConnections(): open connections now.
  int connections() const { return connections_.load(); }
  int max_connections() const { return max_connections_.load(); }
  // 0 removes the limit. kInvalidArgument when negative.
  absl::Status set_max_connections(int max);

  // Contexts and ticket keys. Every context the server serves, the default
  // and each SNI one, issues and decrypts tickets with the server's key set
  // (ticket_key_set(), GetTicketKeys), as a Node server does for all of its
  // names: a context that reads another set is served as a copy rebuilt
  // from its options with the server's (one SecureContext::Create, on the
  // calling thread, before any lock is taken; Contexts() shows the copy).
  // Build contexts with `ticket_key_set = server->ticket_key_set()` to have
  // them served as they are. Contexts an sni_callback hands over are used
  // as they are, keys included. Each change applies to connections accepted
  // after it; open ones carry on with what they started with. All
  // thread-safe.
  //
  // server.addContext(hostname, context): SNI names (exact or
  // "*.example.com") served by another context; a name given again
  // replaces its entry. Errors of SecureContext::Create and
  // SniContexts::Add (ERR_TLS_REQUIRED_SERVER_NAME, ERR_INVALID_ARG_VALUE).
  absl::Status AddContext(const std::string& hostname, const SecureContextOptions& options);
  absl::Status AddContext(const std::string& hostname, std::shared_ptr<const SecureContext> context);
  // Removes what AddContext(hostname, ...) added (same spelling rules;
  // "*.example.com" names the pattern): that name gets the default context
  // again. Node has no removeContext. kNotFound (ERR_INVALID_ARG_VALUE)
  // when there is no such entry.
  absl::Status RemoveContext(const std::string& hostname);
  // What new connections are served with: the default context first
  // (servername ""), then the SNI entries (exact names in name order, then
  // patterns), as SniContexts::Entries lists them.
  std::vector<ServedContext> Contexts() const;
  // server.setSecureContext(options): new connections get a context made
  // from `options`. Without ticket keys in `options` the server's are
  // kept; with them, they become the server's keys (for the SNI contexts
  // too, as SetTicketKeys). The second form serves `context` (see above).
  absl::Status SetSecureContext(const SecureContextOptions& options);
  absl::Status SetSecureContext(std::shared_ptr<const SecureContext> context);
  std::shared_ptr<const SecureContext> secure_context() const;
  // server.setTicketKeys(keys) / getTicketKeys(): 48 bytes per key, Node's
  // layout, several concatenated (the first encrypts, all decrypt), for
  // every context the server serves: the key set they all read changes in
  // place (TicketKeys::Set), so the next ticket on any of them uses the new
  // keys and no context is rebuilt. A ticket issued before resumes after
  // it only while its key is among `keys` (rotation: new key first, old
  // after). kInvalidArgument when the length is not a positive multiple of
  // 48 (nothing changes then).
  absl::Status SetTicketKeys(absl::string_view keys);
  // The server's key set: a given secure_context's own (so SetTicketKeys
  // changes that context's keys, as in Node), the options' ticket_key_set,
  // or one made at Create() from the options' ticket_keys (random when
  // none). Never null; the same object for the Server's life.
  const std::shared_ptr<TicketKeys>& ticket_key_set() const { return keys_; }
  std::string GetTicketKeys() const;

  // The session store in use (null when session_cache is off or the
  // application handles newSession/resumeSession).
  SessionStore* session_store() const { return store_.get(); }
  const std::vector<Loop*>& loops() const { return loops_; }
  // Connections accepted since Create, and those refused at accept (by
  // maxConnections, or closed for want of descriptors: see Listen).
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  struct Shared;
  Server(std::vector<Loop*> loops, ServerOptions options, ServerHandlers handlers);

  absl::Status StartListening(int fd);
  void PublishSni(std::shared_ptr<SniContexts> table);  // config_mu_ held
  void OnAcceptReady();
  void OnAcceptError(int listen_fd, int err);
  void ServeOn(size_t loop_index, int fd);
  // A suspension, to the handler or the store; false when neither is set
  // (the socket answers by default).
  bool Answer(TlsSocket& socket, const Event& event);
  void OnSocketClosed();
  void MaybeFinishClose();

  const std::vector<Loop*> loops_;
  ServerOptions options_;
  ServerHandlers handlers_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<SessionStore> store_;

  // config_mu_ orders the read-copy-publish of the addContext table; no
  // context is built while it or mu_ is held, so a loop that reads the
  // configuration (ServeOn) never waits for a build. Order: config_mu_
  // before mu_.
  mutable std::mutex config_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<TicketKeys> keys_;              // set at Create, never changed (its keys do)
  std::shared_ptr<const SecureContext> context_;  // guarded by mu_
  // The addContext table new connections get: never changed once
  // published (a change publishes a new one), so open connections keep
  // the one they started with.
  std::shared_ptr<SniContexts> sni_;              // guarded by mu_ (+ config_mu_ to change)
  int listen_fd_ = -1;                            // guarded by mu_
  int reserve_fd_ = -1;                           // first loop; libuv's spare descriptor
  TimerId accept_pause_ = kNoTimer;               // first loop
  std::string unix_path_;                         // guarded by mu_
  BoundName unix_bound_;                          // guarded by mu_; what Close unlinks
  SocketAddress address_;                         // guarded by mu_
  std::function<void()> close_done_;              // guarded by mu_
  bool closing_ = false;                          // guarded by mu_
  size_t next_loop_ = 0;                          // acceptor (first loop) only
  int keylog_fd_ = -1;

  std::atomic<int> connections_{0};
  std::atomic<int> max_connections_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
};

// N loops on N threads, for a Server over several cores (tlsctl --loops).
//
//   auto group = LoopGroup::Start(4).value();
//   auto server = Server::Create(group->loops(), o, h).value();
//   ...
//   group->Stop();   // Loop::Stop on each, then join
class LoopGroup {
 public:
  // Creates `n` loops (n >= 1) and runs each on its own thread.
  // kInvalidArgument for n < 1; Loop::Create's errors.
  static absl::StatusOr<std::unique_ptr<LoopGroup>> Start(int n);
  // Stops and joins; the loops are destroyed with the group.
  ~LoopGroup();
  // Loop::Stop on each, then joins (idempotent). Returns the first error a
  // loop's Run() ended with (kInternal / the errno name from epoll_wait),
  // OK when every loop ran until stopped.
  absl::Status Stop();
  // The first error a loop's Run() has ended with so far (that loop's
  // thread is gone; the others run on); OK while none has. Thread-safe.
  absl::Status status() const;
  std::vector<Loop*> loops() const;
  // Runs `fn` on loop `i` and waits for it (not from a loop thread of this
  // group).
  void RunOn(size_t i, std::function<void()> fn);

 private:
  LoopGroup() = default;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  mutable std::mutex mu_;
  absl::Status first_error_;  // guarded by mu_
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_SERVER_H_
