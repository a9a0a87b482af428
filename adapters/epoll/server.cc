#include "adapters/epoll/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/epoll/addresses.h"
#include "adapters/fd/sys_status.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

constexpr size_t kTicketKeyBytes = 48;
// Accepts per readiness before yielding to the connections on the loop.
constexpr int kMaxAcceptsPerWake = 64;
// How long accepting pauses after accept(2) failed (nginx waits
// accept_mutex_delay, 500 ms by default, before it accepts again).
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);

absl::Status InvalidArg(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, message);
}

std::vector<std::string> SplitKeys(absl::string_view keys) {
  std::vector<std::string> out;
  for (size_t i = 0; i + kTicketKeyBytes <= keys.size(); i += kTicketKeyBytes) {
    out.emplace_back(keys.substr(i, kTicketKeyBytes));
  }
  return out;
}

// A new table with the entries of `table` (copy on write: a published table
// never changes, so connections that started with it keep it).
std::shared_ptr<SniContexts> CopyOf(const SniContexts& table) {
  auto copy = std::make_shared<SniContexts>();
  for (const auto& [name, context] : table.Entries()) {
    copy->Add(name, context).IgnoreError();  // cannot fail: Add accepted the name once
  }
  return copy;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const SecureContext>> WithTicketKeySet(const std::shared_ptr<const SecureContext>& context,
                                                                      const std::shared_ptr<TicketKeys>& keys) {
  if (context->ticket_key_set() == keys) return context;
  SecureContextOptions o = context->options();
  o.ticket_keys.clear();
  o.ticket_key_set = keys;
  return SecureContext::Create(o);
}

// What sockets and posted tasks reach the server through: reset when the
// server goes, so a late callback finds nullptr instead of a freed server.
// Each loop's set of open sockets is touched only on that loop.
struct Server::Shared {
  std::mutex mu;
  Server* server = nullptr;  // guarded by mu (nulled by ~Server)
  std::vector<std::unordered_set<TlsSocket*>> open;  // [loop] -> sockets, that loop only
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(std::vector<Loop*> loops, ServerOptions options,
                                                       ServerHandlers handlers) {
  if (loops.empty()) return InvalidArg("a server needs at least one loop");
  for (Loop* loop : loops) {
    if (loop == nullptr) return InvalidArg("loop is null");
  }
  if (options.max_connections < 0) return InvalidArg("max_connections must not be negative");
  if (options.handshake_timeout <= absl::ZeroDuration()) return InvalidArg("handshake_timeout must be positive");
  std::unique_ptr<Server> server(new Server(std::move(loops), std::move(options), std::move(handlers)));
  ServerOptions& o = server->options_;
  // One set of ticket keys for the server, read by every context it
  // serves, so that getTicketKeys tells the truth, setTicketKeys reaches
  // every name at once (rebuilding nothing) and every loop resumes every
  // ticket. The set of a given secure_context (as in Node, whose
  // setTicketKeys changes the server's context) or of the options is
  // shared as it is; keys given otherwise go into a set of the server's.
  if (o.secure_context != nullptr) {
    server->keys_ = o.secure_context->ticket_key_set();
  } else if (o.context.ticket_key_set != nullptr) {
    server->keys_ = o.context.ticket_key_set;
  } else {
    absl::StatusOr<std::shared_ptr<TicketKeys>> made = TicketKeys::Create(o.context.ticket_keys);
    if (!made.ok()) return made.status();
    server->keys_ = *std::move(made);
  }
  std::shared_ptr<const SecureContext> given = o.secure_context;
  if (given == nullptr) {
    SecureContextOptions co = o.context;
    co.ticket_keys.clear();
    co.ticket_key_set = server->keys_;
    absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(co);
    if (!ctx.ok()) return ctx.status();
    given = *ctx;
  }
  absl::StatusOr<std::shared_ptr<const SecureContext>> def = WithTicketKeySet(given, server->keys_);
  if (!def.ok()) return def.status();
  server->context_ = *std::move(def);
  // The addContext table given in the options is copied, each context
  // served with the server's keys; the object itself is not kept.
  if (o.connection.sni_contexts != nullptr) {
    for (const auto& [name, context] : o.connection.sni_contexts->Entries()) {
      absl::StatusOr<std::shared_ptr<const SecureContext>> served = WithTicketKeySet(context, server->keys_);
      if (!served.ok()) return served.status();
      server->sni_->Add(name, *std::move(served)).IgnoreError();  // cannot fail: Add accepted the name once
    }
  }
  o.connection.sni_contexts = nullptr;
  if (o.session_cache && !server->handlers_.on_new_session && !server->handlers_.on_resume_session) {
    server->store_ = o.session_store != nullptr
                         ? o.session_store
                         : std::make_shared<MemorySessionStore>(o.session_store_entries, o.session_store_bytes);
  }
  std::string keylog = o.keylog_file;
  if (keylog.empty() && o.honour_sslkeylogfile) {
    const char* env = std::getenv("SSLKEYLOGFILE");
    if (env != nullptr) keylog = env;
  }
  if (!keylog.empty()) {
    server->keylog_fd_ = ::open(keylog.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (server->keylog_fd_ < 0) return fdio::SysError(absl::StrCat("open ", keylog), errno);
  }
  server->max_connections_ = o.max_connections;
  return server;
}

Server::Server(std::vector<Loop*> loops, ServerOptions options, ServerHandlers handlers)
    : loops_(std::move(loops)),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      shared_(std::make_shared<Shared>()),
      sni_(std::make_shared<SniContexts>()) {
  shared_->server = this;
  shared_->open.resize(loops_.size());
}

Server::~Server() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->server = nullptr;
  }
  if (listen_fd_ >= 0) {
    // The loops are stopped (or this is the first loop's thread): the
    // watch can go now.
    loops_[0]->Unwatch(listen_fd_).IgnoreError();  // kNotFound: the Post never ran
    ::close(listen_fd_);
    unix_bound_.Remove();
  }
  if (accept_pause_ != kNoTimer) loops_[0]->Cancel(accept_pause_);
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
  if (keylog_fd_ >= 0) ::close(keylog_fd_);
}

absl::Status Server::Listen(int port, const std::string& host) {
  if (port < 0 || port > 65535) return InvalidArg(absl::StrCat("port must be 0..65535, not ", port));
  sockaddr_storage ss = {};
  socklen_t len = 0;
  bool dual = false;
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (host.empty() || host == "::") {
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*in6);
    dual = host.empty();
  } else if (!internal::ParseNumeric(host, port, &ss, &len)) {
    // A name: resolved here, blocking (see the header), and, as in Node,
    // the first address it resolves to is the one listened on.
    absl::StatusOr<std::vector<std::string>> found = internal::Resolve(host, 0);
    if (!found.ok()) return found.status();
    if (!internal::ParseNumeric(found->front(), port, &ss, &len)) {
      return MakeError(absl::StatusCode::kUnavailable, "ENOTFOUND", absl::StrCat("getaddrinfo ENOTFOUND ", host));
    }
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && host.empty() && errno == EAFNOSUPPORT) {
    // No IPv6 on this machine: 0.0.0.0 instead.
    ss = {};
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*in);
    dual = false;
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return fdio::SysError("socket", errno);
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (dual) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    absl::Status s = fdio::SysError(absl::StrCat("listen ", host.empty() ? "::" : host, ":", port), errno);
    ::close(fd);
    return s;
  }
  return StartListening(fd);
}

