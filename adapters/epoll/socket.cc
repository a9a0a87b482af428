#include "adapters/epoll/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/epoll/addresses.h"
#include "adapters/fd/resolve.h"
#include "adapters/fd/sys_status.h"
#include "core/default_answers.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

absl::Status InvalidArg(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, message);
}

SocketAddress FromSockaddr(const sockaddr_storage& ss, socklen_t len) {
  SocketAddress out;
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    out.address = text;
    out.family = "IPv4";
    out.port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    out.address = text;
    out.family = "IPv6";
    out.port = ntohs(in6->sin6_port);
  } else if (ss.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t path_len = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    out.address = std::string(un->sun_path, strnlen(un->sun_path, path_len));
    out.family = "unix";
  }
  return out;
}

}  // namespace

namespace internal {

bool ParseNumeric(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof(*ss));
  auto* in = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> Resolve(const std::string& host, int family) {
  fdio::ResolveOptions options;
  options.family = family;
  absl::StatusOr<std::vector<fdio::Address>> found = fdio::Resolve(host, 0, options);
  if (!found.ok()) return found.status();
  std::vector<std::string> out;
  for (const fdio::Address& a : *found) out.push_back(a.text);
  return out;
}

}  // namespace internal

namespace {

absl::StatusOr<SocketAddress> AddressOf(int fd, bool peer) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return fdio::SysError(peer ? "getpeername" : "getsockname", errno);
  return FromSockaddr(ss, len);
}

bool IsTcp(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

// A stream socket that getpeername says is not connected, as Wrap finds it.
enum class Unconnected {
  kConnecting,  // a non-blocking connect is under way (or has just succeeded)
  kFailed,      // its connect failed: *error is SO_ERROR (now taken)
  kIdle,        // never connected, or listening
};
Unconnected ClassifyUnconnected(int fd, int* error) {
  tcp_info info = {};
  socklen_t len = sizeof(info);
  if (IsTcp(fd) && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
      (info.tcpi_state == TCP_SYN_SENT || info.tcpi_state == TCP_ESTABLISHED)) {
    return Unconnected::kConnecting;
  }
  int err = 0;
  len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    *error = err;
    return Unconnected::kFailed;
  }
  return Unconnected::kIdle;
}

}  // namespace

absl::StatusOr<SocketAddress> LocalAddressOf(int fd) { return AddressOf(fd, false); }
absl::StatusOr<SocketAddress> PeerAddressOf(int fd) { return AddressOf(fd, true); }

absl::string_view ReadyStateName(ReadyState state) {
  switch (state) {
    case ReadyState::kOpening:
      return "opening";
    case ReadyState::kOpen:
      return "open";
    case ReadyState::kReadOnly:
      return "readOnly";
    case ReadyState::kWriteOnly:
      return "writeOnly";
    case ReadyState::kClosed:
      return "closed";
  }
  return "closed";
}

// The driver's callbacks, forwarded to the socket.
class TlsSocket::Handler : public ConnectionHandler {
 public:
  explicit Handler(TlsSocket* socket) : socket_(socket) {}
  void OnEngineEvent(const Event& event) override { socket_->HandleEvent(event); }
  void OnActivity() override {
    socket_->TouchIdle();
    socket_->FlushPending();  // output moved: room for more plaintext
  }
  void OnClosed(const absl::Status& status) override { socket_->HandleClosed(status); }

 private:
  TlsSocket* const socket_;
};

// The loop's Shutdown ends sockets gracefully, then destroys the rest.
class TlsSocket::Closer : public Closable {
 public:
  explicit Closer(TlsSocket* socket) : socket_(socket) {}
  void CloseGracefully(absl::Time deadline) override { socket_->End(); }
  void ForceClose() override {
    std::shared_ptr<TlsSocket> keep = socket_->shared_from_this();
    registered = false;
    socket_->Destroy();
    // The loop may stop right after Shutdown: finish now rather than in
    // the posted OnClosed, which might never run.
    if (!socket_->closed_) socket_->HandleClosed(socket_->close_status_);
  }
  bool registered = false;

 private:
  TlsSocket* const socket_;
};

TlsSocket::TlsSocket(Loop* loop, TlsSocketOptions options)
    : loop_(loop), options_(std::move(options)) {}

