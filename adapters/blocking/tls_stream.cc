#include "adapters/blocking/tls_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/fd/resolve.h"
#include "adapters/fd/status_macros.h"
#include "adapters/fd/sys_status.h"
#include "core/default_answers.h"
#include "core/errors.h"

namespace tlsengine {
namespace blocking {
namespace {

constexpr absl::string_view kErrStreamDestroyed = "ERR_STREAM_DESTROYED";
constexpr absl::string_view kErrWriteAfterEnd = "ERR_STREAM_WRITE_AFTER_END";

absl::Status Timeout(absl::string_view what) {
  return MakeError(absl::StatusCode::kDeadlineExceeded, "ETIMEDOUT", absl::StrCat(what, " timed out"));
}

std::string AddressText(const sockaddr* sa) {
  char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
  return sa->sa_family == AF_INET6 ? absl::StrCat("[", host, "]:", serv) : absl::StrCat(host, ":", serv);
}

absl::StatusOr<std::vector<fdio::Address>> Resolve(const std::string& host, int port, bool passive) {
  fdio::ResolveOptions options;
  options.passive = passive;
  options.addrconfig = !passive;
  // getaddrinfo takes no deadline: the resolver's own timeouts apply (none
  // for literals and /etc/hosts names).
  return fdio::Resolve(host, port, options);
}

// Non-blocking connect to one address, waiting until `deadline`. Returns
// the connected fd.
absl::StatusOr<int> ConnectOne(const sockaddr* addr, socklen_t len, absl::Time deadline) {
  const std::string where = addr->sa_family == AF_UNIX ? reinterpret_cast<const sockaddr_un*>(addr)->sun_path
                                                      : AddressText(addr);
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fdio::SysError("socket", errno);
  if (connect(fd, addr, len) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return fdio::SysError(absl::StrCat("connect ", where), err);
  }
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    int ready = poll(&p, 1, fdio::MillisUntil(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      close(fd);
      return Timeout(absl::StrCat("connect ", where));
    }
    break;
  }
  int err = 0;
  socklen_t err_len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
  if (err != 0) {
    close(fd);
    return fdio::SysError(absl::StrCat("connect ", where), err);
  }
  return fd;
}

}  // namespace

// ---------------------------------------------------------------- TlsStream

TlsStream::TlsStream(int fd, StreamOptions options, std::unique_ptr<TlsConnection> conn)
    : fd_(fd), options_(std::move(options)), conn_(std::move(conn)), driver_(fd, conn_.get()) {}

TlsStream::~TlsStream() { Close(); }

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::Connect(const std::string& host, int port,
                                                              StreamOptions options, absl::Time deadline) {
  if (port <= 0 || port > 65535) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, absl::StrCat("bad port ", port));
  }
  absl::StatusOr<std::vector<fdio::Address>> addrs = Resolve(host, port, /*passive=*/false);
  if (!addrs.ok()) return addrs.status();
  // Every address in the resolver's order (RFC 6724); the first refusal
  // does not stop us, the deadline does.
  absl::Status last = MakeError(absl::StatusCode::kUnavailable, "ENOTFOUND", "no address for " + host);
  for (const fdio::Address& address : *addrs) {
    absl::StatusOr<int> fd = ConnectOne(address.addr(), address.len, deadline);
    if (!fd.ok()) {
      last = fd.status();
      if (absl::IsDeadlineExceeded(last)) break;
      continue;
    }
    if (options.host.empty()) options.host = host;
    absl::StatusOr<std::unique_ptr<TlsStream>> stream = Wrap(*fd, options);
    if (!stream.ok()) return stream.status();
    return HandshakeWithin(*std::move(stream), deadline);
  }
  return last;
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::ConnectUnix(const std::string& path, StreamOptions options,
                                                                  absl::Time deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "unix socket path too long: " + path);
  }
  memcpy(addr.sun_path, path.data(), path.size());
  absl::StatusOr<int> fd = ConnectOne(reinterpret_cast<sockaddr*>(&addr), sizeof(addr), deadline);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<std::unique_ptr<TlsStream>> stream = Wrap(*fd, std::move(options));
  if (!stream.ok()) return stream.status();
  return HandshakeWithin(*std::move(stream), deadline);
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::HandshakeWithin(std::unique_ptr<TlsStream> stream,
                                                                      absl::Time deadline) {
  absl::Status s = stream->Handshake(deadline);
  if (s.ok()) return stream;
  // The careful close would otherwise run in the destructor, up to twice
  // close_drain_time after the caller's deadline.
  stream->CloseWithin(deadline);
  return s;
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::Wrap(int fd, StreamOptions options,
                                                           absl::string_view already_read) {
  int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  if (flags < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, "EBADF", absl::StrCat("Wrap: bad file descriptor ", fd));
  }
  // The stream waits in poll(), never in recv or send, so deadlines hold.
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix sockets
  absl::StatusOr<std::unique_ptr<TlsConnection>> conn = TlsConnection::Create(options, absl::Now());
  if (!conn.ok()) {
    close(fd);
    return conn.status();
  }
  std::unique_ptr<TlsStream> stream(new TlsStream(fd, std::move(options), std::move(*conn)));
  stream->already_read_ = std::string(already_read);
  return stream;
}