absl::Status Server::ListenUnix(const std::string& path) {
  sockaddr_un un = {};
  if (path.empty() || path.size() >= sizeof(un.sun_path)) {
    return InvalidArg(absl::StrCat("unix socket path must be 1..", sizeof(un.sun_path) - 1, " bytes"));
  }
  un.sun_family = AF_UNIX;
  memcpy(un.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fdio::SysError("socket", errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0) {
    absl::Status s = fdio::SysError(absl::StrCat("listen ", path), errno);
    ::close(fd);
    return s;
  }
  BoundName bound = BoundName::Record(path);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ < 0) {
      unix_path_ = path;
      unix_bound_ = std::move(bound);
    }
  }
  absl::Status s = StartListening(fd);
  if (!s.ok()) {
    bound.Remove();  // not moved when already listening
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ < 0) {
      unix_bound_.Remove();
      unix_path_.clear();
    }
  }
  return s;
}

absl::Status Server::StartListening(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ >= 0) {
      ::close(fd);
      return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_SERVER_ALREADY_LISTEN",
                       "Listen method has been called more than once without closing.");
    }
    if (::listen(fd, options_.backlog) != 0) {
      absl::Status s = fdio::SysError("listen", errno);
      ::close(fd);
      return s;
    }
    absl::StatusOr<SocketAddress> addr = LocalAddressOf(fd);
    if (!addr.ok()) {
      ::close(fd);
      return addr.status();
    }
    address_ = *addr;
    if (address_.family == "unix") address_.address = unix_path_;
    listen_fd_ = fd;
    closing_ = false;
  }
  std::weak_ptr<Shared> weak = shared_;
  loops_[0]->Post([weak, fd] {
    std::shared_ptr<Shared> shared = weak.lock();
    if (shared == nullptr) return;
    Server* server = shared->server;  // the first loop: ~Server cannot run meanwhile
    if (server == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(server->mu_);
      if (server->listen_fd_ != fd) return;  // closed before this ran
    }
    absl::Status watched = server->loops_[0]->Watch(fd, Interest{true, false}, [weak](Ready) {
      std::shared_ptr<Shared> s = weak.lock();
      if (s != nullptr && s->server != nullptr) s->server->OnAcceptReady();
    });
    if (!watched.ok()) return;  // kAlreadyExists cannot happen: one fd, one watch
    // libuv's spare descriptor for accept's EMFILE (OnAcceptError). None
    // when even this fails: accepting then only pauses.
    if (server->reserve_fd_ < 0) server->reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (server->handlers_.on_listening) server->handlers_.on_listening();
  });
  return absl::OkStatus();
}

