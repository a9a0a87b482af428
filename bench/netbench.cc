// netbench: the loopback benchmark (bench/README.md, "Over sockets"). It
// starts three TLS echo servers on 127.0.0.1 (engine_echo on the epoll
// adapter, plain_echo on OpenSSL + epoll, Node's tls.createServer), drives
// each with the same non-blocking OpenSSL client (several connections in
// flight), and charges every figure to the SERVER process's own CPU time
// (/proc/PID/stat utime + stime) and resident memory (/proc/PID/statm),
// never to the client's wall time: client and servers share two cores.
//
//   netbench --certs=tests/certs            the full table (about 4 minutes)
//   netbench --quick                        tiny counts, a few seconds (CI)
//   netbench --help
//
// Every load loop is bounded in count and in time and stops by itself.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/machine.h"
#include "bench/ossl.h"

#if defined(__SANITIZE_ADDRESS__)
#define TLSENGINE_NETBENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSENGINE_NETBENCH_ASAN 1
#endif
#endif
#ifndef TLSENGINE_NETBENCH_ASAN
#define TLSENGINE_NETBENCH_ASAN 0
#endif

namespace tlsengine {
namespace bench {
namespace {

constexpr char kUsage[] =
    "usage: netbench [--certs=DIR] [--rounds=N] [--seconds=S] [--quick] [--results=FILE] [--csv=FILE]\n"
    "                [--label=TEXT] [--engine=PATH] [--plain=PATH] [--node-script=PATH] [--node=PATH]\n"
    "                [--in-flight=N] [--big=N]\n"
    "       netbench --drive=PORT [--handshakes=N] [--mb=M] [--hold=N]   (a fixed load, for a profiler)\n"
    "  --certs=DIR        tests/certs (default: tests/certs)\n"
    "  --rounds=N         rounds per figure, alternating engine, plain, node (default 3)\n"
    "  --seconds=S        length of one measurement in wall seconds (default 1.5)\n"
    "  --quick            tiny counts, 1 round, memory at 50 connections (CI)\n"
    "  --results=FILE     append the table to FILE (markdown), dated\n"
    "  --csv=FILE         write the medians as CSV (for bench/chart.py)\n"
    "  --label=TEXT       the heading of that section\n"
    "  --engine=PATH      the epoll adapter's echo server (default bench/engine_echo)\n"
    "  --plain=PATH       the plain OpenSSL echo server (default bench/plain_echo)\n"
    "  --node-script=PATH Node's echo server (default bench/node_echo.js)\n"
    "  --node=PATH        the node binary (default: node on PATH, then /usr/bin/node)\n"
    "  --in-flight=N      handshakes in flight at once (default 8)\n"
    "  --big=N            the larger idle-connection count (default 5000)\n"
    "  --drive=PORT       drive a server already listening on 127.0.0.1:PORT (e.g. under valgrind)\n"
    "                     with a fixed load and exit: --handshakes full TLS 1.3 ECDSA handshakes\n"
    "                     (default 200), then --mb MB echoed in 16 KB writes over 4 connections\n"
    "                     (default 0), then --hold idle handshaked connections held for 2 s (default 0)\n";

struct Options {
  std::string certs = "tests/certs";
  int rounds = 3;
  double seconds = 1.5;
  bool quick = false;
  std::string results, csv, label;
  std::string engine = "bench/engine_echo";
  std::string plain = "bench/plain_echo";
  std::string node_script = "bench/node_echo.js";
  std::string node;
  int in_flight = 8;
  int big = 5000;
  int drive = 0;  // --drive=PORT: the fixed load only
  int handshakes = 200;
  int mb = 0;
  int hold = 0;
};

// ---- The server process: start, port, CPU and memory ----

class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& name,
                                                               std::vector<std::string> argv) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe");
    pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork");
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    auto p = std::unique_ptr<ServerProcess>(new ServerProcess(name, pid, in[1]));
    // "port N\n" within 30 s (a cold start under ASan is slow).
    std::string line;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (line.find('\n') == std::string::npos) {
      pollfd pfd{out[0], POLLIN, 0};
      int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
      char buf[64];
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, n);
    }
    close(out[0]);
    if (!absl::SimpleAtoi(line.substr(0, line.find('\n')).substr(line.rfind("port ", 0) == 0 ? 5 : 0), &p->port_) ||
        p->port_ <= 0) {
      return absl::UnavailableError(absl::StrCat(name, " did not start (", argv[0], "): '", line, "'"));
    }
    return p;
  }

  ~ServerProcess() {
    if (pid_ == 0) return;  // External
    close(stdin_fd_);  // the servers exit when their stdin closes
    for (int i = 0; i < 50; ++i) {  // 5 s at most, then SIGKILL
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(100000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  // A server this process did not start (--drive): its port only; CPU and
  // memory read 0.
  static std::unique_ptr<ServerProcess> External(int port) {
    auto p = std::unique_ptr<ServerProcess>(new ServerProcess("external", 0, -1));
    p->port_ = port;
    return p;
  }

  // utime + stime of the whole process (all threads), in seconds.
  double CpuSeconds() const {
    if (pid_ == 0) return 0;
    std::ifstream in(absl::StrCat("/proc/", pid_, "/stat"));
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close_paren = s.rfind(')');  // comm may hold spaces
    if (close_paren == std::string::npos) return 0;
    std::vector<std::string> f;
    std::string rest = s.substr(close_paren + 2), field;
    for (char ch : rest) {
      if (ch == ' ') f.push_back(field), field.clear();
      else field += ch;
    }
    // After ")": state is field 3 of stat(5), so utime (14) is f[11], stime (15) f[12].
    if (f.size() < 13) return 0;
    return (std::stod(f[11]) + std::stod(f[12])) / sysconf(_SC_CLK_TCK);
  }

  // Resident set size in KB.
  double RssKb() const {
    if (pid_ == 0) return 0;
    std::ifstream in(absl::StrCat("/proc/", pid_, "/statm"));
    long size = 0, resident = 0;
    in >> size >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024.0);
  }

  const std::string& name() const { return name_; }
  int port() const { return port_; }

 private:
  ServerProcess(std::string name, pid_t pid, int stdin_fd) : name_(std::move(name)), pid_(pid), stdin_fd_(stdin_fd) {}
  std::string name_;
  pid_t pid_;
  int stdin_fd_;
  int port_ = 0;
};

// ---- The client: non-blocking OpenSSL connections on one epoll ----

// What one kind of connection negotiates.
struct Flavor {
  std::string name;
  int max_version = TLS1_3_VERSION;
  std::string sigalgs;  // picks the server's certificate
  std::string cipher12 = "ECDHE-ECDSA-AES128-GCM-SHA256";
};

absl::StatusOr<SslCtxPtr> ClientContext(const Flavor& f) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return absl::InternalError("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), f.max_version == TLS1_2_VERSION ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), f.max_version);
  // The client's work is not measured; it trusts the server without
  // checking the chain, so that it spends less of the shared cores.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (// X25519 is the key exchange; P-256 is listed because TLS 1.2 also
      // checks an ECDSA certificate's curve against it (RFC 8422 §5.1.1).
      SSL_CTX_set1_groups_list(ctx.get(), "X25519:P-256") != 1 ||
      SSL_CTX_set_ciphersuites(ctx.get(), "TLS_AES_128_GCM_SHA256") != 1 ||
      SSL_CTX_set_cipher_list(ctx.get(), f.cipher12.c_str()) != 1 ||
      (!f.sigalgs.empty() && SSL_CTX_set1_sigalgs_list(ctx.get(), f.sigalgs.c_str()) != 1)) {
    return absl::InvalidArgumentError(absl::StrCat(f.name, ": client settings refused"));
  }
  // No client cache: with one, OpenSSL marks a TLS 1.3 session not
  // resumable once a resumption with it brings a new ticket, and the one
  // ticket netbench offers again and again would stop resuming.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

// One connection's job: connect, handshake (offering `session` if set),
// echo `echo_bytes` in `write_size` writes with at most `window` unanswered,
// then close, or stay open idle when `hold`.
struct Job {
  SSL_CTX* ctx = nullptr;
  SSL_SESSION* session = nullptr;
  int64_t echo_bytes = 1;
  size_t write_size = 1;
  size_t window = 64 * 1024;
  bool hold = false;
};

struct Done {
  bool ok = false;
  bool resumed = false;
  std::string protocol, cipher;
  SslSessionPtr session;  // the session it ended with (tickets included)
};

class Client {
 public:
  Client() : ep_(epoll_create1(EPOLL_CLOEXEC)), wbuf_(16 * 1024, 'x'), rbuf_(64 * 1024) {}
  ~Client() {
    CloseAll();
    close(ep_);
  }

  // Starts one connection to 127.0.0.1:port.
  void Open(int port, const Job& job) {
    auto c = std::make_unique<Conn>();
    c->job = job;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(c->fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    c->ssl.reset(SSL_new(job.ctx));
    SSL_set_fd(c->ssl.get(), c->fd);
    if (job.session != nullptr) SSL_set_session(c->ssl.get(), job.session);  // takes a reference
    c->state = (r == 0) ? State::kHandshake : State::kConnecting;
    if (r != 0 && errno != EINPROGRESS) c->state = State::kFailed;
    Conn* raw = c.get();
    size_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      conns_[slot] = std::move(c);
    } else {
      slot = conns_.size();
      conns_.push_back(std::move(c));
    }
    raw->slot = slot;
    ++active_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = slot;
    raw->events = ev.events;
    epoll_ctl(ep_, EPOLL_CTL_ADD, raw->fd, &ev);
    if (raw->state == State::kFailed) Finish(raw);
  }

  // Runs at least one wait of at most 10 ms, then until `stop()` is true or
  // `deadline`. Finished jobs (held ones included) go to TakeDone();
  // connections keep going after Run returns.
  void Run(absl::Time deadline, const std::function<bool()>& stop) {
    epoll_event events[256];
    do {  // at least one wait, so that a caller looping on Run makes progress
      int n = epoll_wait(ep_, events, 256, 10);
      for (int i = 0; i < n; ++i) {
        size_t slot = events[i].data.u64;
        if (slot < conns_.size() && conns_[slot]) Step(conns_[slot].get());
      }
    } while (!stop() && absl::Now() < deadline);
  }

  // Plaintext bytes the servers have echoed back, over all connections.
  int64_t echoed() const { return echoed_; }
  // Connections open (in progress or held).
  int active() const { return active_; }
  int held() const { return held_; }
  // Every connection whose job ended (ok or not) since the last call.
  std::vector<Done> TakeDone() { return std::exchange(done_, {}); }

  // Makes every held connection echo `bytes` more (bulk after the handshakes).
  void EchoOnHeld(int64_t bytes, size_t write_size) {
    for (auto& c : conns_) {
      if (!c || c->state != State::kIdle) continue;
      c->state = State::kEcho;
      c->job.echo_bytes = c->sent + bytes;
      c->job.write_size = write_size;
      --held_;
      Rearm(c.get(), EPOLLIN | EPOLLOUT);
    }
  }

  // Closes every connection at once (close_notify, then close).
  void CloseAll() {
    for (auto& c : conns_) {
      if (c) Drop(c.get());
    }
    held_ = 0;
  }

 private:
  enum class State { kConnecting, kHandshake, kEcho, kIdle, kFailed };
  struct Conn {
    int fd = -1;
    size_t slot = 0;
    SslPtr ssl;
    Job job;
    State state = State::kConnecting;
    int64_t sent = 0, received = 0;
    uint32_t events = 0;
  };

  void Rearm(Conn* c, uint32_t events) {
    if (c->events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c->slot;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
  }

  // Arms epoll for what OpenSSL asked; false for a fatal error.
  bool Want(Conn* c, int ret) {
    int e = SSL_get_error(c->ssl.get(), ret);
    if (e == SSL_ERROR_WANT_READ) return Rearm(c, EPOLLIN), true;
    if (e == SSL_ERROR_WANT_WRITE) return Rearm(c, EPOLLIN | EPOLLOUT), true;
    return false;
  }

  void Step(Conn* c) {
    SSL* ssl = c->ssl.get();
    ERR_clear_error();
    if (c->state == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Fail(c);
      c->state = State::kHandshake;
    }
    if (c->state == State::kHandshake) {
      int r = SSL_connect(ssl);
      if (r != 1) {
        if (!Want(c, r)) Fail(c);
        return;
      }
      c->state = State::kEcho;
    }
    if (c->state == State::kIdle) {  // read whatever comes (tickets), keep quiet
      int r = SSL_read(ssl, rbuf_.data(), static_cast<int>(rbuf_.size()));
      if (r <= 0 && !Want(c, r)) Fail(c);
      return;
    }
    // kEcho: write while the window allows, read until OpenSSL wants more.
    bool blocked_write = false;
    while (c->sent < c->job.echo_bytes && c->sent - c->received < static_cast<int64_t>(c->job.window)) {
      int n = static_cast<int>(std::min<int64_t>(c->job.write_size, c->job.echo_bytes - c->sent));
      int w = SSL_write(ssl, wbuf_.data(), n);
      if (w <= 0) {
        if (!Want(c, w)) return Fail(c);
        blocked_write = SSL_get_error(ssl, w) == SSL_ERROR_WANT_WRITE;
        break;
      }
      c->sent += w;
    }
    for (;;) {
      int r = SSL_read(ssl, rbuf_.data(), static_cast<int>(rbuf_.size()));
      if (r > 0) {
        c->received += r;
        echoed_ += r;
        continue;
      }
      if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) return Fail(c);
      break;
    }
    if (c->received >= c->job.echo_bytes) return Finish(c);
    Rearm(c, blocked_write || (c->sent < c->job.echo_bytes &&
                               c->sent - c->received < static_cast<int64_t>(c->job.window))
                 ? EPOLLIN | EPOLLOUT
                 : EPOLLIN);
  }

  void Report(Conn* c, bool ok) {
    Done d;
    d.ok = ok;
    if (ok) {
      d.resumed = SSL_session_reused(c->ssl.get()) == 1;
      d.protocol = SSL_get_version(c->ssl.get());
      const SSL_CIPHER* cipher = SSL_get_current_cipher(c->ssl.get());
      d.cipher = cipher ? SSL_CIPHER_get_name(cipher) : "";
      if (done_.empty()) d.session.reset(SSL_get1_session(c->ssl.get()));  // the first one is enough
    }
    done_.push_back(std::move(d));
  }

  void Finish(Conn* c) {
    if (c->state == State::kFailed) {
      Report(c, false);
      return Drop(c);
    }
    Report(c, true);
    if (c->job.hold) {
      c->state = State::kIdle;
      ++held_;
      Rearm(c, EPOLLIN);
      return;
    }
    SSL_shutdown(c->ssl.get());  // close_notify; the answer is not awaited
    Drop(c);
  }

  void Fail(Conn* c) {
    c->state = State::kFailed;
    Finish(c);
  }

  void Drop(Conn* c) {
    if (c->state == State::kIdle) --held_;
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    size_t slot = c->slot;
    conns_[slot].reset();
    free_.push_back(slot);
    --active_;
  }

  int ep_;
  std::string wbuf_;
  std::vector<char> rbuf_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<size_t> free_;
  std::vector<Done> done_;
  int active_ = 0, held_ = 0;
  int64_t echoed_ = 0;
};

// ---- Measurements ----

struct Sample {
  double value = 0;     // per the figure's unit
  double load = 0;      // server CPU s / (wall s x loops): 1 is full load
  double resumed = 0;   // fraction of handshakes resumed
  double per_wall = 0;  // units per wall second
  std::string negotiated;
  bool ok = false;
};

struct Budget {
  absl::Duration time;
  int64_t count;  // handshakes, or bytes for bulk
};

// Full or resumed handshakes with `in_flight` at once; each echoes one byte
// so that the server has sent its tickets. value: server CPU µs per handshake.
Sample MeasureHandshakes(ServerProcess& server, int loops, SSL_CTX* ctx, SSL_SESSION* session, int in_flight,
                         Budget budget) {
  Client client;
  Job job;
  job.ctx = ctx;
  job.session = session;
  int64_t started = 0, done = 0, resumed = 0, failed = 0;
  std::string negotiated;
  const double cpu0 = server.CpuSeconds();
  const absl::Time t0 = absl::Now(), deadline = t0 + budget.time;
  while (done + failed < budget.count && absl::Now() < deadline) {
    while (client.active() < in_flight && started < budget.count) {
      client.Open(server.port(), job);
      ++started;
    }
    client.Run(deadline, [&] { return client.active() < in_flight; });
    for (Done& d : client.TakeDone()) {
      if (!d.ok) {
        ++failed;
        continue;
      }
      ++done;
      resumed += d.resumed;
      if (negotiated.empty()) negotiated = absl::StrCat(d.protocol, " ", d.cipher);
    }
    if (failed > 10 && failed > done) break;  // the server refuses: stop early
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = server.CpuSeconds() - cpu0;
  client.CloseAll();
  Sample s;
  s.ok = done > 0 && failed == 0;
  s.value = done > 0 ? 1e6 * cpu / done : 0;
  s.load = cpu / (wall * loops);
  s.resumed = done > 0 ? double(resumed) / done : 0;
  s.per_wall = done / wall;
  s.negotiated = negotiated + (failed ? absl::StrCat(", ", failed, " failed") : "");
  return s;
}

// `conns` connections echoing 16 KB writes (4 writes unanswered each) for
// the budget; the handshakes come before the clock starts. value: server
// CPU µs per MB echoed.
Sample MeasureBulk(ServerProcess& server, int loops, SSL_CTX* ctx, int conns, Budget budget) {
  Client client;
  Job job;
  job.ctx = ctx;
  job.hold = true;
  for (int i = 0; i < conns; ++i) client.Open(server.port(), job);
  client.Run(absl::Now() + absl::Seconds(20), [&] { return client.held() >= conns || client.active() < conns; });
  Sample s;
  if (client.held() < conns) {
    s.negotiated = "connections failed";
    return s;
  }
  const int64_t echoed0 = client.echoed();
  const double cpu0 = server.CpuSeconds();
  const absl::Time t0 = absl::Now();
  client.EchoOnHeld(budget.count, 16 * 1024);
  client.Run(t0 + budget.time, [&] { return client.echoed() - echoed0 >= budget.count * conns; });
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = server.CpuSeconds() - cpu0;
  const double mb = (client.echoed() - echoed0) / 1e6;
  client.CloseAll();
  s.ok = mb > 0;
  s.value = mb > 0 ? 1e6 * cpu / mb : 0;
  s.load = cpu / (wall * loops);
  s.per_wall = mb / wall;
  s.negotiated = "16 KB writes";
  return s;
}

// Resident KB per idle handshaked connection: RSS with `n` connections held
// (each handshaked and one byte echoed) minus RSS before, over n.
Sample MeasureIdle(ServerProcess& server, SSL_CTX* ctx, int n, int in_flight) {
  Client client;
  Job job;
  job.ctx = ctx;
  // Warm up: a few connections come and go, so that lazy setup is not counted.
  MeasureHandshakes(server, 1, ctx, nullptr, in_flight, {absl::Seconds(10), 50});
  usleep(200000);
  const double rss0 = server.RssKb();
  job.hold = true;
  int opened = 0, failed = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (client.held() < n && absl::Now() < deadline) {
    while (opened < n && client.active() - client.held() < in_flight) {
      client.Open(server.port(), job);
      ++opened;
    }
    client.Run(deadline, [&] { return client.active() - client.held() < in_flight || client.held() >= n; });
    for (Done& d : client.TakeDone()) failed += !d.ok;
    if (failed > 0) break;
  }
  // Let the server settle (tickets written, buffers released), still held.
  client.Run(absl::Now() + absl::Milliseconds(500), [] { return false; });
  Sample s;
  s.ok = client.held() == n;
  s.value = s.ok ? (server.RssKb() - rss0) / n : 0;
  s.negotiated = absl::StrCat(client.held(), " held");
  client.CloseAll();
  return s;
}

// ---- The table ----

struct Cells {
  std::vector<double> values;
  std::vector<double> loads;
  std::string negotiated;
  bool failed = false;
  bool measured = false;
  std::string why_not;  // "n/a (...)" when not measured
  double Median() const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double MinLoad() const { return loads.empty() ? 1 : *std::min_element(loads.begin(), loads.end()); }
  void Add(const Sample& s) {
    measured = true;
    if (!s.ok) failed = true;
    values.push_back(s.value);
    if (s.load > 0) loads.push_back(s.load);
    if (negotiated.empty()) negotiated = s.negotiated;
  }
};

std::string Num(double v) {
  return v >= 100 ? absl::StrFormat("%.0f", v) : v >= 10 ? absl::StrFormat("%.1f", v) : absl::StrFormat("%.2f", v);
}

std::string CellText(const Cells& c) {
  if (!c.measured) return c.why_not.empty() ? "n/a" : c.why_not;
  if (c.failed) return absl::StrCat("failed (", c.negotiated, ")");
  std::string out = Num(c.Median());
  if (c.values.size() > 1) {
    auto [lo, hi] = std::minmax_element(c.values.begin(), c.values.end());
    absl::StrAppend(&out, " [", Num(*lo), "..", Num(*hi), "]");
  }
  if (c.MinLoad() < 0.9) absl::StrAppend(&out, " (load ", absl::StrFormat("%.0f%%", 100 * c.MinLoad()), ")");
  return out;
}

std::string Ratio(const Cells& a, const Cells& b) {
  if (!a.measured || !b.measured || a.failed || b.failed || b.Median() <= 0) return "n/a";
  return absl::StrFormat("%.2f", a.Median() / b.Median());
}

constexpr int kEngine = 0, kPlain = 1, kNode = 2;
const char* const kServerNames[3] = {"engine", "plain", "node"};

struct Row {
  std::string name, title;
  Cells cells[3];
};

std::string Table(const std::vector<Row>& rows) {
  std::string out =
      "| name | figure | engine (epoll adapter) | plain OpenSSL | Node | engine/plain | engine/node |\n"
      "|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    std::string title = r.title;
    for (const Cells& c : r.cells) {
      if (!c.negotiated.empty() && !c.failed) {
        absl::StrAppend(&title, " (", c.negotiated, ")");
        break;
      }
    }
    absl::StrAppend(&out, "| ", r.name, " | ", title, " | ", CellText(r.cells[0]), " | ", CellText(r.cells[1]), " | ",
                    CellText(r.cells[2]), " | ", Ratio(r.cells[0], r.cells[1]), " | ", Ratio(r.cells[0], r.cells[2]),
                    " |\n");
  }
  return out;
}

std::string Csv(const std::vector<Row>& rows) {
  std::string out = "name,engine,plain,node\n";
  for (const Row& r : rows) {
    absl::StrAppend(&out, r.name);
    for (const Cells& c : r.cells) {
      absl::StrAppend(&out, ",", c.measured && !c.failed ? absl::StrFormat("%.4g", c.Median()) : "");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string NodeBinary(const Options& o) {
  if (!o.node.empty()) return o.node;
  for (const char* dir : {"/usr/local/bin", "/usr/bin"}) {
    std::string p = absl::StrCat(dir, "/node");
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string Version(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "unknown";
  char buf[128] = {0};
  std::string out = fgets(buf, sizeof(buf), p) ? buf : "unknown";
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

template <typename T>
absl::Status Assign(T* out, absl::StatusOr<T> v) {
  if (!v.ok()) return v.status();
  *out = *std::move(v);
  return absl::OkStatus();
}
// lhs = *expr, or return its error.
#define ASSIGN(lhs, expr)                                                 \
  do {                                                                    \
    if (absl::Status st_ = Assign(&(lhs), (expr)); !st_.ok()) return st_; \
  } while (0)

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o) {}

  absl::Status Run(std::vector<Row>* rows, std::vector<std::string>* notes) {
    const std::string c = o_.certs + "/";
    keys_ = c + "server-ecdsa-key.pem," + c + "server-rsa-key.pem";
    certs_ = c + "server-ecdsa-chain.pem," + c + "server-rsa-chain.pem";
    node_ = NodeBinary(o_);

    Flavor ecdsa13{"hs13_ecdsa", TLS1_3_VERSION, "ecdsa_secp256r1_sha256"};
    Flavor rsa13{"hs13_rsa", TLS1_3_VERSION, "rsa_pss_rsae_sha256"};
    Flavor ecdsa12{"hs12_ecdsa", TLS1_2_VERSION, "ecdsa_secp256r1_sha256"};
    ASSIGN(ctx_ecdsa13_, ClientContext(ecdsa13));
    ASSIGN(ctx_rsa13_, ClientContext(rsa13));
    ASSIGN(ctx_ecdsa12_, ClientContext(ecdsa12));

    // One process of each server for the rate figures, 1 loop each.
    std::unique_ptr<ServerProcess> servers[3];
    for (int i = 0; i < 3; ++i) {
      auto s = StartServer(i, 1);
      if (!s.ok()) {
        if (i == kNode) {
          notes->push_back(absl::StrCat("node: ", s.status().message()));
          continue;
        }
        return s.status();
      }
      servers[i] = *std::move(s);
    }
    const Budget hs{absl::Seconds(o_.quick ? 5 : o_.seconds), o_.quick ? 10 : 1000000};
    const Budget bulk{absl::Seconds(o_.quick ? 5 : o_.seconds), o_.quick ? (1 << 20) : (int64_t(1) << 40)};
    const int rounds = o_.quick ? 1 : o_.rounds;

    struct RateFigure {
      std::string name, title;
      std::function<Sample(ServerProcess&)> measure;
    };
    std::vector<RateFigure> figures = {
        {"hs13_ecdsa", "server CPU µs per full handshake, TLS 1.3, ECDSA P-256, X25519",
         [&](ServerProcess& s) { return MeasureHandshakes(s, 1, ctx_ecdsa13_.get(), nullptr, o_.in_flight, hs); }},
        {"hs13_rsa", "server CPU µs per full handshake, TLS 1.3, RSA 2048, X25519",
         [&](ServerProcess& s) { return MeasureHandshakes(s, 1, ctx_rsa13_.get(), nullptr, o_.in_flight, hs); }},
        {"resume13", "server CPU µs per resumed handshake, TLS 1.3 ticket, ECDSA P-256, X25519",
         [&](ServerProcess& s) { return Resumed(s, 1, hs); }},
        {"hs12_ecdsa", "server CPU µs per full handshake, TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256, X25519",
         [&](ServerProcess& s) { return MeasureHandshakes(s, 1, ctx_ecdsa12_.get(), nullptr, o_.in_flight, hs); }},
        {"echo_16k", "server CPU µs per MB echoed, 16 KB writes, 4 connections, TLS_AES_128_GCM_SHA256",
         [&](ServerProcess& s) { return MeasureBulk(s, 1, ctx_ecdsa13_.get(), 4, bulk); }},
    };
    for (const RateFigure& f : figures) {
      Row row{f.name, f.title};
      for (int round = 0; round < rounds; ++round) {
        for (int i = 0; i < 3; ++i) {
          if (!servers[i]) continue;
          Sample s = f.measure(*servers[i]);
          row.cells[i].Add(s);
          if (f.name == "resume13" && s.ok && s.resumed < 0.99) {
            notes->push_back(absl::StrFormat("resume13 %s: only %.0f%% resumed", kServerNames[i], 100 * s.resumed));
          }
        }
      }
      for (int i = 0; i < 3; ++i) {
        if (!servers[i]) row.cells[i].why_not = "n/a (no node)";
      }
      Progress(row);
      rows->push_back(std::move(row));
    }
    for (auto& s : servers) s.reset();

    // Idle memory: a fresh process per count, so that freed memory of
    // earlier figures does not hide the connections' cost.
    for (int n : {o_.quick ? 50 : 1000, o_.quick ? 100 : o_.big}) {
      Row row{absl::StrCat("idle_kb_", n), absl::StrCat("server resident KB per idle handshaked connection, ", n,
                                                        " held, TLS 1.3 ECDSA")};
      for (int i = 0; i < 3; ++i) {
        if (TLSENGINE_NETBENCH_ASAN && i != kNode) {
          row.cells[i].why_not = "n/a (ASan)";
          continue;
        }
        auto s = StartServer(i, 1);
        if (!s.ok()) {
          row.cells[i].why_not = "n/a (did not start)";
          continue;
        }
        row.cells[i].Add(MeasureIdle(**s, ctx_ecdsa13_.get(), n, o_.in_flight * 4));
      }
      Progress(row);
      rows->push_back(std::move(row));
    }

    // Scale-out: the same server with 1 and with 2 loops, RSA handshakes (the
    // server's signature dominates, so the client can best keep up).
    Row rows_loops[7] = {
        {"hs_cpu_1loop", "RSA 2048 TLS 1.3 handshakes per server CPU second, 1 loop"},
        {"hs_cpu_2loops", "RSA 2048 TLS 1.3 handshakes per server CPU second, 2 loops"},
        {"hs_wall_1loop", "RSA 2048 TLS 1.3 handshakes per wall second, 1 loop"},
        {"hs_wall_2loops", "RSA 2048 TLS 1.3 handshakes per wall second, 2 loops"},
        {"mb_cpu_1loop", "MB echoed per server CPU second, 1 loop, 8 connections"},
        {"mb_cpu_2loops", "MB echoed per server CPU second, 2 loops, 8 connections"},
        {"resume_2loops", "% of ticket handshakes resumed with 2 loops (tickets from any loop)"},
    };
    for (int i : {kEngine, kPlain}) {
      std::unique_ptr<ServerProcess> by_loops[2];
      for (int l = 0; l < 2; ++l) {
        ASSIGN(by_loops[l], StartServer(i, l + 1));
      }
      for (int round = 0; round < rounds; ++round) {
        for (int l = 0; l < 2; ++l) {
          Sample h = MeasureHandshakes(*by_loops[l], l + 1, ctx_rsa13_.get(), nullptr, o_.in_flight * 2, hs);
          Sample cpu = h;
          cpu.value = h.value > 0 ? 1e6 / h.value : 0;  // µs per handshake -> per CPU second
          rows_loops[0 + l].cells[i].Add(cpu);
          Sample wall = h;
          wall.value = h.per_wall;
          rows_loops[2 + l].cells[i].Add(wall);
          Sample b = MeasureBulk(*by_loops[l], l + 1, ctx_ecdsa13_.get(), 8, bulk);
          b.value = b.value > 0 ? 1e6 / b.value : 0;
          rows_loops[4 + l].cells[i].Add(b);
        }
        Sample r = Resumed(*by_loops[1], 2, hs);
        r.value = 100 * r.resumed;
        r.load = 0;
        rows_loops[6].cells[i].Add(r);
      }
    }
    for (Row& r : rows_loops) {
      r.cells[kNode].why_not = "n/a (one thread)";
      Progress(r);
      rows->push_back(std::move(r));
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(int which, int loops) {
    const std::string keys = "--key=" + keys_, certs = "--cert=" + certs_;
    const std::string l = absl::StrCat("--loops=", loops);
    switch (which) {
      case kEngine: return ServerProcess::Start("engine", {o_.engine, keys, certs, l});
      case kPlain: return ServerProcess::Start("plain", {o_.plain, keys, certs, l});
      default:
        if (node_.empty()) return absl::UnavailableError("no node binary");
        return ServerProcess::Start("node", {node_, o_.node_script, keys, certs});
    }
  }

  // A ticket from one full handshake, then handshakes offering it.
  Sample Resumed(ServerProcess& s, int loops, Budget budget) {
    Client client;
    Job job;
    job.ctx = ctx_ecdsa13_.get();
    client.Open(s.port(), job);
    client.Run(absl::Now() + absl::Seconds(10), [&] { return client.active() == 0; });
    std::vector<Done> done = client.TakeDone();
    if (done.empty() || !done[0].ok || !done[0].session) return Sample{};
    Sample out = MeasureHandshakes(s, loops, ctx_ecdsa13_.get(), done[0].session.get(), o_.in_flight, budget);
    if (out.ok && out.resumed < 1) absl::StrAppend(&out.negotiated, absl::StrFormat(", %.0f%% resumed", 100 * out.resumed));
    return out;
  }

  static void Progress(const Row& r) {
    std::fprintf(stderr, "netbench: %s: %s | %s | %s\n", r.name.c_str(), CellText(r.cells[0]).c_str(),
                 CellText(r.cells[1]).c_str(), CellText(r.cells[2]).c_str());
  }

  const Options& o_;
  std::string keys_, certs_, node_;
  SslCtxPtr ctx_ecdsa13_, ctx_rsa13_, ctx_ecdsa12_;
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string key = arg, value;
    if (size_t eq = arg.find('='); eq != std::string::npos) key = arg.substr(0, eq), value = arg.substr(eq + 1);
    bool ok = true;
    if (key == "--help" || key == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (key == "--certs") o->certs = value;
    else if (key == "--rounds") ok = absl::SimpleAtoi(value, &o->rounds) && o->rounds > 0;
    else if (key == "--seconds") ok = absl::SimpleAtod(value, &o->seconds) && o->seconds > 0 && o->seconds <= 60;
    else if (key == "--quick") o->quick = true;
    else if (key == "--results") o->results = value;
    else if (key == "--csv") o->csv = value;
    else if (key == "--label") o->label = value;
    else if (key == "--engine") o->engine = value;
    else if (key == "--plain") o->plain = value;
    else if (key == "--node-script") o->node_script = value;
    else if (key == "--node") o->node = value;
    else if (key == "--in-flight") ok = absl::SimpleAtoi(value, &o->in_flight) && o->in_flight > 0 && o->in_flight <= 256;
    else if (key == "--drive") ok = absl::SimpleAtoi(value, &o->drive) && o->drive > 0 && o->drive < 65536;
    else if (key == "--handshakes") ok = absl::SimpleAtoi(value, &o->handshakes) && o->handshakes >= 0;
    else if (key == "--mb") ok = absl::SimpleAtoi(value, &o->mb) && o->mb >= 0;
    else if (key == "--hold") ok = absl::SimpleAtoi(value, &o->hold) && o->hold >= 0 && o->hold <= 20000;
    else if (key == "--big") ok = absl::SimpleAtoi(value, &o->big) && o->big > 0 && o->big <= 20000;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "netbench: bad argument '%s'\n%s", arg.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

// --drive: a fixed, count-bounded load on a server started elsewhere (under
// callgrind, massif...), so that two servers' profiles cover the same work.
int Drive(const Options& o) {
  std::unique_ptr<ServerProcess> server = ServerProcess::External(o.drive);
  auto ctx = ClientContext(Flavor{"hs13_ecdsa", TLS1_3_VERSION, "ecdsa_secp256r1_sha256"});
  if (!ctx.ok()) return std::fprintf(stderr, "netbench: %s\n", ctx.status().ToString().c_str()), 1;
  const absl::Duration patient = absl::Minutes(10);  // a server under valgrind is slow
  bool ok = true;
  if (o.handshakes > 0) {
    Sample h = MeasureHandshakes(*server, 1, ctx->get(), nullptr, o.in_flight, {patient, o.handshakes});
    std::printf("handshakes: %.0f in %.1f s (%s)\n", h.per_wall > 0 ? o.handshakes : 0.0,
                h.per_wall > 0 ? o.handshakes / h.per_wall : 0, h.negotiated.c_str());
    ok = ok && h.ok;
  }
  if (o.mb > 0) {
    Sample b = MeasureBulk(*server, 1, ctx->get(), 4, {patient, int64_t(o.mb) * 1000000 / 4});
    std::printf("echo: %.1f MB/s wall (%s)\n", b.per_wall, b.negotiated.c_str());
    ok = ok && b.ok;
  }
  if (o.hold > 0) {
    Client client;
    Job job;
    job.ctx = ctx->get();
    job.hold = true;
    int opened = 0;
    const absl::Time deadline = absl::Now() + patient;
    while (client.held() < o.hold && absl::Now() < deadline) {
      while (opened < o.hold && client.active() - client.held() < o.in_flight) {
        client.Open(server->port(), job);
        ++opened;
      }
      client.Run(deadline, [&] { return client.active() - client.held() < o.in_flight || client.held() >= o.hold; });
      for (Done& d : client.TakeDone()) ok = ok && d.ok;
      if (!ok) break;
    }
    client.Run(absl::Now() + absl::Seconds(2), [] { return false; });
    std::printf("held: %d\n", client.held());
    ok = ok && client.held() == o.hold;
  }
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  signal(SIGPIPE, SIG_IGN);
  // Each idle connection needs a descriptor here and one in the server.
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (static_cast<rlim_t>(o.big) * 2 + 100 > lim.rlim_cur) {
    o.big = std::max<int>(100, (static_cast<int>(lim.rlim_cur) - 100) / 2);
  }
  if (o.drive > 0) return Drive(o);
  const absl::Time started = absl::Now();
  std::string header = absl::StrCat(
      MachineHeader(started),
      "Node: ", NodeBinary(o).empty() ? "absent" : Version(NodeBinary(o) + " -p 'process.version + \" (OpenSSL \" + process.versions.openssl + \")\"'"), "\n",
      "build: ", TLSENGINE_NETBENCH_ASAN ? "ASan (timings and memory meaningless)" : "optimised", "\n",
      "method: servers on 127.0.0.1, one C++ OpenSSL client (non-blocking, ", o.in_flight,
      " handshakes in flight); every figure from the server process's own CPU time (/proc/PID/stat utime+stime) "
      "or resident memory (/proc/PID/statm), never the client's wall time; ",
      o.quick ? "tiny counts (--quick)" : absl::StrCat(o.rounds, " rounds alternating engine, plain, node, ", o.seconds, " s each"),
      "; cells are median [min..max]; (load N%) marks a server below 90% of its loops' CPU (the client could not keep it busy); "
      "ratios are engine/peer of the medians (for CPU per unit and KB: below 1 is better for the engine)\n");
  std::cout << header << std::flush;
  std::vector<Row> rows;
  std::vector<std::string> notes;
  Bench bench(o);
  absl::Status status = bench.Run(&rows, &notes);
  std::string table = Table(rows);
  if (!notes.empty()) table += "\n" + absl::StrJoin(notes, "\n") + "\n";
  std::cout << "\n" << table;
  if (!status.ok()) {
    std::fprintf(stderr, "netbench: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("\ntotal: %.1f s\n", absl::ToDoubleSeconds(absl::Now() - started));
  if (!o.csv.empty()) {
    std::ofstream out(o.csv);
    out << Csv(rows);
    if (!out) return std::fprintf(stderr, "netbench: cannot write %s\n", o.csv.c_str()), 1;
  }
  const std::string heading = absl::StrCat("over loopback", o.label.empty() ? "" : ", ", o.label);
  return !o.results.empty() && !AppendResults("netbench", o.results, started, heading, header, table) ? 1 : 0;
}

}  // namespace
}  // namespace bench
}  // namespace tlsengine

int main(int argc, char** argv) { return tlsengine::bench::Main(argc, argv); }
