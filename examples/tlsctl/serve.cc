// tlsctl serve: listeners on N loops (SO_REUSEPORT), one Link per accepted
// connection, echo or HTTP on top, sessions in a shared MemorySessionStore.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/session_store.h"
#include "core/errors.h"
#include "examples/tlsctl/commands.h"
#include "examples/tlsctl/default_cert.h"
#include "examples/tlsctl/link.h"
#include "examples/tlsctl/net.h"
#include "examples/tlsctl/options.h"
#include "examples/tlsctl/output.h"

namespace tlsengine {
namespace tlsctl {
namespace {

// Requests larger than this (headers) get 431 and the connection is ended.
constexpr size_t kMaxHttpHead = 64 * 1024;

// What every loop shares: immutable options, the session store, counters.
struct Shared {
  ServeFlags flags;
  ServerSetup setup;
  epoll::MemorySessionStore store{20000, 32 << 20};
  KeylogFile keylog;
  std::atomic<uint64_t> next_id{1};
  std::atomic<int64_t> open{0};
};

// Per connection: what the application layer keeps.
struct ConnState {
  uint64_t id = 0;
  bool secure = false;
  std::string http;  // --mode http: bytes of the request being read
};

// Answers every complete request in `st.http`; false once the connection
// should end (Connection: close, HTTP/1.0, or a request too large).
bool ServeHttp(Link& link, ConnState& st) {
  for (;;) {
    size_t end = st.http.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (st.http.size() <= kMaxHttpHead) return true;
      link.Write("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return false;
    }
    std::string head = absl::AsciiStrToLower(st.http.substr(0, end));
    size_t body = 0;
    bool close = false;
    std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
    if (!lines.empty() && absl::EndsWith(lines[0], "http/1.0")) close = !absl::StrContains(head, "keep-alive");
    for (size_t i = 1; i < lines.size(); ++i) {
      absl::string_view l = lines[i];
      if (absl::ConsumePrefix(&l, "content-length:")) {
        if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(l), &body)) body = 0;
      } else if (absl::ConsumePrefix(&l, "connection:")) {
        close = absl::StrContains(l, "close");
      }
    }
    if (st.http.size() < end + 4 + body) return true;  // the body is still coming
    st.http.erase(0, end + 4 + body);
    std::string json = SecureReport("secureConnection", link.tls(), link.peer(), st.id).Line();
    link.Write(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", json.size(),
                            "\r\n", close ? "Connection: close\r\n" : "", "\r\n", json));
    if (close) return false;
  }
}

void OnServerEvent(Shared& sh, ConnState& st, Link& link, const Event& ev) {
  TlsConnection& tls = link.tls();
  absl::Time now = absl::Now();
  switch (ev.type) {
    case EventType::kSecure:
      st.secure = true;
      Emit(SecureReport("secureConnection", tls, link.peer(), st.id));
      break;
    case EventType::kData: {
      absl::string_view data(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      if (sh.flags.mode == ServeMode::kEcho) {
        link.Write(data);
      } else {
        st.http.append(data.data(), data.size());
        if (!ServeHttp(link, st)) link.End();
      }
      break;
    }
    case EventType::kPeerClosed:
      link.End();
      break;
    case EventType::kTruncated:
      link.Abandon();
      break;
    case EventType::kError: {
      JsonObject o = ErrorReport(st.secure ? "error" : "clientError", ev.status, st.id);
      o.Add("remoteAddress", link.peer().address);
      Emit(o);
      break;
    }
    case EventType::kNewSession:
      // A store that refuses (a huge session) costs a resumption, not the connection.
      sh.store.Put(ev.session_id, ev.session, now + absl::Seconds(sh.flags.session_timeout_s)).IgnoreError();
      tls.AckNewSession().IgnoreError();  // fails only if nothing waits, which the event rules out
      break;
    case EventType::kResumeSession:
      tls.AnswerResumeSession(sh.store.Get(ev.session_id, now).value_or("")).IgnoreError();
      break;
    case EventType::kOcspRequest:
      tls.AnswerOcspRequest(sh.setup.ocsp_response).IgnoreError();
      break;
    case EventType::kSniRequest:
      tls.AnswerSni(std::shared_ptr<const SecureContext>()).IgnoreError();
      break;
    case EventType::kKeylog:
      sh.keylog.Append(ev.line);
      break;
    case EventType::kRenegotiated: {
      JsonObject o;
      o.Add("event", "renegotiated").Add("id", st.id);
      Emit(o);
      break;
    }
    default:
      break;
  }
}

// One loop with its own listener (they share the port through SO_REUSEPORT).
class ServeLoop {
 public:
  ServeLoop(Shared& shared, std::unique_ptr<epoll::Loop> loop, int listen_fd)
      : sh_(shared), loop_(std::move(loop)), listen_fd_(listen_fd) {}
  ~ServeLoop() {
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  absl::Status Start() {
    return loop_->Watch(listen_fd_, epoll::Interest{true, false}, [this](epoll::Ready) { Accept(); });
  }
  epoll::Loop& loop() { return *loop_; }

  // From another thread: stop accepting, close connections within a bound, stop.
  void RequestShutdown() {
    loop_->Post([this] {
      loop_->Unwatch(listen_fd_).IgnoreError();
      close(listen_fd_);
      listen_fd_ = -1;
      epoll::Loop* l = loop_.get();
      if (!loop_->Shutdown(absl::Seconds(3), [l] { l->Stop(); }).ok()) l->Stop();
    });
  }

 private:
  void Accept() {
    for (int budget = 64; budget > 0 && listen_fd_ >= 0; --budget) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
          Note(absl::StrCat("accept: ", ErrnoName(errno)));  // EMFILE: try again on the next wakeup
        }
        return;
      }
      // Node's maxConnections: closed at accept, without a clientError.
      if (sh_.flags.max_connections > 0 && sh_.open.load() >= sh_.flags.max_connections) {
        close(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on unix sockets
      auto st = std::make_shared<ConnState>();
      st->id = sh_.next_id.fetch_add(1);
      Shared& sh = sh_;
      Link::Handlers h;
      h.on_event = [&sh, st](Link& link, const Event& ev) { OnServerEvent(sh, *st, link, ev); };
      h.on_close = [&sh, st](Link& link, const absl::Status&) {
        sh.open.fetch_sub(1);
        if (!st->secure) return;
        JsonObject o;
        o.Add("event", "close").Add("id", st->id).Add("bytesRead", link.bytes_read()).Add("bytesWritten",
                                                                                         link.bytes_written());
        Emit(o);
      };
      sh_.open.fetch_add(1);
      absl::StatusOr<std::shared_ptr<Link>> link = Link::Start(loop_.get(), fd, sh_.setup.connection, std::move(h));
      if (!link.ok()) {
        sh_.open.fetch_sub(1);
        Emit(ErrorReport("clientError", link.status(), st->id));
      }
    }
  }

  Shared& sh_;
  std::unique_ptr<epoll::Loop> loop_;
  int listen_fd_;
};

absl::StatusOr<GeneratedIdentity> CachedLocalhost() {
  absl::StatusOr<std::string> dir = DefaultCacheDir();
  if (!dir.ok()) return dir.status();
  absl::StatusOr<CachedIdentity> id = LoadOrCreateIdentity(*dir, absl::Now());
  if (!id.ok()) return id.status();
  Note(absl::StrCat(id->generated ? "made a certificate for localhost: " : "certificate for localhost: ", id->cert_path,
                    " (SHA-256 ", id->fingerprint256, "); clients can trust it with --ca / -CAfile"));
  return id->identity;
}

}  // namespace