void Server::OnAcceptReady() {
  int listen_fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listen_fd = listen_fd_;
  }
  if (listen_fd < 0 || accept_pause_ != kNoTimer) return;
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      // The peer gave up before we took it (ECONNABORTED), or a signal:
      // the next one may be fine.
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) OnAcceptError(listen_fd, err);
      return;
    }
    int max = max_connections_.load();
    if (max > 0 && connections_.load() >= max) {
      // Node's maxConnections: closed at once, no clientError.
      ::close(fd);
      refused_.fetch_add(1);
      continue;
    }
    connections_.fetch_add(1);
    accepted_.fetch_add(1);
    size_t index = next_loop_++ % loops_.size();
    if (index == 0) {
      ServeOn(0, fd);
    } else {
      std::weak_ptr<Shared> weak = shared_;
      loops_[index]->Post([weak, index, fd] {
        std::shared_ptr<Shared> shared = weak.lock();
        Server* server = nullptr;
        if (shared != nullptr) {
          std::lock_guard<std::mutex> lock(shared->mu);
          server = shared->server;
        }
        if (server == nullptr) {
          ::close(fd);
          return;
        }
        server->ServeOn(index, fd);
      });
    }
  }
}

void Server::OnAcceptError(int listen_fd, int err) {
  if (err == EMFILE || err == ENFILE) {
    // libuv's uv__emfile_trick: with the spare descriptor freed, take the
    // connections waiting in the backlog and close them, so that their
    // clients hear at once instead of waiting there, then keep a spare
    // again.
    if (reserve_fd_ >= 0) {
      ::close(reserve_fd_);
      reserve_fd_ = -1;
      for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          break;
        }
        ::close(fd);
        refused_.fetch_add(1);
      }
      reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
  }
  // nginx: stop accepting for a while rather than spin on a listener that
  // stays readable (level-triggered) while the cause lasts.
  if (loops_[0]->Modify(listen_fd, Interest{}).ok()) {
    std::weak_ptr<Shared> weak = shared_;
    accept_pause_ = loops_[0]->AddTimer(loops_[0]->Now() + kAcceptPause, [weak, listen_fd] {
      std::shared_ptr<Shared> shared = weak.lock();
      Server* server = shared != nullptr ? shared->server : nullptr;  // the first loop: no lock needed
      if (server == nullptr) return;
      server->accept_pause_ = kNoTimer;
      {
        std::lock_guard<std::mutex> lock(server->mu_);
        if (server->listen_fd_ != listen_fd || server->closing_) return;
      }
      // kNotFound only if Close unwatched it meanwhile: nothing to resume.
      server->loops_[0]->Modify(listen_fd, Interest{true, false}).IgnoreError();
    });
  }
  bool resources = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  absl::Status error =
      fdio::SysError("accept", err, resources ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kUnavailable);
  if (handlers_.on_error) handlers_.on_error(error);
}