absl::Status TlsStream::Fail(absl::Status status) {
  if (error_.ok()) error_ = status;
  return error_;
}

absl::Status TlsStream::Usable() const {
  if (closed_) return MakeError(absl::StatusCode::kFailedPrecondition, kErrStreamDestroyed, "the stream is closed");
  return error_;
}

void TlsStream::PollEvents() {
  while (std::optional<Event> ev = conn_->NextEvent(absl::Now())) HandleEvent(*ev);
}

void TlsStream::HandleEvent(const Event& ev) {
  absl::Status answered;
  switch (ev.type) {
    case EventType::kSecure:
      secure_ = true;
      break;
    case EventType::kData:
      if (discard_input_) break;
      if (readable_start_ > 0 && readable_start_ >= readable_.size() / 2) {
        readable_.erase(0, readable_start_);
        readable_start_ = 0;
      }
      readable_.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      break;
    case EventType::kPeerClosed:
      peer_closed_ = true;
      break;
    case EventType::kTruncated:
      truncated_ = true;
      break;
    case EventType::kClosed:
      engine_closed_ = true;
      break;
    case EventType::kError:
      Fail(ev.status).IgnoreError();
      break;
    // Suspensions: the application's hook, else the default answer.
    case EventType::kSniRequest:
      answered = options_.on_sni ? conn_->AnswerSni(options_.on_sni(ev.servername)) : AnswerByDefault(*conn_, ev);
      break;
    case EventType::kResumeSession:
      answered = options_.on_resume_session ? conn_->AnswerResumeSession(options_.on_resume_session(ev.session_id))
                                            : AnswerByDefault(*conn_, ev);
      break;
    case EventType::kNewSession:
      answered = options_.on_new_session ? conn_->AckNewSession(options_.on_new_session(ev.session_id, ev.session))
                                         : AnswerByDefault(*conn_, ev);
      break;
    case EventType::kOcspRequest:
      answered = options_.on_ocsp_request
                     ? conn_->AnswerOcspRequest(options_.on_ocsp_request(ev.certificate, ev.issuer))
                     : AnswerByDefault(*conn_, ev);
      break;
    case EventType::kSession:
      if (options_.on_session) options_.on_session(ev.session);
      break;
    case EventType::kOcspResponse:
      ocsp_response_ = ev.ocsp_response;
      break;
    case EventType::kKeylog:
      if (options_.on_keylog) options_.on_keylog(ev.line);
      break;
    case EventType::kRenegotiated:
      ++renegotiations_;
      break;
    case EventType::kHandshakeStart:
    case EventType::kDrain:
      break;
  }
  // An Answer* fails only when nothing waits for it, which would be a bug
  // here: surface it rather than hang.
  if (!answered.ok()) Fail(answered).IgnoreError();
}

