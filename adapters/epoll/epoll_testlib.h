// Test helpers for the epoll adapter: a loop run with a bound, contexts from
// the test PKI, an echo server, and counting open fds.
#ifndef TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_
#define TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_

#include <dirent.h>
#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/resource.h>

#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/epoll/echo.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/socket.h"
#include "adapters/fd/fd_driver.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

// Which sanitizer this binary was built with (bazel --config=asan /
// --config=tsan). Heavy tests scale down under them: both run code several
// times slower, and ASan's quarantine keeps freed memory resident, so an
// RSS comparison means nothing there.
#if defined(__SANITIZE_ADDRESS__)
#define TLSENGINE_EPOLL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSENGINE_EPOLL_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TLSENGINE_EPOLL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TLSENGINE_EPOLL_TEST_TSAN 1
#endif
#endif

namespace tlsengine {
namespace epoll {
namespace testing {

#ifdef TLSENGINE_EPOLL_TEST_ASAN
inline constexpr bool kUnderAsan = true;
#else
inline constexpr bool kUnderAsan = false;
#endif
#ifdef TLSENGINE_EPOLL_TEST_TSAN
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif

// `plain` in a plain build, `asan` under ASan+UBSan, `tsan` under TSan.
template <typename T>
constexpr T ScaledForSanitizers(T plain, T asan, T tsan) {
  return kUnderTsan ? tsan : kUnderAsan ? asan : plain;
}

// Runs `loop` until `done` is true or `timeout` passes (real time).
// Returns whether `done` became true.
inline bool RunUntil(Loop& loop, const std::function<bool()>& done,
                     absl::Duration timeout = absl::Seconds(10)) {
  absl::Time end = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= end) return false;
    if (!loop.RunOnce(absl::Milliseconds(10)).ok()) return false;
  }
  return true;
}

// Runs for `d` (to let things settle, e.g. to see that nothing happens).
inline void RunFor(Loop& loop, absl::Duration d) {
  absl::Time end = absl::Now() + d;
  while (absl::Now() < end) {
    if (!loop.RunOnce(absl::Milliseconds(5)).ok()) return;
  }
}

// A server context for `identity` (tests/certs), TLS `version` ("" both).
inline ServerOptions ServerFor(const std::string& identity = "server-rsa", const std::string& version = "") {
  ServerOptions o;
  o.context = tlsengine::testing::IdentityOptions(identity, version);
  o.honour_sslkeylogfile = false;
  return o;
}

// A client socket's options to 127.0.0.1:port, trusting ca1, SNI localhost.
inline TlsSocketOptions ClientTo(int port, const std::string& version = "") {
  TlsSocketOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  // One client context per version for the whole test binary: contexts are
  // built once and shared (DESIGN.md), and thousands of clients would
  // otherwise parse the CA thousands of times.
  static std::map<std::string, ConnectionOptions>* cache = new std::map<std::string, ConnectionOptions>();
  static std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(version);
    if (it == cache->end()) it = cache->emplace(version, tlsengine::testing::ClientOptions(version)).first;
    o.tls = it->second;
  }
  o.honour_sslkeylogfile = false;
  return o;
}

// Echo: every server socket writes back what it reads (with backpressure,
// echo.h) and ends when the peer ends.
inline void EchoOn(const std::shared_ptr<TlsSocket>& s) { EchoWithBackpressure(*s); }

inline int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the DIR's own fd
}

// Resident memory of this process, in KiB (VmRSS).
inline long ResidentKib() {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  }
  fclose(f);
  return kib;
}

// Raises RLIMIT_NOFILE's soft limit to `want`, or as far as the hard limit
// allows. Returns whether it is now at least `want`; `hard`, when given,
// gets the hard limit (for a test's skip message).
inline bool RaiseFdLimit(rlim_t want, rlim_t* hard = nullptr) {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return false;
  if (hard != nullptr) *hard = r.rlim_max;
  if (r.rlim_cur >= want) return true;
  r.rlim_cur = want < r.rlim_max ? want : r.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur >= want;
}

// Returns freed heap to the kernel (glibc's malloc_trim), so that VmRSS
// shows what is still allocated rather than what malloc keeps cached.
inline void TrimHeap() { malloc_trim(0); }

// How a socket ended: its on_error and on_close, recorded by RecordEnding.
struct Ending {
  absl::Status error;
  bool closed = false;
  bool had_error = false;
};
inline void RecordEnding(TlsSocket& s, Ending* ending) {
  s.handlers().on_error = [ending](const absl::Status& e) { ending->error = e; };
  s.handlers().on_close = [ending](bool had_error) {
    ending->closed = true;
    ending->had_error = had_error;
  };
}

