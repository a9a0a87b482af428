// tlsctl connect: one epoll::TlsSocket (tls.connect) on a Loop: connect,
// handshake, optional renegotiation / key update, send, end, print.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"
#include "examples/tlsctl/commands.h"
#include "examples/tlsctl/options.h"
#include "examples/tlsctl/output.h"

namespace tlsengine {
namespace tlsctl {
namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(10);

absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write '", tmp, "': ", std::strerror(errno)));
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

class Client {
 public:
  Client(const ConnectFlags& flags, ClientSetup setup, epoll::Loop* loop)
      : flags_(flags), setup_(std::move(setup)), loop_(loop) {}

  // Starts connecting; the loop does the rest.
  void Start() {
    epoll::TlsSocketOptions o;
    o.tls = setup_.connection;
    o.host = flags_.host;
    o.port = flags_.port;
    o.path = flags_.unix_path.empty() ? "" : ResolvePath(flags_.unix_path);
    o.keylog_file = setup_.keylog_path;  // already $SSLKEYLOGFILE when --keylog is absent
    o.honour_sslkeylogfile = false;
    std::string where = o.path.empty() ? absl::StrCat(o.host, ":", o.port) : o.path;
    absl::StatusOr<std::shared_ptr<epoll::TlsSocket>> socket = epoll::TlsSocket::Connect(loop_, std::move(o));
    if (!socket.ok()) {
      failed_ = true;
      Emit(ErrorReport("error", socket.status()));
      loop_->Stop();
      return;
    }
    socket_ = *std::move(socket);
    Note(absl::StrCat("connecting to ", where, "..."));
    connect_timer_ = loop_->AddTimer(loop_->Now() + kConnectTimeout, [this, where] {
      connect_timer_ = epoll::kNoTimer;
      socket_->Destroy(
          MakeError(absl::StatusCode::kDeadlineExceeded, "ETIMEDOUT", absl::StrCat("connect ETIMEDOUT ", where)));
    });
    epoll::SocketHandlers& h = socket_->handlers();
    h.on_connect = [this] { CancelConnectTimer(); };
    h.on_secure_connect = [this] { OnSecure(); };
    h.on_data = [](absl::string_view data) {
      JsonObject o;
      o.Add("event", "data");
      if (IsValidUtf8(data)) {
        o.Add("data", data);
      } else {
        o.Add("data", Base64(data)).Add("encoding", "base64");
      }
      Emit(o);
    };
    h.on_session = [](const std::string& session) {
      JsonObject o;
      o.Add("event", "session").Add("session", Base64(session));
      Emit(o);
    };
    h.on_ocsp_response = [](const std::string& response) {
      JsonObject o;
      o.Add("event", "OCSPResponse");
      o.AddOrNull("response", response.empty() ? "" : Base64(response));
      Emit(o);
    };
    h.on_renegotiated = [this] {
      JsonObject o;
      o.Add("event", "renegotiated").Add("protocol", socket_->protocol());
      Emit(o);
    };
    // The socket ends our side after 'end' itself (allow_half_open is false).
    h.on_end = [this] {
      JsonObject o;
      o.Add("event", "end").Add("truncated", socket_->truncated());
      Emit(o);
      // As OpenSSL 3 and Python do: the stream may have been cut short.
      if (socket_->truncated() && !flags_.allow_truncation) {
        failed_ = true;
        Emit(ErrorReport("error", MakeError(absl::StatusCode::kUnavailable, kErrConnReset,
                                            "the server closed the connection without close_notify (truncated; "
                                            "--allow-truncation accepts that)")));
      }
    };
    h.on_error = [this](const absl::Status& s) {
      failed_ = true;
      Emit(ErrorReport("error", s));
    };
    h.on_close = [this](bool had_error) { OnClose(had_error); };
  }

  int exit_code() const { return failed_ ? 1 : 0; }

 private:
  void CancelConnectTimer() {
    if (connect_timer_ != epoll::kNoTimer) loop_->Cancel(connect_timer_);
    connect_timer_ = epoll::kNoTimer;
  }