void Server::ServeOn(size_t loop_index, int fd) {
  Loop* loop = loops_[loop_index];
  TlsSocketOptions so;
  so.tls = options_.connection;
  so.tls.is_server = true;
  {
    std::lock_guard<std::mutex> lock(mu_);  // one configuration: context and table together
    so.tls.secure_context = context_;
    so.tls.sni_contexts = handlers_.sni_callback ? nullptr : sni_;
  }
  so.tls.handshake_timeout = options_.handshake_timeout;
  so.tls.sni_callback = static_cast<bool>(handlers_.sni_callback);
  so.tls.session_cache = store_ != nullptr || handlers_.on_new_session || handlers_.on_resume_session;
  so.tls.ocsp_request = static_cast<bool>(handlers_.on_ocsp_request);
  so.tls.keylog = keylog_fd_ >= 0 || static_cast<bool>(handlers_.on_keylog);
  so.no_delay = options_.no_delay;
  so.high_water_mark = options_.high_water_mark;
  so.driver = options_.driver;

  std::weak_ptr<Shared> weak = shared_;
  TlsSocket::ServerHooks hooks;
  hooks.on_secure = [this](TlsSocket& s) {
    if (handlers_.on_secure_connection) handlers_.on_secure_connection(s.shared_from_this());
  };
  hooks.on_client_error = [this](TlsSocket& s, const absl::Status& error) {
    if (handlers_.on_client_error) handlers_.on_client_error(error, s);
  };
  hooks.on_suspension = [this](TlsSocket& s, const Event& event) { return Answer(s, event); };
  hooks.on_keylog = [this](TlsSocket& s, const std::string& line) {
    if (keylog_fd_ >= 0) {
      std::string out = line + "\n";
      ssize_t n = ::write(keylog_fd_, out.data(), out.size());  // one line, one O_APPEND write
      (void)n;  // a full disk loses key-log lines, never the connection
    }
    if (handlers_.on_keylog) handlers_.on_keylog(line, s);
  };
  hooks.on_closed = [weak, loop_index](TlsSocket& s) {
    std::shared_ptr<Shared> shared = weak.lock();
    if (shared == nullptr) return;
    Server* server;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      server = shared->server;
    }
    shared->open[loop_index].erase(&s);
    if (server != nullptr) server->OnSocketClosed();
  };
  absl::StatusOr<std::shared_ptr<TlsSocket>> socket = TlsSocket::Accept(loop, fd, std::move(so), std::move(hooks));
  if (!socket.ok()) {
    // The loop is shutting down (or the engine refused the options): the
    // fd is closed already; it never was a connection.
    OnSocketClosed();
    return;
  }
  shared_->open[loop_index].insert(socket->get());
  if (handlers_.on_connection) handlers_.on_connection(**socket);
}

bool Server::Answer(TlsSocket& socket, const Event& event) {
  std::weak_ptr<TlsSocket> weak = socket.shared_from_this();
  Loop* loop = socket.loop();
  switch (event.type) {
    case EventType::kSniRequest:
      if (!handlers_.sni_callback) return false;
      handlers_.sni_callback(event.servername, [weak, loop](absl::StatusOr<std::shared_ptr<const SecureContext>> c) {
        loop->Post([weak, c] {
          if (std::shared_ptr<TlsSocket> s = weak.lock()) s->AnswerSni(c).IgnoreError();  // closed: nothing waits
        });
      });
      return true;
    case EventType::kResumeSession:
      if (store_ != nullptr) {
        std::optional<std::string> found = store_->Get(event.session_id, loop->Now());
        socket.AnswerResumeSession(found.value_or("")).IgnoreError();  // it waits: cannot fail
        return true;
      }
      if (!handlers_.on_resume_session) return false;  // only on_new_session is set
      handlers_.on_resume_session(socket, event.session_id, [weak, loop](absl::StatusOr<std::string> session) {
        loop->Post([weak, session] {
          if (std::shared_ptr<TlsSocket> s = weak.lock()) s->AnswerResumeSession(session).IgnoreError();
        });
      });
      return true;
    case EventType::kNewSession:
      if (store_ != nullptr) {
        // A TLS 1.3 ticket carries its session: storing it would only push
        // TLS 1.2 session ids out of the LRU (two per connection).
        if (event.stateless_ticket) {
          socket.AckNewSession().IgnoreError();  // it waits: cannot fail
          return true;
        }
        int64_t lifetime = socket.engine() != nullptr ? secure_context()->options().session_timeout : 300;
        // A session the store cannot hold only means no resumption by id.
        store_->Put(event.session_id, event.session, loop->Now() + absl::Seconds(lifetime)).IgnoreError();
        socket.AckNewSession().IgnoreError();  // it waits: cannot fail
        return true;
      }
      if (!handlers_.on_new_session) return false;  // only on_resume_session is set
      handlers_.on_new_session(socket, event.session_id, event.session, [weak, loop](absl::Status stored) {
        loop->Post([weak, stored] {
          if (std::shared_ptr<TlsSocket> s = weak.lock()) s->AckNewSession(stored).IgnoreError();
        });
      });
      return true;
    case EventType::kOcspRequest:
      if (!handlers_.on_ocsp_request) return false;
      handlers_.on_ocsp_request(socket, event.certificate, event.issuer,
                                [weak, loop](absl::StatusOr<std::string> response) {
                                  loop->Post([weak, response] {
                                    if (std::shared_ptr<TlsSocket> s = weak.lock()) {
                                      s->AnswerOcspRequest(response).IgnoreError();
                                    }
                                  });
                                });
      return true;
    default:
      return false;
  }
}