// Handshakes a bare engine over the blocking socket `fd` (not closed), so a
// test can then send raw bytes or reset the connection. Waits for the
// client's Finished to have been sent. A server on `loop` in this thread is
// served meanwhile.
inline std::unique_ptr<TlsConnection> HandshakeOver(int fd, absl::Duration timeout, Loop* loop = nullptr) {
  std::unique_ptr<TlsConnection> conn = *TlsConnection::Create(ClientTo(1).tls, absl::Now());
  fdio::FdDriver driver(fd, conn.get());
  absl::Time end = absl::Now() + timeout;
  bool secure = false;
  while (absl::Now() < end) {
    while (std::optional<Event> ev = conn->NextEvent(absl::Now())) {
      if (ev->type == EventType::kSecure) secure = true;
      if (ev->type == EventType::kError) return nullptr;
    }
    for (;;) {  // all of it, waiting for the socket if need be
      fdio::WriteResult w = driver.WriteOutput();
      if (!w.error.ok()) return nullptr;
      if (!w.blocked) break;
      if (fdio::WaitFd(fd, false, true, end) == 0) return nullptr;
    }
    if (secure) return conn;
    if (loop != nullptr && !loop->RunOnce(absl::Milliseconds(5)).ok()) return nullptr;
    if (fdio::WaitFd(fd, true, false, absl::Now() + (loop != nullptr ? absl::ZeroDuration() : absl::Milliseconds(50))) == 0) {
      continue;
    }
    fdio::ReadResult r = driver.ReadInput();
    if (r.stop == fdio::ReadStop::kEof || r.stop == fdio::ReadStop::kError) return nullptr;
  }
  return nullptr;
}

// Closes `fd` with a TCP reset (SO_LINGER 0).
inline void ResetAndClose(int fd) {
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

// A fixture: a Server on one loop in the test thread (StartEcho), clients on
// the same loop; TearDown closes everything and checks that no fd is left.
class EchoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_before_ = testing::CountOpenFds();
    loop_ = *Loop::Create();
  }
  void TearDown() override {
    // Everything closes: no socket, watch or fd is left behind.
    if (server_ != nullptr && server_->listening()) {
      bool closed = false;
      ASSERT_TRUE(server_->Close([&] { closed = true; }).ok());
      server_->EndAll();
      EXPECT_TRUE(RunUntil(*loop_, [&] { return closed; }));
    }
    server_.reset();
    RunUntil(*loop_, [] { return false; }, absl::Milliseconds(20));
    loop_.reset();
    EXPECT_EQ(testing::CountOpenFds(), fds_before_);
  }

  void StartEcho(ServerOptions o = ServerFor(), const std::string& host = "127.0.0.1") {
    handlers_.on_secure_connection = [this](std::shared_ptr<TlsSocket> s) {
      ++secure_connections_;
      EchoOn(s);
    };
    handlers_.on_client_error = [this](const absl::Status& e, TlsSocket&) { client_errors_.push_back(e); };
    server_ = *Server::Create({loop_.get()}, std::move(o), handlers_);
    ASSERT_TRUE(server_->Listen(0, host).ok());
    port_ = server_->address()->port;
  }

  // Connects a client and runs until it is secure.
  std::shared_ptr<TlsSocket> ConnectSecure(TlsSocketOptions o) {
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), std::move(o));
    auto secure = std::make_shared<bool>(false);
    c->handlers().on_secure_connect = [secure] { *secure = true; };
    c->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
    EXPECT_TRUE(RunUntil(*loop_, [&] { return *secure; })) << "no secureConnect";
    return c;
  }

  // Writes `text` and runs until the echo has come back whole.
  bool Echoes(const std::shared_ptr<TlsSocket>& c, const std::string& text) {
    std::string got;
    c->handlers().on_data = [&got](absl::string_view d) { got.append(d.data(), d.size()); };
    c->Write(text);
    bool ok = RunUntil(*loop_, [&] { return got.size() >= text.size(); });
    c->handlers().on_data = nullptr;
    return ok && got == text;
  }

  int fds_before_ = 0;
  std::unique_ptr<Loop> loop_;
  ServerHandlers handlers_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  int secure_connections_ = 0;
  std::vector<absl::Status> client_errors_;
};

}  // namespace testing
}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_