  void OnSecure() {
    Emit(SecureReportOf("secureConnect", *socket_, 1));
    if (flags_.max_send_fragment > 0) socket_->SetMaxSendFragment(static_cast<size_t>(flags_.max_send_fragment));
    if (flags_.key_update) {
      absl::Status s = socket_->KeyUpdate(/*request_peer=*/true);
      if (!s.ok()) return ReportAndEnd(s);
      JsonObject o;
      o.Add("event", "keyUpdate").Add("requestPeer", true);
      Emit(o);
    }
    if (flags_.renegotiate) {
      // on_renegotiated prints; a failure arrives as on_error.
      absl::Status s = socket_->Renegotiate(RenegotiateOptions{}, [this](const absl::Status& done) {
        if (done.ok()) StartSending();
      });
      if (!s.ok()) ReportAndEnd(s);
      return;
    }
    StartSending();
  }

  // After the handshake (and a renegotiation, when asked): send, then end.
  void StartSending() {
    if (flags_.send) {
      socket_->End(*flags_.send);
    } else if (flags_.read_stdin) {
      absl::Status s = loop_->Watch(0, epoll::Interest{true, false}, [this](epoll::Ready) { ReadStdin(); });
      if (s.ok()) {
        watching_stdin_ = true;
      } else {
        ReportAndEnd(s);
      }
    } else {
      socket_->End();
    }
  }

  void ReadStdin() {
    char buf[16384];
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      StopStdin();
      socket_->End();
      return;
    }
    // The socket queues what the engine cannot take yet.
    socket_->Write(absl::string_view(buf, static_cast<size_t>(n)));
  }

  void StopStdin() {
    if (watching_stdin_) loop_->Unwatch(0).IgnoreError();
    watching_stdin_ = false;
  }

  void ReportAndEnd(const absl::Status& s) {
    failed_ = true;
    Emit(ErrorReport("error", s));
    socket_->End();
  }

  void OnClose(bool had_error) {
    CancelConnectTimer();
    StopStdin();
    if (!setup_.session_out_path.empty()) {
      std::string session = socket_->GetSession();
      if (session.empty()) {
        Note("--session-out: the server gave no session to save");
      } else if (absl::Status s = WriteFileAtomically(setup_.session_out_path, session); !s.ok()) {
        failed_ = true;
        Emit(ErrorReport("error", s));
      }
    }
    JsonObject o;
    o.Add("event", "close")
        .Add("hadError", had_error || failed_)
        .Add("bytesRead", socket_->raw_bytes_read())
        .Add("bytesWritten", socket_->raw_bytes_written());
    Emit(o);
    loop_->Stop();
  }

  const ConnectFlags& flags_;
  ClientSetup setup_;
  epoll::Loop* loop_;
  epoll::TimerId connect_timer_ = epoll::kNoTimer;
  std::shared_ptr<epoll::TlsSocket> socket_;
  bool watching_stdin_ = false;
  bool failed_ = false;
};

}  // namespace

int RunConnect(const ConnectFlags& flags) {
  absl::StatusOr<ClientSetup> setup = BuildClient(flags);
  if (!setup.ok()) {
    Note(setup.status().message());
    return 2;
  }
  // An unwritable --session-out or --keylog is a bad flag, found before connecting.
  absl::Status writable = absl::OkStatus();
  if (!setup->session_out_path.empty()) {
    writable = CheckWritable("session-out", setup->session_out_path, flags.session_out, "write");
  }
  if (writable.ok() && !setup->keylog_path.empty()) {
    writable = CheckWritable("keylog", setup->keylog_path, setup->keylog_path, "open");
  }
  if (!writable.ok()) {
    Note(writable.message());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) {
    Emit(ErrorReport("error", loop.status()));
    return 1;
  }
  {
    Client client(flags, *std::move(setup), loop->get());
    client.Start();
    absl::Status s = (*loop)->Run();
    if (!s.ok()) {
      Emit(ErrorReport("error", s));
      return 1;
    }
    return client.exit_code();
  }
}

}  // namespace tlsctl
}  // namespace tlsengine
