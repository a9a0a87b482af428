// Running real TLS peers for interop tests: child processes with pipes,
// loopback sockets, and a loop that drives a TlsConnection over a socket.
// Every wait is bounded; a stuck peer fails the test instead of hanging it.
#ifndef TLSENGINE_TESTS_TESTLIB_PEERS_H_
#define TLSENGINE_TESTS_TESTLIB_PEERS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace testing {

// A child process with its stdin, stdout and stderr on pipes.
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // kills the child if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // argv[0] is looked up in PATH. The child runs in `dir` when not empty.
  absl::Status Start(const std::vector<std::string>& argv, const std::string& dir = "");
  absl::Status WriteStdin(const std::string& data);
  void CloseStdin();
  // Reads until a line containing `needle` arrives on stdout or stderr;
  // returns that line.
  absl::StatusOr<std::string> WaitForLine(const std::string& needle, absl::Duration timeout);
  // Waits for exit (killing the child after `timeout`); returns the exit code
  // (128 + signal when killed). Collects the rest of stdout and stderr.
  int Wait(absl::Duration timeout);
  void Kill();
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  pid_t pid() const { return pid_; }  // -1 before Start

 private:
  void ReadAvailable(int timeout_ms);
  pid_t pid_ = -1;
  int in_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
  size_t line_start_ = 0, err_line_start_ = 0;
};

// A TCP listener on 127.0.0.1 with a kernel-chosen port.
class Listener {
 public:
  Listener();
  ~Listener();
  int port() const { return port_; }
  // Accepts one connection within `timeout`; -1 on timeout.
  int Accept(absl::Duration timeout);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Connects to 127.0.0.1:port; -1 on failure.
int ConnectLoopback(int port);

// Drives `conn` over the connected socket `fd` (owned: closed at the end)
// until the engine is finished, the peer closes, or `timeout` passes. Every
// event goes to `on_event`, which may Write() or Close(); `done` stops the
// loop early when it returns true; `on_input`, if given, sees every piece
// read from the socket (the fuzz corpus recorder uses it). Returns the
// engine's status, or kDeadlineExceeded on timeout.
absl::Status RunOverSocket(TlsConnection& conn, int fd,
                           const std::function<void(TlsConnection&, const Event&)>& on_event,
                           absl::Duration timeout,
                           const std::function<bool()>& done = nullptr,
                           const std::function<void(absl::Span<const uint8_t>)>& on_input = nullptr);

// Accepts one connection on `listener` (within `timeout`) and serves it
// with a new engine made from `options`: `on_event` sees every event (it may
// Write, Close or answer suspensions), `inspect` sees the engine at the end.
// Returns RunOverSocket's status.
absl::Status ServeOne(Listener& listener, const ConnectionOptions& options,
                      const std::function<void(TlsConnection&, const Event&)>& on_event,
                      const std::function<void(TlsConnection&)>& inspect, absl::Duration timeout);

// ServeOne for a request-reply peer: once what arrived contains
// `terminator` ("\n" for a line, "\r\n\r\n" for HTTP headers), writes
// reply(what arrived) and closes with close_notify. `extra` sees every
// event first (it may answer suspensions); `received`, if given, gets what
// arrived.
absl::Status ServeRequest(Listener& listener, const ConnectionOptions& options, absl::string_view terminator,
                          const std::function<std::string(const std::string& received)>& reply,
                          const std::function<void(TlsConnection&, const Event&)>& extra,
                          const std::function<void(TlsConnection&)>& inspect, absl::Duration timeout,
                          std::string* received = nullptr);

// Starts Node's tls.createServer on 127.0.0.1 with the server-ecdsa
// identity, answering each socket `s` with `on_data`, the body of
// `s.on('data', d => ...)` (JavaScript; `srv` is the server). Returns the
// port it listens on, once node says so within `timeout`.
absl::StatusOr<int> StartNodeTlsServer(Subprocess& server, const std::string& on_data, absl::Duration timeout);

// Full path of tests/certs/NAME in the runfiles.
std::string TestFilePath(const std::string& name);

}  // namespace testing
}  // namespace tlsengine

#endif  // TLSENGINE_TESTS_TESTLIB_PEERS_H_
