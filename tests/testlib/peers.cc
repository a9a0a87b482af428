#include "tests/testlib/peers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/fd/fd_driver.h"

namespace tlsengine {
namespace testing {

Subprocess::~Subprocess() {
  Kill();
  for (int fd : {in_, out_fd_, err_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status Subprocess::Start(const std::vector<std::string>& argv, const std::string& dir) {
  int in[2], out[2], err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) return absl::InternalError("pipe failed");
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    if (!dir.empty() && chdir(dir.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  signal(SIGPIPE, SIG_IGN);
  return absl::OkStatus();
}

absl::Status Subprocess::WriteStdin(const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(in_, data.data() + done, data.size() - done);
    if (n <= 0) return absl::UnavailableError("stdin closed");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void Subprocess::CloseStdin() {
  if (in_ >= 0) close(in_);
  in_ = -1;
}

void Subprocess::ReadAvailable(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, timeout_ms) <= 0) return;
  char buf[4096];
  for (int i = 0; i < 2; ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
    ssize_t n = read(fds[i].fd, buf, sizeof(buf));
    if (n > 0) {
      (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
    } else {
      close(fds[i].fd);
      (i == 0 ? out_fd_ : err_fd_) = -1;
    }
  }
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (auto [text, start] : {std::pair{&out_, &line_start_}, std::pair{&err_, &err_line_start_}}) {
      size_t nl;
      while ((nl = text->find('\n', *start)) != std::string::npos) {
        std::string line = text->substr(*start, nl - *start);
        *start = nl + 1;
        if (line.find(needle) != std::string::npos) return line;
      }
    }
    if (out_fd_ < 0 && err_fd_ < 0) break;
    ReadAvailable(50);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no line with '", needle, "'; stdout: ", out_, " stderr: ", err_));
}

int Subprocess::Wait(absl::Duration timeout) {
  if (pid_ < 0) return -1;
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    ReadAvailable(20);
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
  }
  pid_ = -1;
  // What the child left in the pipes (up to 64 KB each): read to EOF, or
  // until nothing comes for 100 ms (a grandchild may hold a pipe open).
  while (out_fd_ >= 0 || err_fd_ >= 0) {
    size_t before = out_.size() + err_.size();
    int fds_before = out_fd_ + err_fd_;
    ReadAvailable(100);
    if (out_.size() + err_.size() == before && out_fd_ + err_fd_ == fds_before) break;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Subprocess::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

Listener::Listener() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 16) != 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  port_ = ntohs(addr.sin_port);
}

Listener::~Listener() { close(fd_); }

int Listener::Accept(absl::Duration timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return -1;
  return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

absl::Status RunOverSocket(TlsConnection& conn, int fd,
                           const std::function<void(TlsConnection&, const Event&)>& on_event,
                           absl::Duration timeout, const std::function<bool()>& done,
                           const std::function<void(absl::Span<const uint8_t>)>& on_input) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const absl::Time deadline = absl::Now() + timeout;
  fdio::FdDriver driver(fd, &conn);  // the adapters' own fd driver
  bool read_eof = false;
  absl::Status result = absl::DeadlineExceededError("peer did not finish in time");
  // The engine contract's loop (core/tls_connection.h): poll events, send,
  // then arm poll() from interest().
  while (absl::Now() < deadline) {
    while (std::optional<Event> ev = conn.NextEvent(absl::Now())) on_event(conn, *ev);
    // A peer that is gone shows up as EOF on the read side.
    driver.WriteOutput().error.IgnoreError();
    if (conn.finished() || (done && done())) {
      result = conn.status();
      break;
    }
    Interest want = conn.interest();
    if (read_eof && !want.write && !conn.NextEvent(absl::Now())) {
      // Nothing more can happen once the peer's side is gone and events are drained.
      result = conn.status();
      break;
    }
    const absl::Time wake = std::min({absl::Now() + absl::Milliseconds(50), want.deadline, deadline});
    short revents = fdio::WaitFd(fd, want.read && !read_eof, want.write, wake);
    if (absl::Now() >= want.deadline) conn.OnTimer(absl::Now());
    if (!read_eof && (revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      fdio::ReadResult r = driver.ReadInput(fdio::kDefaultReadBudget, on_input);
      if (r.stop == fdio::ReadStop::kError) conn.OnTransportEof();
      read_eof = r.stop == fdio::ReadStop::kEof || r.stop == fdio::ReadStop::kError;
    }
  }
  // Careful close (DESIGN.md): send what is left, shut down writes, drain
  // the peer briefly, then close.
  fdio::CloseLimits limits;
  limits.flush_time = absl::Milliseconds(200);
  limits.linger_time = absl::Milliseconds(200);
  driver.CloseBlocking(limits);
  close(fd);
  return result;
}

absl::Status ServeOne(Listener& listener, const ConnectionOptions& options,
                      const std::function<void(TlsConnection&, const Event&)>& on_event,
                      const std::function<void(TlsConnection&)>& inspect, absl::Duration timeout) {
  int fd = listener.Accept(timeout);
  if (fd < 0) return absl::DeadlineExceededError("no client connected");
  absl::StatusOr<std::unique_ptr<TlsConnection>> conn = TlsConnection::Create(options, absl::Now());
  if (!conn.ok()) {
    close(fd);
    return conn.status();
  }
  absl::Status status = RunOverSocket(**conn, fd, on_event, timeout);
  if (inspect) inspect(**conn);
  return status;
}

absl::Status ServeRequest(Listener& listener, const ConnectionOptions& options, absl::string_view terminator,
                          const std::function<std::string(const std::string& received)>& reply,
                          const std::function<void(TlsConnection&, const Event&)>& extra,
                          const std::function<void(TlsConnection&)>& inspect, absl::Duration timeout,
                          std::string* received) {
  std::string got;
  bool replied = false;
  absl::Status write_status;
  absl::Status status = ServeOne(
      listener, options,
      [&](TlsConnection& c, const Event& ev) {
        if (extra) extra(c, ev);
        if (ev.type != EventType::kData || replied) return;
        got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
        if (!absl::StrContains(got, terminator)) return;
        replied = true;
        std::string answer = reply(got);
        absl::StatusOr<size_t> written = c.Write(answer);
        if (!written.ok()) {
          write_status = written.status();
        } else if (*written != answer.size()) {
          write_status = absl::InternalError("the reply did not fit the write buffer");
        }
        c.End(absl::Now());
      },
      inspect, timeout);
  if (received != nullptr) *received = got;
  return status.ok() ? write_status : status;
}

absl::StatusOr<int> StartNodeTlsServer(Subprocess& server, const std::string& on_data, absl::Duration timeout) {
  absl::Status started = server.Start(
      {"node", "-e",
       "const tls = require('tls'), fs = require('fs');\n"
       "const srv = tls.createServer({key: fs.readFileSync(process.argv[1]),\n"
       "  cert: fs.readFileSync(process.argv[2])}, s => {\n"
       "  s.on('data', d => " + on_data + ");\n"
       "});\n"
       "srv.listen(0, '127.0.0.1', () => console.log('PORT', srv.address().port));\n",
       TestFilePath("server-ecdsa-key.pem"), TestFilePath("server-ecdsa-chain.pem")});
  if (!started.ok()) return started;
  absl::StatusOr<std::string> line = server.WaitForLine("PORT", timeout);
  if (!line.ok()) return line.status();
  return std::stoi(line->substr(5));
}

std::string TestFilePath(const std::string& name) {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return "tests/certs/" + name;
  return absl::StrCat(cwd, "/tests/certs/", name);
}

}  // namespace testing
}  // namespace tlsengine
