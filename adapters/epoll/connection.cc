#include "adapters/epoll/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <utility>

#include "adapters/epoll/sys_status.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

// One writev carries at most this many spans (the engine offers one or two).
constexpr size_t kMaxIov = 8;
// Writes per Flush before yielding to other connections on the loop.
constexpr int kMaxWritesPerFlush = 16;
// Bytes a connection may move (written and read) in one loop iteration
// before it yields to the others, as nginx and h2o bound the work per
// wake: a connection that always has more to send (a producer refilling on
// every 'drain', or writing in a loop, to a fast reader) would otherwise
// never hit EAGAIN and keep the loop to itself. 16 full records.
constexpr uint64_t kMaxBytesPerIteration = 256 * 1024;
// The discard buffer of the careful close lives on the stack.
constexpr size_t kDiscardChunk = 4096;

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Create(Loop* loop, int fd,
                                                               std::unique_ptr<TlsConnection> engine,
                                                               ConnectionHandler* handler,
                                                               std::weak_ptr<void> owner,
                                                               DriverOptions options) {
  if (fd < 0) return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "fd < 0");
  auto fail = [fd](absl::string_view what) {
    ::close(fd);
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, what);
  };
  if (loop == nullptr) return fail("loop is null");
  if (engine == nullptr) return fail("engine is null");
  if (handler == nullptr) return fail("handler is null");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    ::close(fd);
    return internal::SysError("fcntl", err, absl::StatusCode::kInvalidArgument);
  }
  return std::unique_ptr<Connection>(
      new Connection(loop, fd, std::move(engine), handler, std::move(owner), options));
}

Connection::Connection(Loop* loop, int fd, std::unique_ptr<TlsConnection> engine,
                       ConnectionHandler* handler, std::weak_ptr<void> owner, DriverOptions options)
    : loop_(loop),
      fd_(fd),
      engine_(std::move(engine)),
      handler_(handler),
      owner_(std::move(owner)),
      options_(options) {}

Connection::~Connection() {
  if (timer_ != kNoTimer) loop_->Cancel(timer_);
  if (fd_ >= 0) {
    if (watched_) loop_->Unwatch(fd_).IgnoreError();  // kNotFound only: nothing to undo
    ::close(fd_);
  }
}

absl::Status Connection::Start() {
  armed_ = Interest{reading_, false};
  absl::Status watch = loop_->Watch(fd_, armed_, [this](Ready ready) { OnReady(ready); });
  if (!watch.ok()) return watch;
  watched_ = true;
  Pump();
  return absl::OkStatus();
}

void Connection::Pump() {
  if (in_run_) {
    run_again_ = true;
    return;
  }
  Run();
}

void Connection::SetReading(bool reading) {
  reading_ = reading;
  if (phase_ == Phase::kOpen) Pump();
}

void Connection::Run() {
  std::shared_ptr<void> hold = owner_.lock();
  if (hold == nullptr || phase_ != Phase::kOpen) return;
  // The budget counts what this connection moved in the loop's current
  // iteration, whoever called (a readiness, a timer, a Write from any
  // callback), so that neither one long Run nor many short ones exceed it.
  if (loop_->iterations() != budget_iteration_) {
    budget_iteration_ = loop_->iterations();
    budget_start_ = raw_written_ + raw_read_;
  }
  in_run_ = true;
  bool yield = false;
  do {
    if (raw_written_ + raw_read_ - budget_start_ >= kMaxBytesPerIteration) {
      yield = true;  // what is left (events, output) waits for a later iteration
      break;
    }
    run_again_ = false;
    PollEvents();
    if (phase_ != Phase::kOpen) break;
    // Write now rather than wait for EPOLLOUT: a writable socket is the
    // usual case, and the records just made are one flight (one writev).
    size_t before = raw_written_;
    if (!Flush()) break;
    if (raw_written_ != before) run_again_ = true;  // ConsumeOutput may raise kDrain
  } while (run_again_ && phase_ == Phase::kOpen);
  in_run_ = false;
  if (phase_ != Phase::kOpen) return;
  Rearm();
  if (yield) ResumeLater();
}

void Connection::ResumeLater() {
  // Level-triggered epoll would not call us again for work that is ours
  // alone (events to poll, output to make): queue the rest behind the
  // others instead. A posted task runs after this iteration's I/O (still
  // out of budget, it posts itself again), and one posted from a task on
  // the next iteration, so every other ready connection gets its turn in
  // between.
  if (resume_posted_) return;
  resume_posted_ = true;
  std::weak_ptr<void> owner = owner_;
  loop_->Post([this, owner] {
    std::shared_ptr<void> hold = owner.lock();
    if (hold == nullptr) return;
    resume_posted_ = false;
    if (phase_ == Phase::kOpen) Pump();
  });
}