void Server::OnSocketClosed() {
  connections_.fetch_sub(1);
  MaybeFinishClose();
}

void Server::MaybeFinishClose() {
  std::function<void()> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_ || listen_fd_ >= 0 || connections_.load() > 0 || !close_done_) return;
    done = std::move(close_done_);
    close_done_ = nullptr;
  }
  loops_[0]->Post(std::move(done));
}

absl::Status Server::Close(std::function<void()> done) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ < 0) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_SERVER_NOT_RUNNING", "Server is not running.");
    }
    fd = listen_fd_;
    closing_ = true;
    close_done_ = done ? std::move(done) : [] {};
  }
  std::weak_ptr<Shared> weak = shared_;
  loops_[0]->Post([weak, fd] {
    std::shared_ptr<Shared> shared = weak.lock();
    Server* server = shared != nullptr ? shared->server : nullptr;
    if (server == nullptr) return;
    server->loops_[0]->Unwatch(fd).IgnoreError();  // kNotFound: never watched
    ::close(fd);
    if (server->accept_pause_ != kNoTimer) server->loops_[0]->Cancel(server->accept_pause_);
    server->accept_pause_ = kNoTimer;
    if (server->reserve_fd_ >= 0) ::close(server->reserve_fd_);
    server->reserve_fd_ = -1;
    {
      std::lock_guard<std::mutex> lock(server->mu_);
      server->unix_bound_.Remove();
      server->listen_fd_ = -1;
      server->unix_path_.clear();
    }
    server->MaybeFinishClose();
  });
  return absl::OkStatus();
}

void Server::EndAll() {
  for (size_t i = 0; i < loops_.size(); ++i) {
    std::weak_ptr<Shared> weak = shared_;
    loops_[i]->Post([weak, i] {
      std::shared_ptr<Shared> shared = weak.lock();
      if (shared == nullptr) return;
      std::vector<std::shared_ptr<TlsSocket>> open;
      for (TlsSocket* s : shared->open[i]) open.push_back(s->shared_from_this());
      for (const std::shared_ptr<TlsSocket>& s : open) s->End();
    });
  }
}

absl::StatusOr<SocketAddress> Server::address() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (listen_fd_ < 0) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_SERVER_NOT_RUNNING", "Server is not running.");
  }
  return address_;
}

bool Server::listening() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listen_fd_ >= 0 && !closing_;
}

absl::Status Server::set_max_connections(int max) {
  if (max < 0) return InvalidArg("max_connections must not be negative");
  max_connections_.store(max);
  return absl::OkStatus();
}

absl::Status Server::AddContext(const std::string& hostname, const SecureContextOptions& options) {
  SecureContextOptions o = options;
  o.ticket_keys.clear();
  o.ticket_key_set = keys_;
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  if (!ctx.ok()) return ctx.status();
  return AddContext(hostname, *std::move(ctx));
}

absl::Status Server::AddContext(const std::string& hostname, std::shared_ptr<const SecureContext> context) {
  if (context == nullptr) return InvalidArg("context is null");
  absl::StatusOr<std::shared_ptr<const SecureContext>> served = WithTicketKeySet(context, keys_);  // no lock held
  if (!served.ok()) return served.status();
  std::lock_guard<std::mutex> config(config_mu_);
  std::shared_ptr<SniContexts> table = CopyOf(*sni_);
  if (absl::Status s = table->Add(hostname, *std::move(served)); !s.ok()) return s;
  PublishSni(std::move(table));
  return absl::OkStatus();
}