TlsSocket::~TlsSocket() {
  if (resolver_.joinable()) resolver_.join();
  if (closer_ != nullptr && closer_->registered) loop_->RemoveClosable(closer_.get());
  if (idle_timer_ != kNoTimer) loop_->Cancel(idle_timer_);
  if (connecting_fd_ >= 0) {
    loop_->Unwatch(connecting_fd_).IgnoreError();  // kNotFound: not watched yet
    ::close(connecting_fd_);
  }
  if (keylog_fd_ >= 0) ::close(keylog_fd_);
}

absl::StatusOr<std::shared_ptr<TlsSocket>> TlsSocket::Make(Loop* loop, TlsSocketOptions options) {
  if (loop == nullptr) return InvalidArg("loop is null");
  if (options.tls.secure_context == nullptr) return InvalidArg("secure_context is required");
  if (options.high_water_mark == 0) return InvalidArg("high_water_mark must be positive");
  if (options.max_buffered_writes < options.high_water_mark) {
    return InvalidArg(absl::StrCat("max_buffered_writes (", options.max_buffered_writes,
                                   ") must be at least high_water_mark (", options.high_water_mark, ")"));
  }
  std::shared_ptr<TlsSocket> socket(new TlsSocket(loop, std::move(options)));
  TlsSocketOptions& o = socket->options_;
  std::string keylog = o.keylog_file;
  if (keylog.empty() && o.honour_sslkeylogfile) {
    const char* env = std::getenv("SSLKEYLOGFILE");
    if (env != nullptr) keylog = env;
  }
  if (!keylog.empty()) {
    socket->keylog_fd_ = ::open(keylog.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (socket->keylog_fd_ < 0) {
      return fdio::SysError(absl::StrCat("open ", keylog), errno);
    }
    o.tls.keylog = true;
  }
  // The engine's write buffer is the stream's buffer: Write() is short, and
  // returns false, once it holds high_water_mark bytes.
  o.tls.max_write_buffer = o.high_water_mark;
  socket->handler_ = std::make_unique<Handler>(socket.get());
  socket->closer_ = std::make_unique<Closer>(socket.get());
  absl::Status added = loop->AddClosable(socket->closer_.get());
  if (!added.ok()) return added;  // the loop is shutting down
  socket->closer_->registered = true;
  socket->self_ = socket;
  return socket;
}

absl::StatusOr<std::shared_ptr<TlsSocket>> TlsSocket::Connect(Loop* loop, TlsSocketOptions options) {
  if (options.path.empty() && (options.port <= 0 || options.port > 65535)) {
    return InvalidArg(absl::StrCat("port must be 1..65535 (or give a path), not ", options.port));
  }
  if (options.family != 0 && options.family != 4 && options.family != 6) {
    return InvalidArg(absl::StrCat("family must be 0, 4 or 6, not ", options.family));
  }
  options.tls.is_server = false;
  if (options.tls.host.empty()) options.tls.host = options.host;
  std::shared_ptr<TlsSocket> socket;
  {
    absl::StatusOr<std::shared_ptr<TlsSocket>> made = Make(loop, std::move(options));
    if (!made.ok()) return made.status();
    socket = *std::move(made);
  }
  std::weak_ptr<TlsSocket> weak = socket;
  loop->Post([weak] {
    if (std::shared_ptr<TlsSocket> s = weak.lock()) s->StartConnect();
  });
  return socket;
}

absl::StatusOr<std::shared_ptr<TlsSocket>> TlsSocket::Wrap(Loop* loop, int fd, TlsSocketOptions options,
                                                           absl::string_view already_read) {
  if (fd < 0) return InvalidArg("fd < 0");
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    int err = errno;
    ::close(fd);
    return fdio::SysError("wrap: not a stream socket", err == 0 ? ENOTSOCK : err, absl::StatusCode::kUnavailable);
  }
  // Connected, or (Node's tls.connect({socket}) over a socket still
  // connecting) a non-blocking connect under way: the handshake starts
  // once it completes. A socket nobody is connecting cannot become
  // connected once we hold it: refused.
  sockaddr_storage ss;
  socklen_t ss_len = sizeof(ss);
  Unconnected unconnected = Unconnected::kConnecting;
  int connect_error = 0;
  const bool connected = getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &ss_len) == 0;
  if (!connected) {
    int err = errno;
    if (err == ENOTCONN) unconnected = ClassifyUnconnected(fd, &connect_error);
    if (err != ENOTCONN || unconnected == Unconnected::kIdle) {
      ::close(fd);
      if (err != ENOTCONN) return fdio::SysError("wrap: getpeername", err);
      return MakeError(absl::StatusCode::kFailedPrecondition, "ENOTCONN",
                       "wrap: the socket is not connected and no connect is under way (start a non-blocking "
                       "connect first: Wrap waits for it)");
    }
  }
  absl::StatusOr<std::shared_ptr<TlsSocket>> made = Make(loop, std::move(options));
  if (!made.ok()) {
    ::close(fd);
    return made.status();
  }
  std::shared_ptr<TlsSocket> socket = *std::move(made);
  socket->is_server_ = socket->options_.tls.is_server;
  if (!connected) {
    socket->wrap_connecting_ = true;
    if (unconnected == Unconnected::kFailed) {
      // It failed before we looked: reported from the loop, as a failure
      // found while waiting would be.
      ::close(fd);
      socket->CloseBeforeEngine(fdio::SysError("connect", connect_error));
      return socket;
    }
    socket->connecting_fd_ = fd;
    socket->wrap_already_read_ = std::string(already_read);
    std::weak_ptr<TlsSocket> weak = socket;
    loop->Post([weak] {
      std::shared_ptr<TlsSocket> s = weak.lock();
      if (s == nullptr || s->closed_ || s->connecting_fd_ < 0) return;
      TlsSocket* raw = s.get();
      absl::Status watched =
          s->loop_->Watch(s->connecting_fd_, Interest{false, true}, [raw](Ready r) { raw->OnConnectReady(r); });
      if (!watched.ok()) s->Destroy(watched);
    });
    return socket;
  }
  absl::Status started = socket->StartEngine(fd, already_read);
  if (!started.ok()) {
    socket->self_.reset();
    return started;
  }
  return socket;
}