void Connection::PollEvents() {
  while (phase_ == Phase::kOpen) {
    std::optional<Event> event = engine_->NextEvent(loop_->Now());
    if (!event) return;
    bool last = event->type == EventType::kError || event->type == EventType::kClosed;
    if (last && final_status_.ok() && event->type == EventType::kError) final_status_ = event->status;
    handler_->OnEngineEvent(*event);
    if (last) {
      // Nothing follows kError/kClosed; what the engine still holds is the
      // alert or close_notify.
      if (phase_ == Phase::kOpen) BeginClose(final_status_);
      return;
    }
  }
}

bool Connection::Flush() {
  write_blocked_ = false;
  for (int i = 0; i < kMaxWritesPerFlush; ++i) {
    absl::InlinedVector<absl::Span<const uint8_t>, 2> spans = engine_->Output();
    if (spans.empty()) return true;
    iovec iov[kMaxIov];
    size_t count = 0, total = 0;
    for (absl::Span<const uint8_t> span : spans) {
      if (count == kMaxIov) break;
      iov[count].iov_base = const_cast<uint8_t*>(span.data());
      iov[count].iov_len = span.size();
      total += span.size();
      ++count;
    }
    msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    // sendmsg is writev with flags: MSG_NOSIGNAL turns SIGPIPE into EPIPE.
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        write_blocked_ = true;
        return true;
      }
      if (eof_ && (errno == EPIPE || errno == ECONNRESET)) {
        // The peer closed both ways after its EOF: what is left to send
        // (our close_notify) has nobody to go to. Not an error of its own:
        // the engine already reported how the peer ended.
        engine_->Destroy();
        FinishClose();
        return false;
      }
      TransportError(internal::SysError("write", errno));
      return false;
    }
    raw_written_ += static_cast<uint64_t>(n);
    // n never exceeds what Output() offered, so this cannot fail.
    engine_->ConsumeOutput(static_cast<size_t>(n)).IgnoreError();
    handler_->OnActivity();
    if (phase_ != Phase::kOpen && phase_ != Phase::kFlushing) return false;
    if (static_cast<size_t>(n) < total) {
      write_blocked_ = true;
      return true;
    }
  }
  return true;
}

bool Connection::ReadOnce() {
  absl::Span<uint8_t> space = engine_->InputSpace();
  if (space.empty()) return false;  // backpressure: the engine's buffer is full
  for (;;) {
    ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n > 0) {
      raw_read_ += static_cast<uint64_t>(n);
      // A failure here is the engine's sticky error, raised as kError by
      // the NextEvent poll that follows.
      engine_->CommitInput(static_cast<size_t>(n)).IgnoreError();
      handler_->OnActivity();
      return true;
    }
    // Cancelling the reservation cannot fail: it exists.
    engine_->CommitInput(0).IgnoreError();
    if (n == 0) {
      eof_ = true;
      engine_->OnTransportEof();
      return false;
    }
    if (errno == EINTR) {
      space = engine_->InputSpace();
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    TransportError(internal::SysError("read", errno));
    return false;
  }
}

void Connection::CheckSocketError() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    TransportError(internal::SysError("read", err));
  }
}

void Connection::OnReady(Ready ready) {
  std::shared_ptr<void> hold = owner_.lock();
  if (hold == nullptr) return;
  switch (phase_) {
    case Phase::kOpen:
      if (ready.read) {
        ReadOnce();
      } else if (ready.error || ready.hangup) {
        // Reported without read interest (we are not reading, e.g. paused
        // or backpressured): find out what happened.
        CheckSocketError();
        if (phase_ == Phase::kOpen && ready.hangup && !eof_) {
          eof_ = true;
          engine_->OnTransportEof();
        }
      }
      if (phase_ == Phase::kOpen) Pump();
      return;
    case Phase::kFlushing:
      if (!Flush()) return;
      if (phase_ == Phase::kFlushing && engine_->OutputSize() == 0) {
        StartLinger();
      } else if (ready.error || ready.hangup) {
        FinishClose();  // the peer is gone: the alert cannot be delivered
      }
      return;
    case Phase::kLingering:
      Linger();
      return;
    case Phase::kClosed:
      return;
  }
}

void Connection::OnEngineTimer() {
  timer_ = kNoTimer;
  timer_when_ = absl::InfiniteFuture();
  std::shared_ptr<void> hold = owner_.lock();
  if (hold == nullptr) return;
  switch (phase_) {
    case Phase::kOpen:
      engine_->OnTimer(loop_->Now());
      Pump();
      return;
    case Phase::kFlushing:  // the peer does not read: give up on the alert
    case Phase::kLingering:
      FinishClose();
      return;
    case Phase::kClosed:
      return;
  }
}