absl::Status Server::RemoveContext(const std::string& hostname) {
  std::lock_guard<std::mutex> config(config_mu_);
  std::shared_ptr<SniContexts> table = CopyOf(*sni_);
  if (!table->Remove(hostname)) {
    return MakeError(absl::StatusCode::kNotFound, kErrInvalidArgValue,
                     absl::StrCat("removeContext: no context for '", hostname, "'"));
  }
  PublishSni(std::move(table));
  return absl::OkStatus();
}

void Server::PublishSni(std::shared_ptr<SniContexts> table) {
  std::lock_guard<std::mutex> lock(mu_);
  sni_ = std::move(table);
}

std::vector<ServedContext> Server::Contexts() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ServedContext> out{{"", context_}};
  for (auto& [name, context] : sni_->Entries()) out.push_back({name, context});
  return out;
}

absl::Status Server::SetSecureContext(const SecureContextOptions& options) {
  std::vector<std::string> keys = options.ticket_keys;
  SecureContextOptions o = options;
  o.ticket_keys.clear();
  o.ticket_key_set = keys_;
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);  // checks nothing of `keys`
  if (!ctx.ok()) return ctx.status();
  if (!keys.empty()) {
    if (absl::Status s = keys_->Set(std::move(keys)); !s.ok()) return s;  // nothing changed yet
  }
  return SetSecureContext(*std::move(ctx));
}

absl::Status Server::SetSecureContext(std::shared_ptr<const SecureContext> context) {
  if (context == nullptr) return InvalidArg("context is null");
  absl::StatusOr<std::shared_ptr<const SecureContext>> served = WithTicketKeySet(context, keys_);  // no lock held
  if (!served.ok()) return served.status();
  std::lock_guard<std::mutex> lock(mu_);
  context_ = *std::move(served);
  return absl::OkStatus();
}

std::shared_ptr<const SecureContext> Server::secure_context() const {
  std::lock_guard<std::mutex> lock(mu_);
  return context_;
}

absl::Status Server::SetTicketKeys(absl::string_view keys) {
  if (keys.empty() || keys.size() % kTicketKeyBytes != 0) {
    return InvalidArg(absl::StrCat("Session ticket keys must be a multiple of 48 bytes, not ", keys.size()));
  }
  return keys_->Set(SplitKeys(keys));
}

std::string Server::GetTicketKeys() const { return absl::StrJoin(*keys_->Get(), ""); }

// ---- LoopGroup ----

absl::StatusOr<std::unique_ptr<LoopGroup>> LoopGroup::Start(int n) {
  if (n < 1) return InvalidArg(absl::StrCat("a loop group needs at least one loop, not ", n));
  std::unique_ptr<LoopGroup> group(new LoopGroup());
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
    if (!loop.ok()) return loop.status();
    group->loops_.push_back(*std::move(loop));
  }
  for (std::unique_ptr<Loop>& loop : group->loops_) {
    Loop* l = loop.get();
    LoopGroup* g = group.get();
    // Run() fails only on an epoll_wait error; that loop's thread then
    // ends, and the error waits for status() / Stop().
    group->threads_.emplace_back([l, g] {
      absl::Status ran = l->Run();
      if (ran.ok()) return;
      std::lock_guard<std::mutex> lock(g->mu_);
      if (g->first_error_.ok()) g->first_error_ = std::move(ran);
    });
  }
  return group;
}

LoopGroup::~LoopGroup() {
  Stop().IgnoreError();  // a destructor has nobody to tell; call Stop() first to hear it
}

absl::Status LoopGroup::Stop() {
  if (!stopped_) {
    stopped_ = true;
    for (std::unique_ptr<Loop>& loop : loops_) loop->Stop();
    for (std::thread& t : threads_) t.join();
  }
  return status();
}

absl::Status LoopGroup::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

std::vector<Loop*> LoopGroup::loops() const {
  std::vector<Loop*> out;
  for (const std::unique_ptr<Loop>& loop : loops_) out.push_back(loop.get());
  return out;
}

void LoopGroup::RunOn(size_t i, std::function<void()> fn) {
  std::promise<void> ran;
  std::future<void> done = ran.get_future();
  loops_[i]->Post([&] {
    fn();
    ran.set_value();
  });
  done.wait();
}

}  // namespace epoll
}  // namespace tlsengine