absl::StatusOr<std::shared_ptr<TlsSocket>> TlsSocket::Accept(Loop* loop, int fd, TlsSocketOptions options,
                                                             ServerHooks hooks) {
  options.tls.is_server = true;
  options.keylog_file.clear();
  options.honour_sslkeylogfile = false;  // the server writes its own key log
  absl::StatusOr<std::shared_ptr<TlsSocket>> made = Make(loop, std::move(options));
  if (!made.ok()) {
    ::close(fd);
    return made.status();
  }
  std::shared_ptr<TlsSocket> socket = *std::move(made);
  socket->is_server_ = true;
  socket->hooks_ = std::move(hooks);
  absl::Status started = socket->StartEngine(fd, "");
  if (!started.ok()) {
    socket->self_.reset();
    return started;
  }
  return socket;
}

absl::Status TlsSocket::StartEngine(int fd, absl::string_view already_read) {
  if (IsTcp(fd)) {
    int one = 1;
    if (options_.no_delay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (options_.keep_alive) {
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
      int secs = static_cast<int>(absl::ToInt64Seconds(options_.keep_alive_initial_delay));
      if (secs > 0) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
    }
  }
  if (absl::StatusOr<SocketAddress> a = LocalAddressOf(fd); a.ok()) local_ = *a;
  if (absl::StatusOr<SocketAddress> a = PeerAddressOf(fd); a.ok()) remote_ = *a;
  absl::StatusOr<std::unique_ptr<TlsConnection>> engine = TlsConnection::Create(options_.tls, loop_->Now());
  if (!engine.ok()) {
    ::close(fd);
    return engine.status();
  }
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Create(loop_, fd, *std::move(engine), handler_.get(), weak_from_this(), options_.driver);
  if (!conn.ok()) return conn.status();
  conn_ = *std::move(conn);
  last_activity_ = loop_->Now();
  // Start on the next iteration: the caller sets handlers first.
  std::string early(already_read);
  std::weak_ptr<TlsSocket> weak = weak_from_this();
  loop_->Post([weak, early = std::move(early)] {
    std::shared_ptr<TlsSocket> s = weak.lock();
    if (s == nullptr || s->closed_ || s->conn_->closing()) return;
    absl::Status watched = s->conn_->Start();
    if (!watched.ok()) {
      s->conn_->Destroy(watched);
      return;
    }
    // Bytes the application read before handing the fd over come first.
    absl::Span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(early.data()), early.size());
    while (!rest.empty() && !s->conn_->closing()) {
      absl::StatusOr<size_t> fed = s->conn_->engine()->Feed(rest);
      if (!fed.ok() || *fed == 0) {
        s->conn_->Destroy(fed.ok() ? MakeError(absl::StatusCode::kResourceExhausted, kErrBufferFull,
                                               "already_read does not fit the input buffer")
                                   : fed.status());
        return;
      }
      rest.remove_prefix(*fed);
      s->conn_->Pump();
    }
    s->FlushPending();
    s->conn_->Pump();
  });
  return absl::OkStatus();
}

