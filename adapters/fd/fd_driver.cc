#include "adapters/fd/fd_driver.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <climits>

#include "adapters/fd/sys_status.h"

namespace tlsengine {
namespace fdio {
namespace {

// The discard buffer of the careful close lives on the stack.
constexpr size_t kDiscardChunk = 16384;

}  // namespace

ReadResult FdDriver::ReadInput(size_t budget, const std::function<void(absl::Span<const uint8_t>)>& observer) {
  ReadResult result;
  if (eof_) {
    result.stop = ReadStop::kEof;
    return result;
  }
  while (result.bytes < budget) {
    absl::Span<uint8_t> space = engine_->InputSpace();
    if (space.empty()) {
      result.stop = ReadStop::kFull;  // backpressure: poll the engine first
      return result;
    }
    space = space.first(std::min(space.size(), budget - result.bytes));
    ssize_t n = ::recv(fd_, space.data(), space.size(), MSG_DONTWAIT);
    if (n > 0) {
      result.bytes += static_cast<size_t>(n);
      bytes_read_ += static_cast<uint64_t>(n);
      if (observer) observer(space.first(static_cast<size_t>(n)));
      // A failure here is the engine's sticky error, raised as kError by
      // the next NextEvent poll.
      engine_->CommitInput(static_cast<size_t>(n)).IgnoreError();
      continue;
    }
    int err = errno;
    engine_->CommitInput(0).IgnoreError();  // cancels the reservation: it exists
    if (n == 0) {
      eof_ = true;
      engine_->OnTransportEof();
      result.stop = ReadStop::kEof;
      return result;
    }
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      result.stop = ReadStop::kWouldBlock;
      return result;
    }
    result.stop = ReadStop::kError;
    result.err = err;
    result.error = SysError("read", err);
    return result;
  }
  result.stop = ReadStop::kBudget;
  return result;
}

WriteResult FdDriver::WriteOutput(size_t max_bytes, int max_writes) {
  WriteResult result;
  for (int i = 0; i < max_writes && result.bytes < max_bytes;) {
    absl::InlinedVector<absl::Span<const uint8_t>, 2> spans = engine_->Output();
    if (spans.empty()) return result;
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
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        result.blocked = true;
        return result;
      }
      result.err = err;
      result.error = SysError("write", err);
      return result;
    }
    ++i;
    result.bytes += static_cast<size_t>(n);
    bytes_written_ += static_cast<uint64_t>(n);
    // n never exceeds what Output() offered, so this cannot fail.
    engine_->ConsumeOutput(static_cast<size_t>(n)).IgnoreError();
    if (static_cast<size_t>(n) < total) {
      result.blocked = true;
      return result;
    }
  }
  return result;
}

void FdDriver::MarkEof() {
  if (eof_) return;
  eof_ = true;
  engine_->OnTransportEof();
}

absl::Status FdDriver::SocketError(absl::string_view what) const {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return absl::OkStatus();
  return SysError(what, err);
}

void FdDriver::BeginClose(absl::Time now, const CloseLimits& limits) {
  if (close_phase_ != ClosePhase::kNone) return;
  limits_ = limits;
  close_phase_ = ClosePhase::kFlushing;
  close_deadline_ = std::min(limits_.limit, now + limits_.flush_time);
}

void FdDriver::BeginDiscard(absl::Time now, const CloseLimits& limits) {
  if (close_phase_ == ClosePhase::kDone) return;
  if (close_phase_ == ClosePhase::kLingering) {  // already discarding: the tighter bound wins
    close_deadline_ = std::min(close_deadline_, std::min(limits.limit, now + limits.linger_time));
    return;
  }
  limits_ = limits;
  StartLinger(now);
}

void FdDriver::StartLinger(absl::Time now) {
  close_phase_ = ClosePhase::kLingering;
  // The alert or close_notify is in the kernel: FIN after it, then read
  // what the peer still sends, so that close() does not turn into a reset
  // that overtakes the alert.
  ::shutdown(fd_, SHUT_WR);
  close_deadline_ = std::min(limits_.limit, now + limits_.linger_time);
  if (eof_) close_phase_ = ClosePhase::kDone;  // the peer sends nothing more
}

CloseStep FdDriver::ContinueClose(absl::Time now) {
  CloseStep step;
  if (close_phase_ == ClosePhase::kFlushing) {
    WriteResult w = WriteOutput();
    if (!w.error.ok()) {
      // The peer is gone (EPIPE / ECONNRESET): the alert cannot be delivered.
      close_error_ = w.error;
      close_phase_ = ClosePhase::kDone;
    } else if (engine_->OutputSize() == 0) {
      StartLinger(now);
    } else if (now >= close_deadline_) {
      // The peer does not read: give up on the alert; shut down and take
      // only what has arrived already.
      StartLinger(now);
      close_deadline_ = now;
    } else {
      step.want_write = true;
      step.deadline = close_deadline_;
      return step;
    }
  }
  if (close_phase_ == ClosePhase::kLingering) return Linger(now);
  step.done = close_phase_ == ClosePhase::kDone;
  return step;
}

CloseStep FdDriver::Linger(absl::Time now) {
  CloseStep step;
  uint8_t sink[kDiscardChunk];
  while (discarded_ < limits_.linger_bytes) {
    ssize_t n = ::recv(fd_, sink, std::min(sizeof(sink), limits_.linger_bytes - discarded_), MSG_DONTWAIT);
    if (n > 0) {
      discarded_ += static_cast<size_t>(n);
      bytes_read_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now < close_deadline_) {
      step.want_read = true;  // wait for more, or the deadline
      step.deadline = close_deadline_;
      return step;
    }
    break;  // EOF, an error, or the time bound
  }
  close_phase_ = ClosePhase::kDone;
  step.done = true;
  return step;
}

void FdDriver::CloseBlocking(const CloseLimits& limits, const std::function<void()>& poll_events) {
  if (poll_events) poll_events();
  BeginClose(absl::Now(), limits);
  for (CloseStep step = ContinueClose(absl::Now()); !step.done; step = ContinueClose(absl::Now())) {
    WaitFd(fd_, step.want_read, step.want_write, step.deadline);
    if (poll_events) poll_events();
  }
}

int MillisUntil(absl::Time t) {
  if (t == absl::InfiniteFuture()) return -1;
  absl::Duration d = t - absl::Now();
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(INT_MAX, absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)))));
}

short WaitFd(int fd, bool read, bool write, absl::Time deadline) {
  for (;;) {
    pollfd p{fd, static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
    int ready = ::poll(&p, 1, MillisUntil(deadline));
    if (ready < 0 && errno == EINTR) continue;
    return ready > 0 ? p.revents : 0;
  }
}

}  // namespace fdio
}  // namespace tlsengine
