// Connection: the one driver that moves bytes between a non-blocking socket
// and a TlsConnection, for both roles (Server's sockets and TlsSocket's are
// the same thing here; they differ only in how they start). Most programs
// use TlsSocket and Server instead; this header is public for adapters that
// want the engine events raw.
//
//   auto conn = Connection::Create(loop, fd, std::move(engine), &handler, owner).value();
//   conn->Start();                       // watches fd, polls the engine
//   conn->engine()->Write("hello").value();
//   conn->Pump();                        // after every call into the engine
//
// What it does, on every readiness, timer and Pump():
//   * reads straight into the engine's InputSpace() (no buffer of its own)
//     until EAGAIN, within what is left of the fairness budget below,
//   * writes with writev straight from every one of the engine's Output()
//     spans (both through adapters/fd's FdDriver, the one fd driver),
//   * polls NextEvent() until nullopt, handing each event to the handler
//     (one Run per readiness: a Pump() from OnActivity during the read
//     joins it),
//   * arms EPOLLIN/EPOLLOUT (Loop::Modify) and one loop timer from
//     interest(), after every call that can change them.
// Fairness: a connection moves at most 256 KB per loop iteration (plus
// what the writev in progress takes); past that, Pump() leaves the rest of
// its work to a task posted to the loop, behind the other ready
// connections, so one that always has more to send cannot keep the loop
// to itself. The engine's bounded buffers then push back on its writer
// (TlsSocket::Write returns false, 'drain' follows).
// Closing keeps the alert: once the engine is finished its output (the
// close_notify or the fatal alert) is flushed, the write side shut down,
// and input read and discarded for at most linger_time / linger_bytes
// before close(), so the peer does not get a reset that overtakes the alert.
//
// Threads: a Connection belongs to its loop's thread; every method must be
// called there. Every handler callback may call any method, Destroy()
// included, and may drop the last reference to the owner: the driver holds
// `owner` (locked from the weak pointer) while it dispatches, and checks its
// state after each callback.
#ifndef TLSENGINE_ADAPTERS_EPOLL_CONNECTION_H_
#define TLSENGINE_ADAPTERS_EPOLL_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/epoll/loop.h"
#include "adapters/fd/fd_driver.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace epoll {

// Receives what a Connection produces. Called on the loop thread.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // One engine event, in the engine's order (kData's span is borrowed, valid
  // only during the call). kError and kClosed are delivered too; after
  // them the driver closes the socket carefully and then calls OnClosed.
  virtual void OnEngineEvent(const Event& event) = 0;
  // The socket moved bytes (read or written): for idle timers.
  virtual void OnActivity() {}
  // The fd is closed; the last call, always from a task posted to the loop
  // (never from inside a method the application called). `status` is
  // OK after a clean close (close_notify, or EOF after End()), else the
  // error that ended the connection: the engine's (with its Node code), or
  // a transport one (kUnavailable, ECONNRESET / EPIPE / ...).
  virtual void OnClosed(const absl::Status& status) = 0;
};

struct DriverOptions {
  // The careful close: how long, and how many bytes, to read and discard
  // after shutdown(SHUT_WR) before close().
  absl::Duration linger_time = absl::Seconds(2);
  size_t linger_bytes = 256 * 1024;
  // How long to keep trying to flush the final alert / close_notify to a
  // peer that does not read, before giving up.
  absl::Duration flush_time = absl::Seconds(5);
};

class Connection {
 public:
  // Takes `fd` (connected, any blocking mode: made non-blocking here; owned
  // from now on, closed at the end, even on error) and `engine`. `handler`
  // is not owned and must outlive the Connection; `owner` is locked during
  // each dispatch so that callbacks can release it. kInvalidArgument for a
  // bad fd, a null engine or handler.
  static absl::StatusOr<std::unique_ptr<Connection>> Create(Loop* loop, int fd,
                                                            std::unique_ptr<TlsConnection> engine,
                                                            ConnectionHandler* handler,
                                                            std::weak_ptr<void> owner,
                                                            DriverOptions options = DriverOptions());
  // Unwatches and closes the fd at once if still open (no callbacks).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Watches the fd and does a first Pump(). Errors from Loop::Watch; on
  // error nothing is watched (the fd is still owned: the destructor closes).
  absl::Status Start();

