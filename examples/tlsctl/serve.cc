// tlsctl serve: an epoll::Server on --loops loops (LoopGroup), echo or HTTP
// on each handshaked socket, Node's events as JSON lines. Listening,
// accepting, the careful close, the session store, SNI contexts and the key
// log are the adapter's; this file only says what to answer and prints.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/socket.h"
#include "adapters/fd/resolve.h"
#include "adapters/grpc/daemon.h"
#include "core/errors.h"
#include "examples/tlsctl/commands.h"
#include "examples/tlsctl/default_cert.h"
#include "examples/tlsctl/options.h"
#include "examples/tlsctl/output.h"

namespace tlsengine {
namespace tlsctl {
namespace {

// A request head (request line and headers) longer than this gets 431 and
// the connection is ended. It is also the bound on request bytes held
// unparsed: see ServeHttp.
constexpr size_t kMaxHttpHead = 64 * 1024;
// Content-Length values above this (int64's maximum, as nginx's off_t) are
// malformed (400), not merely too large (413).
constexpr uint64_t kMaxContentLength = static_cast<uint64_t>(INT64_MAX);
// SIGINT/SIGTERM: how long open connections get to close gracefully.
constexpr absl::Duration kShutdownBound = absl::Seconds(3);

// Per connection: what the application layer keeps.
struct ConnState {
  uint64_t id = 0;
  bool secure = false;
  bool ended = false;  // we called End(): ignore what still arrives
  bool refused = false;  // --mode http answered 4xx/5xx: reading stays paused
  // --mode http: request bytes not parsed yet (at most kMaxHttpHead plus
  // one delivery), how far the search for the head's end got, the body
  // bytes still to discard, and whether a response waits for on_drain.
  std::string http;
  size_t scanned = 0;
  uint64_t discard = 0;
  bool blocked = false;
  // When the head now in `http` was first seen incomplete: it must be
  // whole within --idle-timeout of that (408), or a client that sends one
  // byte per idle period would hold the connection for ever.
  absl::Time head_started = absl::InfiniteFuture();
};

// The connections the server has announced (on_connection) and not yet
// closed, so that clientError, which the Server raises with the socket,
// can print the connection's id. Sockets of every loop: guarded.
class Connections {
 public:
  std::shared_ptr<ConnState> Add(epoll::TlsSocket* s) {
    auto st = std::make_shared<ConnState>();
    st->id = next_id_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    open_[s] = st;
    return st;
  }
  std::shared_ptr<ConnState> Find(epoll::TlsSocket* s) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(s);
    return it == open_.end() ? nullptr : it->second;
  }
  void Remove(epoll::TlsSocket* s) {
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(s);
  }