absl::Status TlsStream::Flush() { return driver_.WriteOutput().error; }

void TlsStream::ReadSocket() {
  if (!already_read_.empty()) {
    absl::Span<uint8_t> space = conn_->InputSpace();
    if (space.empty()) return;  // backpressure: the engine's buffers are full
    size_t n = std::min(space.size(), already_read_.size());
    memcpy(space.data(), already_read_.data(), n);
    already_read_.erase(0, n);
    conn_->CommitInput(n).IgnoreError();  // a failure is the sticky error, polled next
    return;
  }
  fdio::ReadResult r = driver_.ReadInput();
  if (r.stop == fdio::ReadStop::kError) {
    transport_error_ = r.error;
    conn_->OnTransportEof();
  }
  if (r.stop == fdio::ReadStop::kError || r.stop == fdio::ReadStop::kEof) transport_eof_ = true;
}

absl::Status TlsStream::Drive(absl::Time deadline, const std::function<bool()>& done) {
  for (;;) {
    PollEvents();
    absl::Status sent = Flush();
    PollEvents();
    if (!error_.ok()) return error_;
    if (!sent.ok()) return Fail(sent);
    if (done()) return absl::OkStatus();
    PollEvents();  // done() may have written
    Interest want = conn_->interest();
    if (transport_eof_ && !want.write) {
      // Nothing more can arrive, and done() still waits for something.
      if (!transport_error_.ok()) return Fail(transport_error_);
      return MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                       peer_closed_ ? "the peer closed the connection" : "the connection ended");
    }
    if (absl::Now() >= deadline) {
      if (!secure_) {
        return Fail(MakeError(absl::StatusCode::kDeadlineExceeded, kErrHandshakeTimeout,
                              "TLS handshake did not finish before the deadline"));
      }
      return Timeout("TLS stream operation");
    }
    const bool can_read = want.read && !transport_eof_ && readable_size() < options_.max_read_buffer;
    if (can_read && !already_read_.empty()) {
      ReadSocket();  // Wrap()'s bytes come before the socket's
      continue;
    }
    pollfd p{fd_, static_cast<short>((can_read ? POLLIN : 0) | (want.write ? POLLOUT : 0)), 0};
    int ready = poll(&p, 1, fdio::MillisUntil(std::min(deadline, want.deadline)));
    if (ready < 0 && errno != EINTR) return Fail(fdio::SysError("poll", errno));
    if (absl::Now() >= conn_->NextDeadline()) conn_->OnTimer(absl::Now());
    if (can_read && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadSocket();
    if (!can_read && (p.revents & POLLERR) != 0) {
      absl::Status error = driver_.SocketError("socket");
      return Fail(!error.ok() ? error : fdio::SysError("socket", ECONNRESET));
    }
  }
}

absl::Status TlsStream::Handshake(absl::Time deadline) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  if (secure_) return absl::OkStatus();
  return Drive(deadline, [this] { return secure_; });
}

size_t TlsStream::TakeReadable(absl::Span<uint8_t> buf) {
  size_t n = std::min(buf.size(), readable_size());
  memcpy(buf.data(), readable_.data() + readable_start_, n);
  readable_start_ += n;
  if (readable_start_ == readable_.size()) {
    readable_.clear();
    readable_start_ = 0;
  }
  return n;
}

absl::StatusOr<size_t> TlsStream::Read(absl::Span<uint8_t> buf, absl::Time deadline) {
  if (closed_) return Usable();
  if (readable_size() > 0 && !buf.empty()) return TakeReadable(buf);  // what arrived before an error too
  ADAPTERS_RETURN_IF_ERROR(Usable());
  if (buf.empty()) return 0;
  absl::Status s = Drive(deadline, [this] { return readable_size() > 0 || peer_closed_ || truncated_; });
  if (readable_size() > 0) return TakeReadable(buf);
  if (!s.ok()) return s;
  if (peer_closed_) return 0;
  return MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                   "the peer closed the connection without close_notify (truncated)");
}

