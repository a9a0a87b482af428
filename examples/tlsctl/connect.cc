// tlsctl connect: one client connection on a Loop: TCP (or unix) connect,
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
#include "core/errors.h"
#include "examples/tlsctl/commands.h"
#include "examples/tlsctl/link.h"
#include "examples/tlsctl/net.h"
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

  absl::Status OpenKeylog() { return setup_.keylog_path.empty() ? absl::OkStatus() : keylog_.Open(setup_.keylog_path); }

  // Starts connecting; the loop does the rest.
  void Start() {
    absl::StatusOr<int> fd;
    if (!flags_.unix_path.empty()) {
      where_ = ResolvePath(flags_.unix_path);
      fd = StartConnectUnix(where_);
    } else {
      fd = StartConnectTcp(flags_.host, flags_.port, &where_);
    }
    if (!fd.ok()) return Fail(fd.status());
    fd_ = *fd;
    Note(absl::StrCat("connecting to ", where_, "..."));
    absl::Status s = loop_->Watch(fd_, epoll::Interest{false, true}, [this](epoll::Ready) { OnConnected(); });
    if (!s.ok()) return Fail(s);
    connect_timer_ = loop_->AddTimer(loop_->Now() + kConnectTimeout, [this] {
      connect_timer_ = epoll::kNoTimer;
      Fail(MakeError(absl::StatusCode::kDeadlineExceeded, "ETIMEDOUT", absl::StrCat("connect ETIMEDOUT ", where_)));
    });
  }

  int exit_code() const { return failed_ ? 1 : 0; }

 private:
  void Fail(const absl::Status& s) {
    failed_ = true;
    Emit(ErrorReport("error", s));
    if (fd_ >= 0) {
      loop_->Unwatch(fd_).IgnoreError();
      close(fd_);
      fd_ = -1;
    }
    if (connect_timer_ != epoll::kNoTimer) loop_->Cancel(connect_timer_);
    loop_->Stop();
  }

  void OnConnected() {
    absl::Status s = FinishConnect(fd_, where_);
    if (!s.ok()) return Fail(s);
    loop_->Cancel(connect_timer_);
    connect_timer_ = epoll::kNoTimer;
    loop_->Unwatch(fd_).IgnoreError();
    int fd = fd_;
    fd_ = -1;
    Link::Handlers h;
    h.on_event = [this](Link& link, const Event& ev) { OnEvent(link, ev); };
    h.on_close = [this](Link& link, const absl::Status& status) { OnClose(link, status); };
    absl::StatusOr<std::shared_ptr<Link>> link = Link::Start(loop_, fd, setup_.connection, std::move(h));
    if (!link.ok()) return Fail(link.status());
    link_ = *link;
  }

  // After the handshake (and a renegotiation, when asked): send, then end.
  void StartSending(Link& link) {
    if (flags_.send) {
      link.Write(*flags_.send);
      link.End(/*wait_for_peer=*/true);
    } else if (flags_.read_stdin) {
      absl::Status s = loop_->Watch(0, epoll::Interest{true, false}, [this](epoll::Ready) { ReadStdin(); });
      if (!s.ok()) {
        Emit(ErrorReport("error", s));
        failed_ = true;
        link.End(true);
      }
    } else {
      link.End(/*wait_for_peer=*/true);
    }
  }

  void ReadStdin() {
    char buf[16384];
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0 || link_ == nullptr) {
      loop_->Unwatch(0).IgnoreError();
      if (link_) link_->End(/*wait_for_peer=*/true);
      return;
    }
    link_->Write(absl::string_view(buf, static_cast<size_t>(n)));
  }

  void OnEvent(Link& link, const Event& ev) {
    TlsConnection& tls = link.tls();
    switch (ev.type) {
      case EventType::kSecure: {
        Emit(SecureReport("secureConnect", tls, link.peer(), 1));
        if (flags_.max_send_fragment > 0) tls.SetMaxSendFragment(static_cast<size_t>(flags_.max_send_fragment));
        if (flags_.key_update) {
          absl::Status s = tls.KeyUpdate(/*request_peer=*/true);
          if (!s.ok()) return ReportAndEnd(link, s);
          JsonObject o;
          o.Add("event", "keyUpdate").Add("requestPeer", true);
          Emit(o);
        }
        if (flags_.renegotiate) {
          absl::Status s = tls.Renegotiate(RenegotiateOptions{});
          if (!s.ok()) return ReportAndEnd(link, s);
          return;  // kRenegotiated starts sending
        }
        StartSending(link);
        break;
      }
      case EventType::kRenegotiated: {
        JsonObject o;
        o.Add("event", "renegotiated").Add("protocol", tls.protocol());
        Emit(o);
        if (flags_.renegotiate) StartSending(link);
        break;
      }
      case EventType::kData: {
        absl::string_view data(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
        JsonObject o;
        o.Add("event", "data");
        if (IsValidUtf8(data)) {
          o.Add("data", data);
        } else {
          o.Add("data", Base64(data)).Add("encoding", "base64");
        }
        Emit(o);
        break;
      }
      case EventType::kSession: {
        JsonObject o;
        o.Add("event", "session").Add("session", Base64(ev.session));
        Emit(o);
        break;
      }
      case EventType::kOcspResponse: {
        JsonObject o;
        o.Add("event", "OCSPResponse");
        o.AddOrNull("response", ev.ocsp_response.empty() ? "" : Base64(ev.ocsp_response));
        Emit(o);
        break;
      }
      case EventType::kKeylog:
        keylog_.Append(ev.line);
        break;
      case EventType::kPeerClosed:
      case EventType::kTruncated: {
        JsonObject o;
        o.Add("event", "end").Add("truncated", ev.type == EventType::kTruncated);
        Emit(o);
        if (ev.type == EventType::kTruncated) {
          link.Abandon();
        } else {
          link.End();
        }
        break;
      }
      case EventType::kError:
        failed_ = true;
        Emit(ErrorReport("error", ev.status));
        break;
      default:
        break;
    }
  }

  void ReportAndEnd(Link& link, const absl::Status& s) {
    failed_ = true;
    Emit(ErrorReport("error", s));
    link.End();
  }

  void OnClose(Link& link, const absl::Status& status) {
    if (!setup_.session_out_path.empty()) {
      std::string session = link.tls().GetSession();
      if (session.empty()) {
        Note("--session-out: the server gave no session to save");
      } else if (absl::Status s = WriteFileAtomically(setup_.session_out_path, session); !s.ok()) {
        failed_ = true;
        Emit(ErrorReport("error", s));
      }
    }
    JsonObject o;
    o.Add("event", "close")
        .Add("hadError", !status.ok() || failed_)
        .Add("bytesRead", link.bytes_read())
        .Add("bytesWritten", link.bytes_written());
    Emit(o);
    if (flags_.read_stdin) loop_->Unwatch(0).IgnoreError();
    link_.reset();
    loop_->Stop();
  }

  const ConnectFlags& flags_;
  ClientSetup setup_;
  epoll::Loop* loop_;
  KeylogFile keylog_;
  std::string where_;
  int fd_ = -1;
  epoll::TimerId connect_timer_ = epoll::kNoTimer;
  std::shared_ptr<Link> link_;
  bool failed_ = false;
};

}  // namespace

int RunConnect(const ConnectFlags& flags) {
  absl::StatusOr<ClientSetup> setup = BuildClient(flags);
  if (!setup.ok()) {
    Note(setup.status().message());
    return 2;
  }
  if (!setup->session_out_path.empty()) {
    // An unwritable --session-out is a bad flag, found before connecting.
    int fd = open(setup->session_out_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      Note(absl::StrCat("--session-out: cannot write '", flags.session_out, "': ", std::strerror(errno)));
      return 2;
    }
    close(fd);
  }
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) {
    Emit(ErrorReport("error", loop.status()));
    return 1;
  }
  {
    Client client(flags, *std::move(setup), loop->get());
    if (absl::Status s = client.OpenKeylog(); !s.ok()) {
      Note(s.message());
      return 2;
    }
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
