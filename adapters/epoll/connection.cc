#include "adapters/epoll/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "adapters/fd/sys_status.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

// Writes per Flush before yielding to other connections on the loop.
constexpr int kMaxWritesPerFlush = 16;
// Bytes a connection may move (written and read) in one loop iteration
// before it yields to the others, as nginx and h2o bound the work per
// wake: a connection that always has more to send (a producer refilling on
// every 'drain', or writing in a loop, to a fast reader) would otherwise
// never hit EAGAIN and keep the loop to itself. 16 full records.
constexpr uint64_t kMaxBytesPerIteration = 256 * 1024;

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
  // accept4(SOCK_NONBLOCK) and socket(SOCK_NONBLOCK) fds need no second call.
  if (flags < 0 || ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
    int err = errno;
    ::close(fd);
    return fdio::SysError("fcntl", err, absl::StatusCode::kInvalidArgument);
  }
  return std::unique_ptr<Connection>(
      new Connection(loop, fd, std::move(engine), handler, std::move(owner), options));
}

Connection::Connection(Loop* loop, int fd, std::unique_ptr<TlsConnection> engine,
                       ConnectionHandler* handler, std::weak_ptr<void> owner, DriverOptions options)
    : loop_(loop),
      fd_(fd),
      engine_(std::move(engine)),
      driver_(fd, engine_.get()),
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
  in_run_ = true;
  bool yield = false;
  do {
    if (BudgetLeft() == 0) {
      yield = true;  // what is left (events, output) waits for a later iteration
      break;
    }
    run_again_ = false;
    PollEvents();
    if (phase_ != Phase::kOpen) break;
    // Write now rather than wait for EPOLLOUT: a writable socket is the
    // usual case, and the records just made are one flight (one writev).
    uint64_t before = driver_.bytes_written();
    if (!Flush()) break;
    if (driver_.bytes_written() != before) run_again_ = true;  // ConsumeOutput may raise kDrain
  } while (run_again_ && phase_ == Phase::kOpen);
  in_run_ = false;
  if (phase_ != Phase::kOpen) return;
  Rearm();
  if (yield) ResumeLater();
}

uint64_t Connection::BudgetLeft() {
  // The budget counts what this connection moved in the loop's current
  // iteration, whoever called (a readiness, a timer, a Write from any
  // callback), so that neither one long Run nor many short ones exceed it.
  const uint64_t moved = driver_.bytes_written() + driver_.bytes_read();
  if (loop_->iterations() != budget_iteration_) {
    budget_iteration_ = loop_->iterations();
    budget_start_ = moved;
  }
  uint64_t used = moved - budget_start_;
  return used >= kMaxBytesPerIteration ? 0 : kMaxBytesPerIteration - used;
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
  fdio::WriteResult w = driver_.WriteOutput(SIZE_MAX, kMaxWritesPerFlush);
  write_blocked_ = w.blocked;
  if (w.bytes > 0) {
    handler_->OnActivity();
    if (phase_ != Phase::kOpen) return false;
  }
  if (w.error.ok()) return true;
  if (driver_.eof() && (w.err == EPIPE || w.err == ECONNRESET)) {
    // The peer closed both ways after its EOF: what is left to send (our
    // close_notify) has nobody to go to. Not an error of its own: the
    // engine already reported how the peer ended.
    engine_->Destroy();
    FinishClose();
    return false;
  }
  TransportError(w.error);
  return false;
}

void Connection::Read() {
  // Until EAGAIN (or the engine's buffer is full), within what is left of
  // this iteration's budget; the engine decodes it all at the next poll.
  uint64_t left = BudgetLeft();
  if (left == 0) return;  // level-triggered: the readiness comes back next iteration
  fdio::ReadResult r = driver_.ReadInput(static_cast<size_t>(left));
  if (r.bytes > 0) {
    // A Pump() from the handler here (TlsSocket flushes its writes on
    // activity) joins the Run that OnReady does next: one Run per readiness.
    const bool was_in_run = in_run_;
    in_run_ = true;
    handler_->OnActivity();
    in_run_ = was_in_run;
    if (phase_ != Phase::kOpen) return;
  }
  if (r.stop == fdio::ReadStop::kError) TransportError(r.error);
}

void Connection::CheckSocketError() {
  absl::Status error = driver_.SocketError("read");
  if (!error.ok()) TransportError(error);
}

void Connection::OnReady(Ready ready) {
  std::shared_ptr<void> hold = owner_.lock();
  if (hold == nullptr) return;
  switch (phase_) {
    case Phase::kOpen:
      if (ready.read) {
        Read();
      } else if (ready.error || ready.hangup) {
        // Reported without read interest (we are not reading, e.g. paused
        // or backpressured): find out what happened.
        CheckSocketError();
        if (phase_ == Phase::kOpen && ready.hangup && !driver_.eof()) {
          driver_.MarkEof();  // the EOF a read would have returned
        }
      }
      if (phase_ == Phase::kOpen) Pump();
      return;
    case Phase::kFlushing:
      ContinueClose();
      if (phase_ == Phase::kFlushing && (ready.error || ready.hangup)) {
        FinishClose();  // the peer is gone: the alert cannot be delivered
      }
      return;
    case Phase::kLingering:
      ContinueClose();
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
      // Nothing left to send: let the engine drop its buffers and OpenSSL's
      // record buffers (about 33 KB) until the next record, as
      // SSL_MODE_RELEASE_BUFFERS does for a plain OpenSSL server. An idle
      // connection then holds no record buffer at all; ReleaseBuffers
      // refuses cheaply while anything is buffered or a handshake runs.
      if (!write_blocked_ && engine_->OutputSize() == 0) engine_->ReleaseBuffers();
      break;
    }
    case Phase::kFlushing:
    case Phase::kLingering:
      want.read = close_step_.want_read;
      want.write = close_step_.want_write;
      deadline = close_step_.deadline;
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

fdio::CloseLimits Connection::Limits() const {
  fdio::CloseLimits limits;
  limits.flush_time = options_.flush_time;
  limits.linger_time = options_.linger_time;
  limits.linger_bytes = options_.linger_bytes;
  return limits;
}

void Connection::BeginClose(absl::Status status) {
  if (phase_ != Phase::kOpen) return;
  final_status_ = std::move(status);
  phase_ = Phase::kFlushing;
  driver_.BeginClose(loop_->Now(), Limits());
  ContinueClose();
}

void Connection::ContinueClose() {
  // The careful close (adapters/fd): send the alert or close_notify the
  // engine holds, FIN after it, read and discard briefly, then close.
  close_step_ = driver_.ContinueClose(loop_->Now());
  if (close_step_.done) {
    // A transport error while sending: the peer is gone (EPIPE after its
    // EOF); the connection's result stays what the engine reported.
    if (!driver_.close_error().ok()) engine_->Destroy();
    FinishClose();
    return;
  }
  phase_ = close_step_.want_write ? Phase::kFlushing : Phase::kLingering;
  Rearm();
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
  if (phase_ == Phase::kOpen) engine_->Destroy();
  // No alert to wait for: discard what has arrived, briefly, then close.
  phase_ = Phase::kLingering;
  fdio::CloseLimits limits = Limits();
  limits.linger_time = absl::ZeroDuration();
  driver_.BeginDiscard(loop_->Now(), limits);
  ContinueClose();
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