  // The engine, for Write(), End(), Renegotiate(), properties...; kept
  // after close (for its properties) until the Connection is destroyed.
  // Call Pump() after any call that changes it.
  TlsConnection* engine() { return engine_.get(); }
  const TlsConnection* engine() const { return engine_.get(); }

  // Polls events until nullopt, flushes output, re-arms the watch and the
  // timer. Safe to call from a handler callback (it then only marks that
  // more work is due, and the running dispatch does it).
  void Pump();

  // Stop (false) or restart (true) reading from the socket: Node's
  // pause()/resume() at the transport. Output and timers carry on.
  void SetReading(bool reading);
  bool reading() const { return reading_; }

  // Node's destroy(): Destroy()s the engine, then closes the socket (still
  // carefully: shutdown, brief discard) and calls OnClosed(`reason`).
  // Idempotent.
  void Destroy(absl::Status reason = absl::OkStatus());

  // True once the engine is finished and the driver is flushing/lingering
  // or done.
  bool closing() const { return phase_ != Phase::kOpen; }
  bool closed() const { return phase_ == Phase::kClosed; }

  int fd() const { return fd_; }
  Loop* loop() const { return loop_; }
  // Ciphertext moved over the socket.
  uint64_t raw_bytes_read() const { return driver_.bytes_read(); }
  uint64_t raw_bytes_written() const { return driver_.bytes_written(); }
  // The peer half-closed (read returned 0).
  bool transport_eof() const { return driver_.eof(); }

 private:
  enum class Phase { kOpen, kFlushing, kLingering, kClosed };
  Connection(Loop* loop, int fd, std::unique_ptr<TlsConnection> engine, ConnectionHandler* handler,
             std::weak_ptr<void> owner, DriverOptions options);

  void OnReady(Ready ready);
  void OnEngineTimer();
  void Run();            // the dispatch loop behind Pump(); bounded per iteration
  void ResumeLater();    // Run again from a posted task (after a bounded Run)
  void Read();           // until EAGAIN, within the budget left
  bool Flush();          // false: a transport error ended the connection
  uint64_t BudgetLeft();  // bytes this connection may still move in this iteration
  void PollEvents();
  void Rearm();
  void BeginClose(absl::Status status);
  void ContinueClose();  // the careful close's next steps (kFlushing, kLingering)
  fdio::CloseLimits Limits() const;
  void FinishClose();
  void TransportError(absl::Status status);
  void SetTimer(absl::Time when);
  void CheckSocketError();

  Loop* const loop_;
  int fd_;
  std::unique_ptr<TlsConnection> engine_;
  fdio::FdDriver driver_;  // fd_ and engine_, borrowed
  ConnectionHandler* const handler_;
  const std::weak_ptr<void> owner_;
  const DriverOptions options_;

  Phase phase_ = Phase::kOpen;
  bool watched_ = false;
  bool reading_ = true;
  bool write_blocked_ = false;  // the last writev hit EAGAIN: arm EPOLLOUT
  bool in_run_ = false;    // Run() is on the stack
  bool run_again_ = false;  // Pump() was called from inside Run()
  bool resume_posted_ = false;  // a ResumeLater task is queued
  uint64_t budget_iteration_ = 0;  // the loop iteration budget_start_ belongs to
  uint64_t budget_start_ = 0;      // raw bytes moved when that iteration began here
  Interest armed_;
  TimerId timer_ = kNoTimer;
  absl::Time timer_when_ = absl::InfiniteFuture();
  absl::Status final_status_;
  fdio::CloseStep close_step_;  // what the careful close waits for
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_CONNECTION_H_