void Connection::SetTimer(absl::Time when) {
  if (when == timer_when_ && timer_ != kNoTimer) return;
  if (when == absl::InfiniteFuture()) {
    if (timer_ != kNoTimer) loop_->Cancel(timer_);
    timer_ = kNoTimer;
    timer_when_ = when;
    return;
  }
  timer_when_ = when;
  if (timer_ != kNoTimer && loop_->Reschedule(timer_, when)) return;
  timer_ = loop_->AddTimer(when, [this] { OnEngineTimer(); });
}

void Connection::Rearm() {
  Interest want;
  absl::Time deadline = absl::InfiniteFuture();
  switch (phase_) {
    case Phase::kOpen: {
      tlsengine::Interest engine_wants = engine_->interest();
      want.read = engine_wants.read && reading_;
      // Output is written as soon as it exists (Run); EPOLLOUT is only
      // needed once the socket refused some.
      want.write = write_blocked_ && engine_wants.write;
      deadline = engine_wants.deadline;
      break;
    }
    case Phase::kFlushing:
      want.write = true;
      deadline = linger_deadline_;
      break;
    case Phase::kLingering:
      want.read = true;
      deadline = linger_deadline_;
      break;
    case Phase::kClosed:
      return;
  }
  if (want.read != armed_.read || want.write != armed_.write) {
    absl::Status s = loop_->Modify(fd_, want);
    if (!s.ok()) {
      TransportError(s);
      return;
    }
    armed_ = want;
  }
  SetTimer(deadline);
}

void Connection::BeginClose(absl::Status status) {
  if (phase_ != Phase::kOpen) return;
  final_status_ = std::move(status);
  phase_ = Phase::kFlushing;
  linger_deadline_ = loop_->Now() + options_.flush_time;
  if (!Flush()) return;
  if (phase_ != Phase::kFlushing) return;
  if (engine_->OutputSize() == 0) {
    StartLinger();
  } else {
    Rearm();
  }
}

void Connection::StartLinger() {
  phase_ = Phase::kLingering;
  // The alert or close_notify is in the kernel: FIN after it, then read
  // what the peer still sends so that close() does not turn into a reset.
  ::shutdown(fd_, SHUT_WR);
  linger_deadline_ = loop_->Now() + options_.linger_time;
  if (eof_) {
    FinishClose();
    return;
  }
  Linger();
  if (phase_ == Phase::kLingering) Rearm();
}

void Connection::Linger() {
  uint8_t buf[kDiscardChunk];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      linger_read_ += static_cast<size_t>(n);
      raw_read_ += static_cast<uint64_t>(n);
      if (linger_read_ >= options_.linger_bytes) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (loop_->Now() < linger_deadline_) return;  // wait for more, or the timer
    }
    break;  // EOF, an error, or the bound
  }
  FinishClose();
}

void Connection::TransportError(absl::Status status) {
  if (phase_ == Phase::kClosed) return;
  // While flushing the last close_notify the peer may be gone already
  // (EPIPE): the connection had ended well, and that stays its result.
  if (final_status_.ok() && phase_ == Phase::kOpen) final_status_ = std::move(status);
  // Nothing more can be sent or received; drop what the engine holds.
  engine_->Destroy();
  FinishClose();
}

void Connection::Destroy(absl::Status reason) {
  if (phase_ == Phase::kClosed) return;
  if (final_status_.ok()) final_status_ = std::move(reason);
  if (phase_ == Phase::kOpen) {
    engine_->Destroy();
    phase_ = Phase::kFlushing;
  }
  // No alert to wait for: discard what has arrived, briefly, then close.
  ::shutdown(fd_, SHUT_WR);
  phase_ = Phase::kLingering;
  linger_deadline_ = loop_->Now();
  Linger();
}

void Connection::FinishClose() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  if (timer_ != kNoTimer) loop_->Cancel(timer_);
  timer_ = kNoTimer;
  if (watched_) loop_->Unwatch(fd_).IgnoreError();  // kNotFound only: already gone
  watched_ = false;
  ::close(fd_);
  fd_ = -1;
  // OnClosed from a posted task: never inside a method the application
  // called, nor in the middle of a dispatch.
  std::weak_ptr<void> owner = owner_;
  loop_->Post([this, owner] {
    std::shared_ptr<void> hold = owner.lock();
    if (hold == nullptr) return;
    handler_->OnClosed(final_status_);
  });
}

}  // namespace epoll
}  // namespace tlsengine
