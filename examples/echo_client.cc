// echo_client: Node's tls.connect() on the epoll adapter. Verifies the server
// against a CA (and its certificate against HOST), then pipes stdin to the
// socket and the socket to stdout:
//
//   const socket = tls.connect(port, host, {ca}, () => process.stdin.pipe(socket));
//   socket.pipe(process.stdout);
//
// At the end of stdin it ends (close_notify) and exits once the server has
// ended too. A server it does not trust fails the handshake with the
// verification code (UNABLE_TO_GET_ISSUER_CERT_LOCALLY, ...) and exit status 1.
//
//   echo_client HOST PORT CA_FILE < lines.txt
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "adapters/epoll/loop.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "echo_client: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: echo_client HOST PORT CA_FILE\n"), 2;
  std::stringstream ca;
  ca << std::ifstream(argv[3]).rdbuf();
  SecureContextOptions ctx_opts;
  ctx_opts.ca = std::vector<std::string>{ca.str()};  // trust this CA only
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return Fail(ctx.status());
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) return Fail(loop.status());
  epoll::Loop* l = loop->get();

  epoll::TlsSocketOptions options;  // reject_unauthorized is on by default, as in Node
  options.host = argv[1];           // also the name the certificate must carry (and SNI)
  options.port = std::atoi(argv[2]);
  options.tls.secure_context = *ctx;
  options.tls.handshake_timeout = absl::Seconds(10);  // a silent server: ERR_TLS_HANDSHAKE_TIMEOUT
  absl::StatusOr<std::shared_ptr<epoll::TlsSocket>> socket = epoll::TlsSocket::Connect(l, options);
  if (!socket.ok()) return Fail(socket.status());  // bad options only; network errors come as on_error
  epoll::TlsSocket* s = socket->get();             // alive until its on_close

  // stdin -> socket: stdin is one more fd on the loop. While the socket
  // holds more than its high-water mark, stop reading stdin until 'drain'.
  bool reading_stdin = false;
  auto stop_stdin = [&] {
    if (reading_stdin) l->Unwatch(0).IgnoreError();  // cannot fail: it is watched
    reading_stdin = false;
  };
  auto read_stdin = [&](epoll::Ready) {
    char buf[16384];
    ssize_t n = read(0, buf, sizeof(buf));
    if (n > 0 && !s->Write(absl::string_view(buf, n))) l->Modify(0, epoll::Interest{}).IgnoreError();
    if (n == 0 || (n < 0 && errno != EINTR)) {
      stop_stdin();
      s->End();  // close_notify after everything written
    }
  };

  bool failed = false;
  epoll::SocketHandlers& h = s->handlers();
  h.on_secure_connect = [&] {
    std::fprintf(stderr, "connected: %s %s, authorized: %d\n", s->protocol().c_str(), s->GetCipher()->name.c_str(),
                 s->authorized());
    reading_stdin = l->Watch(0, epoll::Interest{true, false}, read_stdin).ok();
    if (!reading_stdin) {  // epoll refuses regular files; they never block, so read it all now
      std::stringstream all;
      all << std::cin.rdbuf();
      s->End(all.str());
    }
  };
  h.on_drain = [&] {
    if (reading_stdin) l->Modify(0, epoll::Interest{true, false}).IgnoreError();
  };
  h.on_data = [](absl::string_view data) {  // socket -> stdout
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);
  };
  h.on_error = [&](const absl::Status& e) {  // ECONNREFUSED, CERT_HAS_EXPIRED, ...
    failed = true;
    Fail(e);
  };
  h.on_close = [&](bool) {
    stop_stdin();
    l->Stop();
  };
  if (absl::Status run = l->Run(); !run.ok()) return Fail(run);
  return failed ? 1 : 0;
}