void TlsSocket::StartConnect() {
  if (closed_) return;
  if (!options_.path.empty()) {
    candidates_ = {options_.path};
    TryNextAddress();
    return;
  }
  connect_port_ = options_.port;
  sockaddr_storage ss;
  socklen_t len;
  if (internal::ParseNumeric(options_.host, connect_port_, &ss, &len)) {
    candidates_ = {options_.host};
    TryNextAddress();
    return;
  }
  // Names go to a helper thread; the answer comes back through Post.
  std::weak_ptr<TlsSocket> weak = weak_from_this();
  Loop* loop = loop_;
  std::string host = options_.host;
  int family = options_.family;
  int port = connect_port_;
  resolver_ = std::thread([weak, loop, host, family, port] {
    absl::StatusOr<std::vector<std::string>> addresses = internal::Resolve(host, family);
    loop->Post([weak, addresses, port] {
      if (std::shared_ptr<TlsSocket> s = weak.lock()) s->OnResolved(addresses, port);
    });
  });
}

void TlsSocket::OnResolved(absl::StatusOr<std::vector<std::string>> addresses, int port) {
  if (closed_) return;
  if (!addresses.ok()) {
    CloseBeforeEngine(addresses.status());
    return;
  }
  candidates_ = *std::move(addresses);
  connect_port_ = port;
  TryNextAddress();
}

void TlsSocket::TryNextAddress() {
  while (next_candidate_ < candidates_.size()) {
    const std::string& target = candidates_[next_candidate_];
    sockaddr_storage ss = {};
    socklen_t len = 0;
    std::string where;
    if (!options_.path.empty()) {
      auto* un = reinterpret_cast<sockaddr_un*>(&ss);
      if (target.size() >= sizeof(un->sun_path)) {
        CloseBeforeEngine(InvalidArg(absl::StrCat("path too long: ", target)));
        return;
      }
      un->sun_family = AF_UNIX;
      memcpy(un->sun_path, target.data(), target.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + target.size() + 1);
      where = target;
    } else {
      internal::ParseNumeric(target, connect_port_, &ss, &len);
      where = absl::StrCat(target, ":", connect_port_);
    }
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_connect_error_ = fdio::SysError("socket", errno);
      ++next_candidate_;
      continue;
    }
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    if (rc == 0 || errno == EINPROGRESS || (errno == EAGAIN && !options_.path.empty())) {
      connecting_fd_ = fd;
      absl::Status watched = loop_->Watch(fd, Interest{false, true}, [this](Ready r) { OnConnectReady(r); });
      if (watched.ok()) return;
      last_connect_error_ = watched;
      ::close(fd);
      connecting_fd_ = -1;
    } else {
      last_connect_error_ = fdio::SysError(absl::StrCat("connect ", where), errno);
      ::close(fd);
    }
    ++next_candidate_;
  }
  CloseBeforeEngine(last_connect_error_.ok()
                        ? MakeError(absl::StatusCode::kUnavailable, "ENOTFOUND", "no address to connect to")
                        : last_connect_error_);
}

void TlsSocket::OnConnectReady(Ready ready) {
  std::shared_ptr<TlsSocket> keep = shared_from_this();
  int fd = connecting_fd_;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  loop_->Unwatch(fd).IgnoreError();  // it is watched: this is its callback
  connecting_fd_ = -1;
  if (err != 0 && wrap_connecting_) {
    ::close(fd);  // Wrap: no other address to try
    CloseBeforeEngine(fdio::SysError("connect", err));
    return;
  }
  if (err != 0) {
    const std::string& target = candidates_[next_candidate_];
    last_connect_error_ = fdio::SysError(
        options_.path.empty() ? absl::StrCat("connect ", target, ":", connect_port_)
                              : absl::StrCat("connect ", target),
        err);
    ::close(fd);
    ++next_candidate_;
    TryNextAddress();
    return;
  }
  absl::Status started = StartEngine(fd, wrap_already_read_);
  wrap_already_read_.clear();
  if (!started.ok()) {
    CloseBeforeEngine(started);
    return;
  }
  Emit(handlers_.on_connect);
}

