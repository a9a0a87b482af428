#include "examples/tlsctl/link.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "examples/tlsctl/net.h"

namespace tlsengine {
namespace tlsctl {
namespace {

// Queued plaintext above which the link stops taking events (and so input)
// from the engine: an echo peer that never reads cannot grow it unbounded.
constexpr size_t kHighWater = 256 * 1024;
// How long the engine's last output (close_notify or the alert) may take to
// leave, and how long and how much we read and discard after shutdown(SHUT_WR).
constexpr absl::Duration kFlushBound = absl::Seconds(2);
constexpr absl::Duration kLingerBound = absl::Seconds(1);
constexpr uint64_t kLingerBytes = 256 * 1024;

}  // namespace

Link::Link(epoll::Loop* loop, int fd, Handlers handlers)
    : loop_(loop), fd_(fd), handlers_(std::move(handlers)) {}

Link::~Link() {
  if (fd_ >= 0) {
    loop_->Unwatch(fd_).IgnoreError();
    close(fd_);
  }
}

absl::StatusOr<std::shared_ptr<Link>> Link::Start(epoll::Loop* loop, int fd, ConnectionOptions options,
                                                   Handlers handlers) {
  std::shared_ptr<Link> link(new Link(loop, fd, std::move(handlers)));
  absl::StatusOr<std::unique_ptr<TlsConnection>> tls = TlsConnection::Create(std::move(options), loop->Now());
  if (!tls.ok()) return tls.status();  // ~Link closes fd
  link->tls_ = *std::move(tls);
  link->peer_ = PeerAddressOf(fd);
  std::weak_ptr<Link> weak = link;
  absl::Status s = loop->Watch(fd, epoll::Interest{true, false}, [weak](epoll::Ready r) {
    if (std::shared_ptr<Link> l = weak.lock()) l->OnReady(r);
  });
  if (!s.ok()) return s;
  s = loop->AddClosable(link.get());
  if (!s.ok()) return s;
  link->self_ = link;
  link->Pump();
  return link;
}

void Link::Write(absl::string_view data) {
  if (finished_ || engine_done_) return;
  pending_.append(data.data(), data.size());
  Pump();
}

void Link::End(bool wait_for_peer) {
  if (end_requested_) return;
  end_requested_ = true;
  end_wait_ = wait_for_peer;
  Pump();
}

void Link::Abandon() {
  if (engine_done_ || finished_) return;
  engine_done_ = true;
  linger_until_ = loop_->Now() + kFlushBound;
  Pump();
}

void Link::Feed() {
  while (!pending_.empty()) {
    absl::StatusOr<size_t> n = tls_->Write(pending_);
    if (!n.ok()) {
      pending_.clear();  // the engine has failed or ended; its event says why
      break;
    }
    if (*n == 0) break;
    pending_.erase(0, *n);
  }
  if (end_requested_ && pending_.empty() && !tls_->finished()) tls_->End(loop_->Now(), end_wait_);
}

bool Link::Flush() {
  bool sent = false;
  for (;;) {
    absl::InlinedVector<absl::Span<const uint8_t>, 2> spans = tls_->Output();
    if (spans.empty()) {
      blocked_ = false;
      return sent;
    }
    iovec iov[2];
    size_t n_iov = 0;
    for (const auto& s : spans) {
      if (n_iov == 2) break;
      iov[n_iov++] = {const_cast<uint8_t*>(s.data()), s.size()};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n_iov;
    ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      blocked_ = true;
      return sent;
    }
    if (n < 0) {
      Fail(ErrnoError("write", errno, ""));
      return false;
    }
    tls_->ConsumeOutput(static_cast<size_t>(n)).IgnoreError();  // n <= what Output() showed
    bytes_written_ += static_cast<uint64_t>(n);
    sent = true;
  }
}

void Link::Fail(const absl::Status& status) {
  if (!engine_done_) {
    engine_done_ = true;
    status_ = status;
    Event ev;
    ev.type = EventType::kError;
    ev.status = status;
    if (handlers_.on_event) handlers_.on_event(*this, ev);
  }
  tls_->Destroy();
  Finish();
}

void Link::Pump() {
  if (finished_ || in_pump_) return;  // a handler's call; the running pump continues
  std::shared_ptr<Link> keep = shared_from_this();
  in_pump_ = true;
  for (;;) {
    if (!engine_done_) {
      Feed();
      while (!engine_done_ && pending_.size() < kHighWater) {
        std::optional<Event> ev = tls_->NextEvent(loop_->Now());
        if (!ev) break;
        if (ev->type == EventType::kClosed || ev->type == EventType::kError) {
          engine_done_ = true;
          status_ = ev->type == EventType::kError ? ev->status : absl::OkStatus();
          linger_until_ = loop_->Now() + kFlushBound;
        }
        if (handlers_.on_event) handlers_.on_event(*this, *ev);
        if (finished_) break;
        if (!engine_done_) Feed();
      }
    }
    if (finished_) break;
    if (!Flush()) break;  // nothing more went out: the engine has nothing new
  }
  in_pump_ = false;
  if (finished_) return;
  if (engine_done_ && !lingering_ && !blocked_) {
    BeginLinger();
    return;
  }
  Arm();
}

void Link::BeginLinger() {
  lingering_ = true;
  shutdown(fd_, SHUT_WR);
  linger_until_ = loop_->Now() + kLingerBound;
  Arm();
}

void Link::Arm() {
  if (finished_) return;
  epoll::Interest want;
  absl::Time when;
  if (lingering_) {
    want.read = true;
    when = linger_until_;
  } else if (engine_done_) {
    want.write = true;
    when = linger_until_;
  } else {
    Interest i = tls_->interest();
    want.read = i.read && pending_.size() < kHighWater;
    want.write = blocked_;
    when = i.deadline;
  }
  loop_->Modify(fd_, want).IgnoreError();  // fails only when fd_ is not watched
  if (when == absl::InfiniteFuture()) {
    if (timer_ != epoll::kNoTimer) loop_->Cancel(timer_);
    timer_ = epoll::kNoTimer;
    return;
  }
  if (timer_ != epoll::kNoTimer && when == timer_when_) return;
  timer_when_ = when;
  if (timer_ != epoll::kNoTimer && loop_->Reschedule(timer_, when)) return;
  std::weak_ptr<Link> weak = weak_from_this();
  timer_ = loop_->AddTimer(when, [weak] {
    if (std::shared_ptr<Link> l = weak.lock()) l->OnTimer();
  });
}

void Link::OnTimer() {
  timer_ = epoll::kNoTimer;
  if (finished_) return;
  if (lingering_ || engine_done_) {
    Finish();
    return;
  }
  tls_->OnTimer(loop_->Now());
  Pump();
}

void Link::OnReady(epoll::Ready ready) {
  if (finished_) return;
  std::shared_ptr<Link> keep = shared_from_this();
  if (lingering_) {
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || (discarded_ += static_cast<uint64_t>(n)) > kLingerBytes) Finish();
    return;
  }
  if (ready.read && !engine_done_) {
    absl::Span<uint8_t> space = tls_->InputSpace();
    if (!space.empty()) {
      ssize_t n = recv(fd_, space.data(), space.size(), 0);
      if (n > 0) {
        bytes_read_ += static_cast<uint64_t>(n);
        tls_->CommitInput(static_cast<size_t>(n)).IgnoreError();  // an error surfaces as kError
      } else {
        int err = errno;
        tls_->CommitInput(0).IgnoreError();
        // A reset reads as the end of the stream: the engine tells a
        // truncation after the handshake from ECONNRESET before it.
        if (n == 0 || (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)) tls_->OnTransportEof();
      }
    }
  } else if ((ready.error || ready.hangup) && !ready.write) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(ErrnoError("read", err, ""));
      return;
    }
    if (!engine_done_) tls_->OnTransportEof();
  }
  Pump();
}

void Link::Finish() {
  if (finished_) return;
  finished_ = true;
  std::shared_ptr<Link> keep = std::move(self_);
  if (timer_ != epoll::kNoTimer) loop_->Cancel(timer_);
  timer_ = epoll::kNoTimer;
  loop_->Unwatch(fd_).IgnoreError();
  close(fd_);
  fd_ = -1;
  loop_->RemoveClosable(this);
  if (!tls_->finished()) tls_->Destroy();  // after Abandon() or a transport failure
  if (handlers_.on_close) handlers_.on_close(*this, status_);
}

void Link::CloseGracefully(absl::Time deadline) { End(false); }

void Link::ForceClose() {
  std::shared_ptr<Link> keep = shared_from_this();
  tls_->Destroy();
  Finish();
}

}  // namespace tlsctl
}  // namespace tlsengine