absl::StatusOr<size_t> TlsStream::Read(absl::Span<char> buf, absl::Time deadline) {
  return Read(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()), deadline);
}

absl::Status TlsStream::ReadFull(absl::Span<uint8_t> buf, absl::Time deadline) {
  size_t got = 0;
  while (got < buf.size()) {
    absl::StatusOr<size_t> n = Read(buf.subspan(got), deadline);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                       absl::StrCat("the stream ended after ", got, " of ", buf.size(), " bytes"));
    }
    got += *n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TlsStream::ReadUntil(absl::string_view delimiter, size_t max_size, absl::Time deadline) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  auto found = [&]() -> size_t {
    absl::string_view have(readable_.data() + readable_start_, readable_size());
    size_t at = delimiter.empty() ? absl::string_view::npos : have.find(delimiter);
    if (at != absl::string_view::npos) return at + delimiter.size();
    return have.size() >= max_size ? max_size : 0;
  };
  absl::Status s = Drive(deadline, [&] { return found() > 0 || peer_closed_ || truncated_; });
  size_t n = found();
  if (n == 0 && (peer_closed_ || truncated_)) n = readable_size();
  if (n == 0) {
    if (!s.ok()) return s;
    if (peer_closed_) return std::string();  // close_notify: end of stream
    return MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                     "the peer closed the connection without close_notify (truncated)");
  }
  std::string line(readable_.data() + readable_start_, std::min(n, readable_size()));
  readable_start_ += line.size();
  return line;
}

absl::Status TlsStream::Write(absl::Span<const uint8_t> data, absl::Time deadline) {
  return Write(absl::string_view(reinterpret_cast<const char*>(data.data()), data.size()), deadline);
}

absl::Status TlsStream::Write(absl::string_view data, absl::Time deadline) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  if (ended_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrWriteAfterEnd, "write after Shutdown()");
  }
  size_t offset = 0;
  absl::Status write_error;
  absl::Status s = Drive(deadline, [&] {
    while (offset < data.size()) {
      absl::StatusOr<size_t> n = conn_->Write(data.substr(offset));
      if (!n.ok()) {
        write_error = n.status();
        return true;
      }
      if (*n == 0) break;  // the write buffer is full: send, then try again
      offset += *n;
    }
    // All taken, and encrypted and handed to the kernel (or held by the
    // engine while a renegotiation runs).
    return offset == data.size() && !conn_->interest().write && conn_->OutputSize() == 0;
  });
  if (!write_error.ok()) return Fail(write_error);
  if (absl::IsDeadlineExceeded(s)) return Fail(s);  // part of it may have gone out
  return s;
}

absl::Status TlsStream::Shutdown(absl::Time deadline, bool wait_for_peer) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  if (!ended_) {
    ended_ = true;
    conn_->End(absl::Now(), wait_for_peer);
  }
  discard_input_ = wait_for_peer;
  absl::Status s = Drive(deadline, [this] {
    return engine_closed_ && conn_->OutputSize() == 0 && !conn_->interest().write;
  });
  discard_input_ = false;
  return s;
}

absl::Status TlsStream::Renegotiate(const RenegotiateOptions& options, absl::Time deadline) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  ADAPTERS_RETURN_IF_ERROR(conn_->Renegotiate(options));
  const uint64_t before = renegotiations_;
  return Drive(deadline, [&] { return renegotiations_ > before; });
}

absl::Status TlsStream::KeyUpdate(bool request_peer, absl::Time deadline) {
  ADAPTERS_RETURN_IF_ERROR(Usable());
  ADAPTERS_RETURN_IF_ERROR(conn_->KeyUpdate(request_peer));
  return Drive(deadline, [this] { return conn_->OutputSize() == 0 && !conn_->interest().write; });
}