void TlsSocket::CloseBeforeEngine(absl::Status status) {
  if (closed_) return;
  // No engine yet: report the way the driver would, from the loop.
  std::weak_ptr<TlsSocket> weak = weak_from_this();
  closed_pending_ = true;
  loop_->Post([weak, status] {
    if (std::shared_ptr<TlsSocket> s = weak.lock()) s->HandleClosed(status);
  });
}

void TlsSocket::Emit(const std::function<void()>& fn) {
  if (fn) fn();
}

void TlsSocket::EmitError(const absl::Status& status) {
  if (errored_) return;
  errored_ = true;
  if (reneg_done_) {
    auto done = std::move(reneg_done_);
    reneg_done_ = nullptr;
    done(status);
  }
  // A socket a Server accepted reports errors before 'secure' to the
  // server (tlsClientError): the application does not have it yet. A
  // wrapped server-role socket is the application's from the start and
  // emits 'error', as Node's new TLSSocket(socket, {isServer: true}) does.
  if (is_server_ && !secure_seen_ && hooks_.on_client_error) {
    hooks_.on_client_error(*this, status);
    return;
  }
  if (handlers_.on_error) handlers_.on_error(status);
}

void TlsSocket::HandleEvent(const Event& event) {
  switch (event.type) {
    case EventType::kSecure:
      secure_seen_ = true;
      if (is_server_) {
        if (hooks_.on_secure) hooks_.on_secure(*this);
      } else {
        Emit(handlers_.on_secure_connect);
      }
      return;
    case EventType::kData: {
      bytes_read_ += event.data.size();
      absl::string_view text(reinterpret_cast<const char*>(event.data.data()), event.data.size());
      if (paused_) {
        paused_data_.emplace_back(text);
      } else if (handlers_.on_data) {
        handlers_.on_data(text);
      }
      return;
    }
    case EventType::kPeerClosed:
    case EventType::kTruncated:
      peer_ended_ = true;
      truncated_ = event.type == EventType::kTruncated;
      if (!paused_) {
        Emit(handlers_.on_end);
        end_emitted_ = true;
        if (!options_.allow_half_open && !closed_) End();
      }
      return;
    case EventType::kError:
      EmitError(event.status);
      return;
    case EventType::kSniRequest:
    case EventType::kResumeSession:
    case EventType::kNewSession:
    case EventType::kOcspRequest:
      if ((!hooks_.on_suspension || !hooks_.on_suspension(*this, event)) && conn_ != nullptr) {
        AnswerByDefault(*conn_->engine(), event).IgnoreError();  // it waits: cannot fail
      }
      return;
    case EventType::kSession:
      if (handlers_.on_session) handlers_.on_session(event.session);
      return;
    case EventType::kOcspResponse:
      if (handlers_.on_ocsp_response) handlers_.on_ocsp_response(event.ocsp_response);
      return;
    case EventType::kKeylog:
      WriteKeylog(event.line);
      if (hooks_.on_keylog) hooks_.on_keylog(*this, event.line);
      if (handlers_.on_keylog) handlers_.on_keylog(event.line);
      return;
    case EventType::kRenegotiated:
      if (reneg_done_) {
        auto done = std::move(reneg_done_);
        reneg_done_ = nullptr;
        done(absl::OkStatus());
      }
      Emit(handlers_.on_renegotiated);
      return;
    case EventType::kDrain:
      FlushPending();
      return;
    case EventType::kHandshakeStart:
    case EventType::kClosed:
      return;
  }
}

void TlsSocket::HandleClosed(const absl::Status& status) {
  if (closed_) return;
  closed_ = true;
  close_status_ = status;
  if (conn_ != nullptr) {
    final_raw_read_ = conn_->raw_bytes_read();
    final_raw_written_ = conn_->raw_bytes_written();
  }
  if (idle_timer_ != kNoTimer) loop_->Cancel(idle_timer_);
  idle_timer_ = kNoTimer;
  if (closer_->registered) {
    closer_->registered = false;
    loop_->RemoveClosable(closer_.get());
  }
  pending_.clear();
  pending_bytes_ = 0;
  if (!status.ok()) EmitError(status);
  if (handlers_.on_close) handlers_.on_close(errored_ || !status.ok());
  if (hooks_.on_closed) hooks_.on_closed(*this);
  // Handlers may hold the socket; without them it goes now.
  handlers_ = SocketHandlers();
  hooks_ = ServerHooks();
  std::shared_ptr<TlsSocket> last = std::move(self_);
}