int RunServe(const ServeFlags& flags) {
  auto sh = std::make_unique<Shared>();
  sh->flags = flags;
  absl::StatusOr<ServerSetup> setup = BuildServer(flags, CachedLocalhost);
  if (!setup.ok()) {
    Note(setup.status().message());
    return 2;
  }
  sh->setup = *std::move(setup);
  if (!sh->setup.keylog_path.empty()) {
    absl::Status s = sh->keylog.Open(sh->setup.keylog_path);
    if (!s.ok()) {
      Note(s.message());
      return 2;
    }
  }

  // Signals are taken by this thread (sigwait); the loops never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (flags.loops > 1) Note(absl::StrCat("starting ", flags.loops, " loops..."));
  std::vector<std::unique_ptr<ServeLoop>> loops;
  PeerAddress where;
  for (int64_t i = 0; i < flags.loops; ++i) {
    absl::StatusOr<int> fd = !flags.unix_path.empty()
                                 ? ListenUnix(ResolvePath(flags.unix_path))
                                 : ListenTcp(flags.host, i == 0 ? flags.port : where.port, flags.loops > 1);
    if (!fd.ok()) {
      Emit(ErrorReport("error", fd.status()));
      return 1;
    }
    if (i == 0) where = LocalAddressOf(*fd);
    absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
    if (!loop.ok()) {
      close(*fd);
      Emit(ErrorReport("error", loop.status()));
      return 1;
    }
    loops.push_back(std::make_unique<ServeLoop>(*sh, *std::move(loop), *fd));
    absl::Status s = loops.back()->Start();
    if (!s.ok()) {
      Emit(ErrorReport("error", s));
      return 1;
    }
  }
  JsonObject listening;
  listening.Add("event", "listening").Add("address", where.address);
  if (where.family != "unix") listening.Add("port", where.port);
  listening.Add("family", where.family);
  Emit(listening);
  Note(absl::StrCat("serving ", flags.mode == ServeMode::kHttp ? "http" : "echo", " on ",
                    where.family == "unix" ? where.address : absl::StrCat(where.address, ":", where.port),
                    where.family == "unix" ? "" : absl::StrCat("; try: openssl s_client -connect ", where.address, ":",
                                                               where.port),
                    " (Ctrl-C stops)"));

  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (auto& l : loops) {
    threads.emplace_back([&l, &failed] {
      absl::Status s = l->loop().Run();
      if (!s.ok()) {
        Emit(ErrorReport("error", s));
        failed.fetch_add(1);
      }
    });
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  Note("stopping: closing connections");
  for (auto& l : loops) l->RequestShutdown();
  for (auto& t : threads) t.join();
  loops.clear();
  if (!flags.unix_path.empty()) unlink(ResolvePath(flags.unix_path).c_str());
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace tlsctl
}  // namespace tlsengine
