// plain_echo: the loopback benchmark's baseline, a TLS echo server written
// directly on OpenSSL (SSL_set_fd) and epoll with the settings careful
// servers use: one SSL_CTX built once and shared by every loop (so tickets
// resume on any loop), SSL_MODE_RELEASE_BUFFERS, a 16 KB application buffer
// per connection, TCP_NODELAY. N loops are N threads, each with its own
// epoll and an SO_REUSEPORT listener on the same port.
//
//   plain_echo --key=k1.pem,k2.pem --cert=c1-chain.pem,c2-chain.pem [--loops=N]
//
// Prints "port N" and serves until its stdin is closed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/echo_flags.h"
#include "bench/ossl.h"

namespace tlsengine {
namespace bench {
namespace {

constexpr size_t kAppBuffer = 16 * 1024;

struct Conn {
  int fd = -1;
  SslPtr ssl;
  std::unique_ptr<char[]> buf{new char[kAppBuffer]};  // the application's buffer
  size_t pending = 0;                                 // bytes of buf still to echo
  uint32_t events = 0;                                // what epoll is armed for
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "plain_echo: %s\n", what.c_str());
  return 1;
}

int Listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 511) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class EchoLoop {
 public:
  EchoLoop(SSL_CTX* ctx, int listen_fd) : ctx_(ctx), listen_fd_(listen_fd), ep_(epoll_create1(EPOLL_CLOEXEC)) {}

  void Run() {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listener
    epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev);
    epoll_event events[256];
    for (;;) {
      int n = epoll_wait(ep_, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == nullptr) Accept();
        else Serve(static_cast<Conn*>(events[i].data.ptr));
      }
    }
  }

 private:
  void Accept() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto* c = new Conn;  // owned by the epoll registration until Close()
      c->fd = fd;
      c->ssl.reset(SSL_new(ctx_));
      SSL_set_fd(c->ssl.get(), fd);
      SSL_set_accept_state(c->ssl.get());
      Arm(c, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void Arm(Conn* c, uint32_t events, int op = EPOLL_CTL_MOD) {
    if (op == EPOLL_CTL_MOD && c->events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep_, op, c->fd, &ev);
    c->events = events;
  }

  void Close(Conn* c) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    delete c;
  }

  // Echoes until OpenSSL wants the socket; arms epoll for what it wants.
  void Serve(Conn* c) {
    SSL* ssl = c->ssl.get();
    for (;;) {
      ERR_clear_error();
      if (c->pending > 0) {
        int w = SSL_write(ssl, c->buf.get(), static_cast<int>(c->pending));
        if (w <= 0) {
          int e = SSL_get_error(ssl, w);
          if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLOUT);
          if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
          return Close(c);
        }
        c->pending = 0;
      }
      int r = SSL_read(ssl, c->buf.get(), kAppBuffer);
      if (r > 0) {
        c->pending = r;
        continue;
      }
      int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
      if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLOUT);
      if (e == SSL_ERROR_ZERO_RETURN) SSL_shutdown(ssl);  // answer close_notify
      return Close(c);
    }
  }

  SSL_CTX* ctx_;
  int listen_fd_;
  int ep_;
};

int Main(int argc, char** argv) {
  EchoFlags flags;
  if (!ParseEchoFlags(argc, argv, "plain_echo", &flags)) return 1;
  const std::vector<std::string>& keys = flags.keys;
  const std::vector<std::string>& certs = flags.certs;
  const int loops = flags.loops;
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // No internal session cache: tickets only, as the engine's server.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), certs[i].c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), keys[i].c_str(), SSL_FILETYPE_PEM) != 1) {
      return Fail("cannot load " + certs[i] + " / " + keys[i]);
    }
  }
  int first = Listener(0);
  if (first < 0) return Fail("cannot listen on 127.0.0.1");
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(first, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  std::vector<int> fds = {first};
  for (int i = 1; i < loops; ++i) {
    int fd = Listener(port);
    if (fd < 0) return Fail("cannot listen again on the port (SO_REUSEPORT)");
    fds.push_back(fd);
  }
  std::vector<std::thread> threads;
  for (int fd : fds) {
    threads.emplace_back([ctx = ctx.get(), fd] { EchoLoop(ctx, fd).Run(); });
  }
  std::printf("port %d\n", port);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  _exit(0);  // the loops never return; no teardown needed by a benchmark server
}

}  // namespace
}  // namespace bench
}  // namespace tlsengine

int main(int argc, char** argv) { return tlsengine::bench::Main(argc, argv); }