void TlsSocket::FlushPending() {
  if (conn_ == nullptr || conn_->closing() || closed_) return;
  TlsConnection* engine = conn_->engine();
  if (!pending_.empty() && !EngineHasRoom()) return;
  while (!pending_.empty()) {
    std::string& front = pending_.front();
    absl::StatusOr<size_t> n = engine->Write(front);
    if (!n.ok() || *n == 0) break;
    pending_bytes_ -= *n;
    if (*n == front.size()) {
      pending_.pop_front();
    } else {
      front.erase(0, *n);
      break;
    }
  }
  if (!pending_.empty()) return;
  if (ending_ && !end_sent_) {
    end_sent_ = true;
    engine->End(loop_->Now(), /*wait_for_peer=*/!peer_ended_ && !conn_->transport_eof());
  }
  conn_->Pump();
  if (need_drain_ && !closed_) {
    need_drain_ = false;
    Emit(handlers_.on_drain);
  }
}

bool TlsSocket::EngineHasRoom() const {
  // The engine stops reading while its output buffer is full. Plaintext
  // that the application writes faster than the peer reads must not fill
  // it, or two peers echoing to each other stop reading at once and
  // deadlock: keep the excess here (as Node's stream buffer does) while
  // half the output buffer is taken.
  return conn_->engine()->OutputSize() < options_.tls.max_output_buffer / 2;
}

bool TlsSocket::Write(absl::string_view data) {
  if (ending_ || closed_ || closed_pending_ || errored_ || (conn_ != nullptr && conn_->closing())) {
    if (!write_error_reported_) {
      write_error_reported_ = true;
      absl::Status error = ending_ ? MakeError(absl::StatusCode::kFailedPrecondition,
                                               "ERR_STREAM_WRITE_AFTER_END", "write after end")
                                   : MakeError(absl::StatusCode::kFailedPrecondition,
                                               "ERR_STREAM_DESTROYED",
                                               "Cannot call write after a stream was destroyed");
      std::weak_ptr<TlsSocket> weak = weak_from_this();
      loop_->Post([weak, error] {
        std::shared_ptr<TlsSocket> s = weak.lock();
        if (s != nullptr && s->handlers_.on_error) s->handlers_.on_error(error);
      });
    }
    return false;
  }
  size_t offered = data.size();
  if (conn_ != nullptr && !conn_->closing() && pending_.empty() && EngineHasRoom()) {
    absl::StatusOr<size_t> n = conn_->engine()->Write(data);
    if (n.ok()) data.remove_prefix(*n);
    // An error is the engine's sticky one: kError is raised by the Pump.
  }
  if (data.size() > options_.max_buffered_writes - pending_bytes_) {
    // Refused whole rather than cut: what the engine took of it is already
    // on its way, and nothing after it may follow a hole. The peer is not
    // reading; keeping more would let it grow our memory without bound.
    bytes_written_ += offered - data.size();
    Destroy(MakeError(absl::StatusCode::kResourceExhausted, kErrBufferFull,
                      absl::StrCat("write of ", offered, " bytes refused: ", pending_bytes_,
                                   " bytes already wait for the peer to read (max_buffered_writes ",
                                   options_.max_buffered_writes, ")")));
    return false;
  }
  bytes_written_ += offered;
  if (!data.empty()) {
    pending_.emplace_back(data);
    pending_bytes_ += data.size();
  }
  if (conn_ != nullptr) conn_->Pump();
  bool below = conn_ != nullptr ? pending_.empty() : pending_bytes_ < options_.high_water_mark;
  if (!below) need_drain_ = true;
  return below;
}

void TlsSocket::End(absl::string_view data) {
  if (ending_ || closed_) return;
  if (!data.empty()) Write(data);
  ending_ = true;
  if (conn_ != nullptr && !conn_->closing() && pending_.empty()) {
    end_sent_ = true;
    conn_->engine()->End(loop_->Now(), /*wait_for_peer=*/!peer_ended_ && !conn_->transport_eof());
    conn_->Pump();
  }
}

void TlsSocket::Destroy(absl::Status error) {
  if (closed_ || closed_pending_) return;
  destroyed_ = true;
  pending_.clear();
  pending_bytes_ = 0;
  if (conn_ != nullptr) {
    conn_->Destroy(error);
    return;
  }
  if (connecting_fd_ >= 0) {
    loop_->Unwatch(connecting_fd_).IgnoreError();  // kNotFound: not watched
    ::close(connecting_fd_);
    connecting_fd_ = -1;
  }
  CloseBeforeEngine(error);
}

void TlsSocket::Pause() {
  paused_ = true;
  if (conn_ != nullptr) conn_->SetReading(false);
}