 private:
  std::atomic<uint64_t> next_id_{1};
  std::mutex mu_;
  std::unordered_map<epoll::TlsSocket*, std::shared_ptr<ConnState>> open_;  // guarded by mu_
};

// What one request head asks for, or the error status to answer with.
struct HttpHead {
  int error = 0;  // 400, 408, 413, 431, 501: answer this and end the connection
  uint64_t body = 0;
  bool close = false;
};

// A Content-Length value: plain digits, at most kMaxContentLength.
std::optional<uint64_t> ContentLength(absl::string_view v) {
  if (v.empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (kMaxContentLength - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

// `head` is lower-cased, without the blank line.
HttpHead ParseHead(absl::string_view head, uint64_t max_body) {
  HttpHead h;
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  // A CR, LF or NUL inside a line (a bare line ending, which another
  // parser may split on) would hide the header after it: 400 (RFC 9112 2.2).
  for (absl::string_view line : lines) {
    if (line.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos) {
      h.error = 400;
      return h;
    }
  }
  if (absl::EndsWith(lines[0], "http/1.0")) h.close = !absl::StrContains(head, "keep-alive");
  std::optional<uint64_t> length;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    absl::string_view name = lines[i].substr(0, colon);
    // No name, or whitespace before the colon (RFC 9112 5.1: 400).
    if (colon == absl::string_view::npos || name.empty() || name.find_first_of(" \t") != absl::string_view::npos) {
      h.error = 400;
      return h;
    }
    // OWS is SP and HTAB only (RFC 9110 5.6.3): "5\v" is not a length.
    absl::string_view value = lines[i].substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (name == "content-length") {
      std::optional<uint64_t> n = ContentLength(value);
      if (!n || (length && *length != *n)) {
        h.error = 400;
        return h;
      }
      length = n;
    } else if (name == "transfer-encoding") {
      h.error = 501;  // no chunked bodies here: see README
      return h;
    } else if (name == "connection") {
      h.close = absl::StrContains(value, "close");
    }
  }
  h.body = length.value_or(0);
  if (h.body > max_body) h.error = 413;
  return h;
}

absl::string_view ReasonOf(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Not Implemented";
  }
}

// Answers the complete requests in `st.http`, discarding their bodies as
// they arrive. Stops at a response that Write() could not take at once
// (st.blocked: the caller pauses reading until on_drain), so a client
// that sends and never reads holds no more than kMaxHttpHead of requests
// and high_water_mark of responses.
enum class HttpNext {
  kRead,     // serve what comes next (or, with st.blocked, wait for on_drain)
  kEnd,      // Connection: close or HTTP/1.0: end after the response
  kRefused,  // answered 4xx/5xx: end, and read no more from this client
};
HttpNext ServeHttp(epoll::TlsSocket& socket, ConnState& st, uint64_t max_body, absl::Duration head_timeout) {
  while (!st.blocked) {
    size_t dropped = static_cast<size_t>(std::min<uint64_t>(st.discard, st.http.size()));
    st.http.erase(0, dropped);
    st.discard -= dropped;
    if (st.discard > 0) return HttpNext::kRead;  // the body is still coming
    size_t end = st.http.find("\r\n\r\n", st.scanned);
    const bool late = head_timeout > absl::ZeroDuration() && absl::Now() - st.head_started > head_timeout;
    if (end == std::string::npos && st.http.size() <= kMaxHttpHead && !late) {
      st.scanned = st.http.size() < 3 ? 0 : st.http.size() - 3;  // resume there: no quadratic rescans
      if (st.http.empty()) {
        st.head_started = absl::InfiniteFuture();
      } else if (st.head_started == absl::InfiniteFuture()) {
        st.head_started = absl::Now();
      }
      return HttpNext::kRead;
    }
    st.head_started = absl::InfiniteFuture();
    HttpHead h;
    if (end == std::string::npos && late) {
      h.error = 408;
    } else if (end == std::string::npos || end > kMaxHttpHead) {
      h.error = 431;
    } else {
      h = ParseHead(absl::AsciiStrToLower(absl::string_view(st.http).substr(0, end)), max_body);
      st.http.erase(0, end + 4);
      st.scanned = 0;
      st.discard = h.body;
    }
    if (h.error != 0) {
      socket.Write(absl::StrCat("HTTP/1.1 ", h.error, " ", ReasonOf(h.error),
                                "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
      return HttpNext::kRefused;
    }
    std::string json = SecureReportOf("secureConnection", socket, st.id).Line();
    st.blocked = !socket.Write(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ",
                                            json.size(), "\r\n", h.close ? "Connection: close\r\n" : "", "\r\n", json));
    if (h.close) return HttpNext::kEnd;
  }
  return HttpNext::kRead;
}

JsonObject ErrorLine(absl::string_view event, const absl::Status& status, uint64_t id, epoll::TlsSocket& socket) {
  JsonObject o = ErrorReport(event, status, id);
  o.Add("remoteAddress", socket.remote_address());
  return o;
}

// Node's 'connection': the application's handlers, before any TLS event.
void OnConnection(const ServeFlags& flags, Connections& conns, epoll::TlsSocket& socket) {
  epoll::TlsSocket* s = &socket;  // handlers run only while the socket lives
  std::shared_ptr<ConnState> st = conns.Add(s);
  epoll::SocketHandlers& h = socket.handlers();
  const absl::Duration head_timeout = absl::Milliseconds(flags.idle_timeout_ms.value_or(kDefaultIdleTimeoutMs));
  auto serve_http = [s, st, max_body = static_cast<uint64_t>(flags.max_body_size), head_timeout] {
    HttpNext next = ServeHttp(*s, *st, max_body, head_timeout);
    if (next != HttpNext::kRead) {
      st->ended = true;
      s->End();
      // A refused client may go on sending (the rest of a 1 TB body): stop
      // reading it, so the close waits at most the engine's close_timeout
      // and then the careful close's bounded drain, however fast it sends.
      st->refused = next == HttpNext::kRefused;
      if (st->refused) s->Pause();
    } else if (st->blocked) {
      s->Pause();  // until on_drain: what arrives meanwhile waits in the kernel
    }
  };
  h.on_data = [s, st, mode = flags.mode, serve_http](absl::string_view data) {
    if (st->ended) return;
    if (mode == ServeMode::kEcho) {
      if (!s->Write(data)) s->Pause();  // the peer reads slower than it sends: wait for on_drain
      return;
    }
    size_t dropped = static_cast<size_t>(std::min<uint64_t>(st->discard, data.size()));
    data.remove_prefix(dropped);
    st->discard -= dropped;
    st->http.append(data.data(), data.size());
    serve_http();
  };
  h.on_drain = [s, st, serve_http] {
    if (st->refused) return;
    if (st->blocked && !st->ended) {
      st->blocked = false;
      serve_http();  // the requests already buffered, in order, before any new bytes
      if (st->blocked || st->refused) return;
    }
    s->Resume();  // after End() too: the peer's close_notify is still to be read
  };
  // on_end: the socket ends our side itself (allow_half_open is false).
  h.on_error = [s, st](const absl::Status& e) { Emit(ErrorLine("error", e, st->id, *s)); };
  // --idle-timeout passed without a byte either way (armed at 'secure'):
  // end with close_notify. End() then waits for the peer's close_notify
  // (the engine's 5 s close_timeout); a peer silent for another idle
  // period does not get to hold the slot that long.
  h.on_timeout = [s, st] {
    if (st->ended) {
      s->Destroy();
      return;
    }
    JsonObject o;
    o.Add("event", "timeout").Add("id", st->id);
    Emit(o);
    st->ended = true;
    s->End();
  };
  h.on_renegotiated = [st] {
    JsonObject o;
    o.Add("event", "renegotiated").Add("id", st->id);
    Emit(o);
  };
  h.on_close = [s, st, &conns](bool) {
    conns.Remove(s);
    if (!st->secure) return;
    JsonObject o;
    o.Add("event", "close")
        .Add("id", st->id)
        .Add("bytesRead", s->raw_bytes_read())
        .Add("bytesWritten", s->raw_bytes_written());
    Emit(o);
  };
}

absl::StatusOr<GeneratedIdentity> CachedLocalhost() {
  absl::StatusOr<std::string> dir = DefaultCacheDir();
  if (!dir.ok()) return dir.status();
  absl::StatusOr<CachedIdentity> id = LoadOrCreateIdentity(*dir, absl::Now());
  if (!id.ok()) return id.status();
  Note(absl::StrCat(id->generated ? "made a certificate for localhost: " : "certificate for localhost: ", id->cert_path,
                    " (SHA-256 ", id->fingerprint256, "); clients can trust it with --ca / -CAfile"));
  return id->identity;
}

// Server::Listen takes a numeric address; --host may be a name, resolved
// once here, before serving (adapters/fd's resolver). kUnavailable
// ENOTFOUND (or EAI_AGAIN) when it does not resolve.
absl::StatusOr<std::string> NumericHost(const std::string& host) {
  fdio::ResolveOptions options;
  options.passive = true;
  absl::StatusOr<std::vector<fdio::Address>> found = fdio::Resolve(host, 0, options);
  if (!found.ok()) return found.status();
  return found->front().text;
}

control::DaemonOptions DaemonOptionsOf(const ControlFlags& c) {
  control::DaemonOptions o;
  o.control_cert = c.cert.empty() ? "" : ResolvePath(c.cert);
  o.control_key = c.key.empty() ? "" : ResolvePath(c.key);
  o.control_ca = c.ca.empty() ? "" : ResolvePath(c.ca);
  o.control_token_file = c.token_file.empty() ? "" : ResolvePath(c.token_file);
  return o;
}

// The context as the service builds it, from what BuildServer read.
control::v1::CreateContextRequest ContextRequestOf(const SecureContextOptions& o) {
  control::v1::CreateContextRequest r;
  for (const std::string& k : o.key) r.add_key(k);
  for (const std::string& c : o.cert) r.add_cert(c);
  r.set_passphrase(o.passphrase);
  r.set_pfx(o.pfx);
  if (o.ca) {
    for (const std::string& c : *o.ca) r.add_ca(c);
    r.set_ca_empty(o.ca->empty());
  }
  for (const std::string& c : o.crl) r.add_crl(c);
  r.set_ciphers(o.ciphers);
  r.set_ciphersuites(o.ciphersuites);
  r.set_honor_cipher_order(o.honor_cipher_order);
  r.set_ecdh_curve(o.ecdh_curve);
  r.set_dhparam(o.dhparam);
  r.set_min_version(o.min_version);
  r.set_max_version(o.max_version);
  r.set_session_timeout(o.session_timeout);
  r.set_session_id_context(o.session_id_context);
  for (const std::string& k : o.ticket_keys) r.mutable_ticket_keys()->append(k);
  for (const std::string& p : o.npn_protocols) r.add_npn_protocols(p);
  return r;
}

absl::Status Prefixed(absl::string_view what, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// serve --control: the same listener, made through the control service's
// controller, so every control method sees it. Errors from here are
// reported as serving failures (exit 1).
absl::Status ListenThroughController(const ServeFlags& flags, const ServerSetup& setup, control::Controller& c) {
  absl::StatusOr<control::v1::CreateContextResponse> ctx = c.CreateContext(ContextRequestOf(setup.context_options));
  if (!ctx.ok()) return Prefixed("CreateContext", ctx.status());
  control::v1::ListenRequest l;
  if (!flags.unix_path.empty()) {
    l.set_path(ResolvePath(flags.unix_path));
  } else {
    absl::StatusOr<std::string> host = NumericHost(flags.host);
    if (!host.ok()) return host.status();
    l.set_host(*host);
    l.set_port(flags.port);
  }
  l.set_context_id(ctx->context_id());
  l.set_request_cert(flags.request_cert);
  l.set_reject_unauthorized(flags.reject_unauthorized);
  for (const std::string& p : flags.tls.alpn) l.add_alpn_protocols(p);
  for (const std::string& p : flags.tls.npn) l.add_npn_protocols(p);
  l.set_handshake_timeout(flags.handshake_timeout_ms);
  l.set_max_connections(static_cast<int32_t>(flags.max_connections));
  if (flags.reneg_limit) {
    l.set_allow_client_renegotiation(true);
    l.set_client_reneg_limit(static_cast<int32_t>(*flags.reneg_limit));
    l.set_client_reneg_window(flags.reneg_window_s * 1000);
  }
  l.set_mode(flags.mode == ServeMode::kHold ? "hold" : "echo");
  absl::StatusOr<control::v1::ListenResponse> made = c.Listen(l);
  if (!made.ok()) return Prefixed("Listen", made.status());
  for (size_t i = 0; i < flags.sni.size(); ++i) {
    // BuildServer read these files and checked the names already.
    control::v1::CreateContextRequest sr = ContextRequestOf(setup.context_options);
    sr.clear_key();
    sr.clear_cert();
    sr.clear_pfx();
    absl::StatusOr<std::string> key = ReadFlagFile("sni", flags.sni[i].key);
    absl::StatusOr<std::string> cert = ReadFlagFile("sni", flags.sni[i].cert);
    if (!key.ok()) return key.status();
    if (!cert.ok()) return cert.status();
    sr.add_key(*key);
    sr.add_cert(*cert);
    absl::StatusOr<control::v1::CreateContextResponse> sctx = c.CreateContext(sr);
    if (!sctx.ok()) return Prefixed(absl::StrCat("--sni ", flags.sni[i].name), sctx.status());
    control::v1::AddContextRequest add;
    add.set_listener_id(made->listener_id());
    add.set_servername(flags.sni[i].name);
    add.set_context_id(sctx->context_id());
    absl::StatusOr<control::v1::ChangeResponse> added = c.AddContext(add);
    if (!added.ok()) return Prefixed(absl::StrCat("--sni ", flags.sni[i].name), added.status());
  }
  if (!setup.ocsp_response.empty()) {
    control::v1::SetOcspResponseRequest o;
    o.set_listener_id(made->listener_id());
    o.set_response(setup.ocsp_response);
    absl::StatusOr<control::v1::ChangeResponse> set = c.SetOcspResponse(o);
    if (!set.ok()) return Prefixed("--ocsp-response", set.status());
  }
  const control::v1::SocketAddress& where = made->address();
  JsonObject listening;
  listening.Add("event", "listening").Add("address", where.address());
  if (where.family() != "unix") listening.Add("port", static_cast<int64_t>(where.port()));
  listening.Add("family", where.family()).Add("listenerId", made->listener_id()).Add("contextId", ctx->context_id());
  Emit(listening);
  bool unix = where.family() == "unix";
  Note(absl::StrCat("serving ", l.mode(), " on ", unix ? where.address() : absl::StrCat(where.address(), ":", where.port()),
                    " as listener ", made->listener_id(), " of the control service (Ctrl-C stops)"));
  return absl::OkStatus();
}

int RunControlledServe(const ServeFlags& flags, const ServerSetup& setup) {
  signal(SIGPIPE, SIG_IGN);
  absl::Status s = control::RunControlService(flags.control.address, DaemonOptionsOf(flags.control),
                                              [&](control::Controller& c) {
                                                return ListenThroughController(flags, setup, c);
                                              });
  if (!s.ok()) {
    Emit(ErrorReport("error", s));
    return 1;
  }
  return 0;
}

}  // namespace

int RunDaemon(const DaemonFlags& flags) {
  signal(SIGPIPE, SIG_IGN);
  absl::Status s = control::RunControlService(flags.control.address, DaemonOptionsOf(flags.control));
  if (!s.ok()) {
    Note(absl::StrCat("control: ", absl::StatusCodeToString(s.code()), ": ", s.message()));
    return 1;
  }
  return 0;
}

int RunServe(const ServeFlags& flags) {
  absl::StatusOr<ServerSetup> setup = BuildServer(flags, CachedLocalhost);
  if (!setup.ok()) {
    Note(setup.status().message());
    return 2;
  }
  if (!setup->keylog_path.empty()) {
    absl::Status s = CheckWritable("keylog", setup->keylog_path, setup->keylog_path, "open");
    if (!s.ok()) {
      Note(s.message());
      return 2;
    }
  }
  if (flags.controlled) return RunControlledServe(flags, *setup);

  // Signals are taken by this thread (sigwait); the loops, started below
  // with the signals blocked, never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (flags.loops > 1) Note(absl::StrCat("starting ", flags.loops, " loops..."));
  absl::StatusOr<std::unique_ptr<epoll::LoopGroup>> group = epoll::LoopGroup::Start(static_cast<int>(flags.loops));
  if (!group.ok()) {
    Emit(ErrorReport("error", group.status()));
    return 1;
  }

  epoll::ServerOptions o;
  o.secure_context = setup->connection.secure_context;
  o.connection = setup->connection;
  o.handshake_timeout = setup->connection.handshake_timeout;
  o.max_connections = static_cast<int>(flags.max_connections);
  o.keylog_file = setup->keylog_path;  // already $SSLKEYLOGFILE when --keylog is absent
  o.honour_sslkeylogfile = false;

  Connections conns;
  std::unique_ptr<epoll::Server> server;
  epoll::ServerHandlers h;
  h.on_connection = [&flags, &conns](epoll::TlsSocket& s) { OnConnection(flags, conns, s); };
  // The idle timeout starts at 'secure': until then the handshake timeout
  // alone bounds the connection (and reports ERR_TLS_HANDSHAKE_TIMEOUT).
  const absl::Duration idle = absl::Milliseconds(flags.idle_timeout_ms.value_or(kDefaultIdleTimeoutMs));
  h.on_secure_connection = [&conns, idle](std::shared_ptr<epoll::TlsSocket> s) {
    std::shared_ptr<ConnState> st = conns.Find(s.get());
    if (st == nullptr) return;  // cannot happen: on_connection came first
    st->secure = true;
    if (idle > absl::ZeroDuration()) s->SetTimeout(idle);
    Emit(SecureReportOf("secureConnection", *s, st->id));
  };
  h.on_client_error = [&conns](const absl::Status& e, epoll::TlsSocket& s) {
    std::shared_ptr<ConnState> st = conns.Find(&s);
    Emit(ErrorLine("clientError", e, st != nullptr ? st->id : 0, s));
  };
  if (!setup->ocsp_response.empty()) {
    h.on_ocsp_request = [der = setup->ocsp_response](epoll::TlsSocket&, const std::string&, const std::string&,
                                                      std::function<void(absl::StatusOr<std::string>)> done) {
      done(der);
    };
  }
  h.on_listening = [&server, &flags] {
    // On the first loop, before it accepts anything: the first line.
    absl::StatusOr<epoll::SocketAddress> where = server->address();
    if (!where.ok()) return;  // closed already (a signal during start-up)
    JsonObject listening;
    listening.Add("event", "listening").Add("address", where->address);
    if (where->family != "unix") listening.Add("port", where->port);
    listening.Add("family", where->family);
    Emit(listening);
    bool unix = where->family == "unix";
    Note(absl::StrCat("serving ", flags.mode == ServeMode::kHttp ? "http" : "echo", " on ",
                      unix ? where->address : absl::StrCat(where->address, ":", where->port),
                      unix ? "" : absl::StrCat("; try: openssl s_client -connect ", where->address, ":", where->port),
                      " (Ctrl-C stops)"));
  };

  absl::StatusOr<std::unique_ptr<epoll::Server>> made = epoll::Server::Create((*group)->loops(), o, std::move(h));
  if (!made.ok()) {
    Emit(ErrorReport("error", made.status()));
    return 1;
  }
  server = *std::move(made);
  for (const auto& [name, context] : setup->sni) {
    absl::Status s = server->AddContext(name, context);
    if (!s.ok()) {  // BuildServer checked the names already
      Note(absl::StrCat("--sni: '", name, "': ", s.message()));
      return 2;
    }
  }
  absl::Status listened;
  if (!flags.unix_path.empty()) {
    listened = server->ListenUnix(ResolvePath(flags.unix_path));
  } else {
    absl::StatusOr<std::string> host = NumericHost(flags.host);
    listened = host.ok() ? server->Listen(static_cast<int>(flags.port), *host) : host.status();
  }
  if (!listened.ok()) {
    Emit(ErrorReport("error", listened));
    (*group)->Stop().IgnoreError();  // the listen error is the one to report
    return 1;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Note("stopping: closing connections");
  server->Close().IgnoreError();  // stops accepting; not listening only after a failed start
  // Each loop ends its sockets gracefully (close_notify, the careful
  // close) and force-closes what is left at the bound.
  std::vector<epoll::Loop*> loops = (*group)->loops();
  // A loop whose Run() failed runs no posted task: stop waiting once the
  // group reports that, or past the bound.
  auto left = std::make_shared<std::atomic<int>>(static_cast<int>(loops.size()));
  for (epoll::Loop* loop : loops) {
    loop->Post([loop, left] {
      if (!loop->Shutdown(kShutdownBound, [left] { left->fetch_sub(1); }).ok()) left->fetch_sub(1);
    });
  }
  const absl::Time give_up = absl::Now() + kShutdownBound + absl::Seconds(1);
  while (left->load() > 0 && (*group)->status().ok() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::Status ran = (*group)->Stop();  // a loop's Run() that failed (epoll_wait) on the way
  server.reset();  // after its loops stopped for good
  if (!ran.ok()) {
    Emit(ErrorReport("error", ran));
    return 1;
  }
  return 0;
}

}  // namespace tlsctl
}  // namespace tlsengine
