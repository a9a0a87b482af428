// Test helpers for the epoll adapter: a loop run with a bound, contexts from
// the test PKI, an echo server, and counting open fds.
#ifndef TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_
#define TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_

#include <dirent.h>
#include <sys/resource.h>

#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/socket.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace epoll {
namespace testing {

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

// Echo: every server socket writes back what it reads and ends when the
// peer ends.
inline void EchoOn(const std::shared_ptr<TlsSocket>& s) {
  TlsSocket* raw = s.get();
  s->handlers().on_data = [raw](absl::string_view d) { raw->Write(d); };
}

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

inline bool RaiseFdLimit(rlim_t want) {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return false;
  if (r.rlim_cur >= want) return true;
  r.rlim_cur = want < r.rlim_max ? want : r.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur >= want;
}

}  // namespace testing
}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_EPOLL_TESTLIB_H_