void TlsSocket::Resume() {
  if (!paused_) return;
  paused_ = false;
  std::weak_ptr<TlsSocket> weak = weak_from_this();
  loop_->Post([weak] {
    std::shared_ptr<TlsSocket> s = weak.lock();
    if (s == nullptr || s->paused_) return;
    while (!s->paused_data_.empty() && !s->paused_) {
      std::string piece = std::move(s->paused_data_.front());
      s->paused_data_.pop_front();
      if (s->handlers_.on_data) s->handlers_.on_data(piece);
    }
    if (s->paused_) return;
    if (s->peer_ended_ && !s->end_emitted_) {
      s->end_emitted_ = true;
      s->Emit(s->handlers_.on_end);
      if (!s->options_.allow_half_open && !s->closed_) s->End();
    }
    if (s->conn_ != nullptr && !s->closed_) s->conn_->SetReading(true);
  });
}

void TlsSocket::SetTimeout(absl::Duration timeout) {
  idle_timeout_ = timeout;
  idle_fired_ = false;
  last_activity_ = loop_->Now();
  if (idle_timer_ != kNoTimer) loop_->Cancel(idle_timer_);
  idle_timer_ = kNoTimer;
  if (timeout > absl::ZeroDuration() && !closed_) ArmIdle();
}

void TlsSocket::TouchIdle() {
  last_activity_ = loop_->Now();
  idle_fired_ = false;
  if (idle_timer_ == kNoTimer && idle_timeout_ > absl::ZeroDuration() && !closed_) ArmIdle();
}

void TlsSocket::ArmIdle() {
  // One timer per socket, moved lazily: activity only records the time,
  // and the timer re-arms itself when it finds the socket was busy.
  idle_timer_ = loop_->AddTimer(last_activity_ + idle_timeout_, [this] { OnIdleTimer(); });
}

void TlsSocket::OnIdleTimer() {
  idle_timer_ = kNoTimer;
  if (closed_ || idle_timeout_ <= absl::ZeroDuration()) return;
  if (loop_->Now() < last_activity_ + idle_timeout_) {
    ArmIdle();
    return;
  }
  if (idle_fired_) return;
  idle_fired_ = true;
  std::shared_ptr<TlsSocket> keep = shared_from_this();
  Emit(handlers_.on_timeout);
}

absl::Status TlsSocket::SetNoDelay(bool no_delay) {
  if (conn_ == nullptr || closed_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, "socket is not connected");
  }
  int v = no_delay ? 1 : 0;
  if (setsockopt(conn_->fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) != 0) {
    return fdio::SysError("setsockopt TCP_NODELAY", errno);
  }
  return absl::OkStatus();
}

absl::Status TlsSocket::SetKeepAlive(bool enable, absl::Duration initial_delay) {
  if (conn_ == nullptr || closed_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, "socket is not connected");
  }
  int v = enable ? 1 : 0;
  if (setsockopt(conn_->fd(), SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)) != 0) {
    return fdio::SysError("setsockopt SO_KEEPALIVE", errno);
  }
  int secs = static_cast<int>(absl::ToInt64Seconds(initial_delay));
  if (enable && secs > 0 && setsockopt(conn_->fd(), IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs)) != 0) {
    return fdio::SysError("setsockopt TCP_KEEPIDLE", errno);
  }
  return absl::OkStatus();
}

void TlsSocket::WriteKeylog(const std::string& line) {
  if (keylog_fd_ < 0) return;
  std::string out = line + "\n";
  // One write per line on an O_APPEND fd: lines never interleave.
  ssize_t n = ::write(keylog_fd_, out.data(), out.size());
  (void)n;  // a full disk loses key-log lines, never the connection
}

TlsConnection* TlsSocket::engine() { return conn_ != nullptr ? conn_->engine() : nullptr; }

void TlsSocket::Pump() {
  if (conn_ != nullptr && !closed_) conn_->Pump();
}

