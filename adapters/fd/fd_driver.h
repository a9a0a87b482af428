// FdDriver: the one piece of code that moves bytes between a file
// descriptor (a connected stream socket) and a TlsConnection. The epoll
// Connection, the blocking TlsStream and the test socket runners all call
// it; they differ only in how they wait (epoll, poll() within a deadline).
//
//   fdio::FdDriver driver(fd, engine.get());
//   // when readable:
//   fdio::ReadResult r = driver.ReadInput(fdio::kDefaultReadBudget);
//   // after polling events, and when writable:
//   fdio::WriteResult w = driver.WriteOutput();
//   // closing: engine->End(now) (or after kError), then
//   driver.BeginClose(now, limits);
//   for (fdio::CloseStep s = driver.ContinueClose(now); !s.done; s = driver.ContinueClose(now)) {
//     wait for s.want_read / s.want_write until s.deadline
//   }
//   close(fd);
//
// What it owns: reading into the engine's InputSpace() until EAGAIN within
// a byte budget per wakeup (h2o's evloop reads up to 1 MB, then decodes
// once); sendmsg from every Output() span (at most kMaxIov); EOF
// (OnTransportEof) and transport errors as statuses (fdio::SysError); the
// careful close (DESIGN.md): send the engine's last output (the
// close_notify or alert), shutdown(SHUT_WR), read and discard bounded in
// time and bytes, then the caller closes. It never blocks: every call uses
// MSG_DONTWAIT, so the fd's own blocking mode does not matter (a test's
// blocking socket works as is).
//
// Ownership: borrows the fd and the engine (the caller closes the fd and
// keeps both alive). Threads: not thread-safe; one thread at a time, as
// the engine. No callbacks: every call returns what happened, so the
// caller's callbacks may destroy anything.
#ifndef TLSENGINE_ADAPTERS_FD_FD_DRIVER_H_
#define TLSENGINE_ADAPTERS_FD_FD_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace fdio {

// Bytes ReadInput takes per wakeup unless told otherwise: h2o's 1 MB.
inline constexpr size_t kDefaultReadBudget = 1024 * 1024;
// iovecs per sendmsg (the engine offers one or two spans; IOV_MAX is 1024).
inline constexpr size_t kMaxIov = 16;

// Why ReadInput stopped.
enum class ReadStop {
  kWouldBlock,  // EAGAIN: wait for readability
  kBudget,      // read `budget` bytes: more may be there
  kFull,        // the engine's input buffer is full (poll its events first)
  kEof,         // the peer half-closed; OnTransportEof() was called
  kError,       // a transport error (`error`); the engine was not told
};

struct ReadResult {
  size_t bytes = 0;  // read and committed into the engine
  ReadStop stop = ReadStop::kWouldBlock;
  absl::Status error;  // kError only: "read ECONNRESET: ..." (fdio::SysError)
  int err = 0;         // its errno
};

struct WriteResult {
  size_t bytes = 0;      // sent and consumed from the engine's output
  bool blocked = false;  // the socket took less than offered: wait for writability
  absl::Status error;    // "write EPIPE: ..." (fdio::SysError); the engine was not told
  int err = 0;           // its errno
};

// The careful close's bounds.
struct CloseLimits {
  // How long to keep trying to send the engine's last output to a peer that
  // does not read.
  absl::Duration flush_time = absl::Seconds(5);
  // After shutdown(SHUT_WR): how long, and how many bytes, to read and
  // discard before the close.
  absl::Duration linger_time = absl::Seconds(2);
  size_t linger_bytes = 256 * 1024;
  // No wait of the close goes past this (a caller's deadline).
  absl::Time limit = absl::InfiniteFuture();
};

// What the careful close waits for next.
struct CloseStep {
  bool done = false;  // close the fd now
  bool want_read = false;
  bool want_write = false;
  absl::Time deadline = absl::InfiniteFuture();  // call ContinueClose again by then
};

class FdDriver {
 public:
  // Borrows `fd` and `engine` (both must outlive the driver, or be replaced
  // by Reset before use).
  FdDriver(int fd, TlsConnection* engine) : fd_(fd), engine_(engine) {}
  FdDriver(const FdDriver&) = delete;
  FdDriver& operator=(const FdDriver&) = delete;

  // Reads into InputSpace() and commits, again and again, until EAGAIN,
  // EOF, an error, the engine's buffer is full or `budget` bytes were read.
  // `observer`, if given, sees every piece read (a corpus recorder). EOF
  // calls OnTransportEof() once (see eof()). After EOF, returns kEof
  // without reading.
  ReadResult ReadInput(size_t budget = kDefaultReadBudget,
                       const std::function<void(absl::Span<const uint8_t>)>& observer = nullptr);

  // Sends Output() with sendmsg (every span, MSG_NOSIGNAL) and consumes what
  // went, until nothing is left, the socket refuses, `max_writes` calls were
  // made or `max_bytes` went. EPIPE / ECONNRESET ... come back in `error`.
  WriteResult WriteOutput(size_t max_bytes = SIZE_MAX, int max_writes = 16);

  // The transport ended without a read seeing it (a poller's hang-up
  // while not reading): as a read returning 0, OnTransportEof() once.
  void MarkEof();

  // The socket's pending error (SO_ERROR) as "`what` ECONNRESET: ...", OK
  // when there is none.
  absl::Status SocketError(absl::string_view what = "read") const;

  // Starts the careful close: send what the engine holds (call End() or
  // Destroy() on the engine first, and poll its events), then shut down and
  // discard. Bounds from `limits`, counted from `now`.
  void BeginClose(absl::Time now, const CloseLimits& limits);
  // Starts it past the sending: shutdown(SHUT_WR) now and discard until the
  // linger bound (Node's destroy(): nothing is sent).
  void BeginDiscard(absl::Time now, const CloseLimits& limits);
  // Does what the close can do now without waiting; `done` once the fd
  // should be closed: all sent and discarded (EOF, the byte bound, the time
  // bound), or the peer gone. Never blocks. A transport error while sending
  // ends it (close_error() says which).
  CloseStep ContinueClose(absl::Time now);
  bool closing() const { return close_phase_ != ClosePhase::kNone; }
  const absl::Status& close_error() const { return close_error_; }

  // Runs the careful close to its end with poll(), never past
  // limits.limit (nor the limits' own bounds): for blocking callers.
  // `poll_events`, if given, is called before each step (to drain the
  // engine's events, as its contract asks).
  void CloseBlocking(const CloseLimits& limits, const std::function<void()>& poll_events = nullptr);

  int fd() const { return fd_; }
  bool eof() const { return eof_; }  // read returned 0
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  enum class ClosePhase { kNone, kFlushing, kLingering, kDone };
  void StartLinger(absl::Time now);
  CloseStep Linger(absl::Time now);

  int fd_;
  TlsConnection* engine_;
  bool eof_ = false;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  ClosePhase close_phase_ = ClosePhase::kNone;
  CloseLimits limits_;
  absl::Time close_deadline_ = absl::InfiniteFuture();
  size_t discarded_ = 0;
  absl::Status close_error_;
};

// Waits with poll() until `fd` is readable (`read`) or writable (`write`),
// or `deadline`; retries EINTR. Returns poll's revents (0 on timeout).
short WaitFd(int fd, bool read, bool write, absl::Time deadline);

// Milliseconds for poll() until `t`, rounded up so that a wait never ends
// just before the deadline and spins; -1 for the infinite future.
int MillisUntil(absl::Time t);

}  // namespace fdio
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_FD_FD_DRIVER_H_