void TlsStream::Close() { CloseWithin(absl::InfiniteFuture()); }

void TlsStream::CloseWithin(absl::Time limit) {
  if (closed_) return;
  closed_ = true;
  if (fd_ < 0) return;
  // 1. Send close_notify (when the stream is healthy) and whatever the
  //    engine still holds: after a failure that is the alert telling the
  //    peer why.
  if (error_.ok() && secure_ && !ended_) {
    ended_ = true;
    conn_->End(absl::Now());
  }
  // 2. Shut down writing, then read and discard briefly: closing with
  //    unread input makes the kernel send a reset, which can overtake the
  //    alert just sent. Every wait ends at `limit`.
  fdio::CloseLimits limits;
  limits.flush_time = options_.close_drain_time;
  limits.linger_time = options_.close_drain_time;
  limits.linger_bytes = options_.close_drain_bytes;
  limits.limit = limit;
  driver_.CloseBlocking(limits, [this] { PollEvents(); });
  // 3. Close.
  close(fd_);
  fd_ = -1;
}

// -------------------------------------------------------------- TlsListener

TlsListener::TlsListener(int fd, int port, std::string unix_path, StreamOptions options)
    : fd_(fd), port_(port), unix_path_(std::move(unix_path)), options_(std::move(options)) {
  options_.is_server = true;
}

TlsListener::~TlsListener() {
  close(fd_);
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

absl::StatusOr<std::unique_ptr<TlsListener>> TlsListener::Listen(const std::string& host, int port,
                                                                 StreamOptions options, int backlog) {
  if (port < 0 || port > 65535) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, absl::StrCat("bad port ", port));
  }
  absl::StatusOr<std::vector<fdio::Address>> addrs = Resolve(host, port, /*passive=*/true);
  if (!addrs.ok()) return addrs.status();
  absl::Status last = MakeError(absl::StatusCode::kUnavailable, "ENOTFOUND", "no address for " + host);
  for (const fdio::Address& address : *addrs) {
    int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = fdio::SysError("socket", errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, address.addr(), address.len) != 0 || listen(fd, backlog) != 0) {
      const int err = errno;  // before AddressText's getnameinfo
      last = fdio::SysError(absl::StrCat("listen ", AddressText(address.addr())), err);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    int bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                 : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return std::unique_ptr<TlsListener>(new TlsListener(fd, bound_port, "", std::move(options)));
  }
  return last;
}

absl::StatusOr<std::unique_ptr<TlsListener>> TlsListener::ListenUnix(const std::string& path,
                                                                     StreamOptions options, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "bad unix socket path: " + path);
  }
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fdio::SysError("socket", errno);
  unlink(path.c_str());  // a stale socket file from an earlier run
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, backlog) != 0) {
    absl::Status s = fdio::SysError("listen " + path, errno);
    close(fd);
    return s;
  }
  return std::unique_ptr<TlsListener>(new TlsListener(fd, 0, path, std::move(options)));
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsListener::Accept(absl::Time deadline) {
  for (;;) {
    if (shut_down_.load()) {
      return MakeError(absl::StatusCode::kUnavailable, "ECONNABORTED", "the listener was shut down");
    }
    // Short slices so that Shutdown() from another thread is seen soon.
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, std::min(fdio::MillisUntil(deadline), 100));
    if (ready < 0 && errno != EINTR) return fdio::SysError("poll", errno);
    if (ready > 0 && !shut_down_.load()) {
      int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return TlsStream::Wrap(fd, options_);
      // EAGAIN: another thread took it; ECONNABORTED: the client gave up.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR &&
          errno != EINVAL) {
        return fdio::SysError("accept", errno);
      }
    }
    if (absl::Now() >= deadline) return Timeout("accept");
  }
}

void TlsListener::Shutdown() {
  shut_down_.store(true);
  ::shutdown(fd_, SHUT_RDWR);  // wakes threads waiting in poll() on Linux
}

}  // namespace blocking
}  // namespace tlsengine