bool TlsSocket::authorized() const { return conn_ != nullptr && conn_->engine()->authorized(); }
std::string TlsSocket::authorization_error() const {
  return conn_ != nullptr ? conn_->engine()->authorization_error() : "";
}
const TlsConnection* TlsSocket::session_engine() const {
  return conn_ != nullptr && !destroyed_ ? conn_->engine() : nullptr;
}
std::optional<CertificateInfo> TlsSocket::GetPeerCertificate(bool detailed) const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->GetPeerCertificate(detailed) : std::nullopt;
}
std::optional<CertificateInfo> TlsSocket::GetCertificate() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->GetCertificate() : std::nullopt;
}
std::optional<CipherInfo> TlsSocket::GetCipher() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->GetCipher() : std::nullopt;
}
std::string TlsSocket::protocol() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->protocol() : "";
}
std::string TlsSocket::alpn_protocol() const {
  return conn_ != nullptr ? conn_->engine()->alpn_protocol() : "";
}
std::string TlsSocket::npn_protocol() const {
  return conn_ != nullptr ? conn_->engine()->npn_protocol() : "";
}
std::string TlsSocket::servername() const {
  return conn_ != nullptr ? conn_->engine()->servername() : "";
}
std::string TlsSocket::GetSession() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->GetSession() : "";
}
std::string TlsSocket::GetTlsTicket() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr ? engine->GetTlsTicket() : "";
}
bool TlsSocket::is_session_reused() const {
  const TlsConnection* engine = session_engine();
  return engine != nullptr && engine->is_session_reused();
}

absl::Status TlsSocket::Renegotiate(const RenegotiateOptions& options,
                                    std::function<void(const absl::Status&)> done) {
  if (conn_ == nullptr || conn_->closing()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ERR_TLS_RENEGOTIATE",
                     "Attempt to renegotiate TLS session failed");
  }
  absl::Status started = conn_->engine()->Renegotiate(options);
  if (!started.ok()) return started;
  reneg_done_ = std::move(done);
  conn_->Pump();
  return absl::OkStatus();
}

absl::Status TlsSocket::KeyUpdate(bool request_peer) {
  if (conn_ == nullptr || conn_->closing()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, "socket is not open");
  }
  absl::Status s = conn_->engine()->KeyUpdate(request_peer);
  if (s.ok()) conn_->Pump();
  return s;
}

bool TlsSocket::SetMaxSendFragment(size_t size) {
  return conn_ != nullptr && !destroyed_ && conn_->engine()->SetMaxSendFragment(size);
}

absl::StatusOr<std::string> TlsSocket::ExportKeyingMaterial(size_t length, absl::string_view label,
                                                            std::optional<absl::string_view> context) const {
  const TlsConnection* engine = session_engine();
  if (engine == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     destroyed_ ? "socket is destroyed" : "socket is not connected");
  }
  return engine->ExportKeyingMaterial(length, label, context);
}

uint64_t TlsSocket::raw_bytes_read() const {
  return conn_ != nullptr ? conn_->raw_bytes_read() : final_raw_read_;
}
uint64_t TlsSocket::raw_bytes_written() const {
  return conn_ != nullptr ? conn_->raw_bytes_written() : final_raw_written_;
}

ReadyState TlsSocket::ready_state() const {
  if (closed_) return ReadyState::kClosed;
  if (conn_ == nullptr) return ReadyState::kOpening;
  bool readable = !peer_ended_;
  bool writable = !ending_;
  if (readable && writable) return ReadyState::kOpen;
  if (readable) return ReadyState::kReadOnly;
  if (writable) return ReadyState::kWriteOnly;
  return ReadyState::kClosed;
}

namespace {
absl::Status Closed() {
  return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState, "socket is closed");
}
}  // namespace

absl::Status TlsSocket::AnswerSni(absl::StatusOr<std::shared_ptr<const SecureContext>> context) {
  if (conn_ == nullptr || conn_->closing()) return Closed();
  absl::Status s = conn_->engine()->AnswerSni(std::move(context));
  conn_->Pump();
  return s;
}
absl::Status TlsSocket::AnswerResumeSession(absl::StatusOr<std::string> session) {
  if (conn_ == nullptr || conn_->closing()) return Closed();
  absl::Status s = conn_->engine()->AnswerResumeSession(std::move(session));
  conn_->Pump();
  return s;
}
absl::Status TlsSocket::AckNewSession(absl::Status stored) {
  if (conn_ == nullptr || conn_->closing()) return Closed();
  absl::Status s = conn_->engine()->AckNewSession(std::move(stored));
  conn_->Pump();
  return s;
}
absl::Status TlsSocket::AnswerOcspRequest(absl::StatusOr<std::string> response) {
  if (conn_ == nullptr || conn_->closing()) return Closed();
  absl::Status s = conn_->engine()->AnswerOcspRequest(std::move(response));
  conn_->Pump();
  return s;
}

}  // namespace epoll
}  // namespace tlsengine
