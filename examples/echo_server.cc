// echo_server: Node's TLS echo server on the epoll adapter, one thread and
// one event loop for any number of clients:
//
//   tls.createServer({key, cert}, (socket) => socket.pipe(socket)).listen(8443);
//
// Each connection sends back what it reads, pausing while the client is slow
// to read it; when the client ends (close_notify) the socket ends too, as
// Node's does without allowHalfOpen.
//
//   echo_server --port 8443 --key server-key.pem --cert server-chain.pem
//   echo_server --port 8443 --pfx server.pfx --passphrase secret
//   echo_server ... --connections 3   (accept 3, exit once they have closed)
// Prints "listening on PORT" once ready (port 0 lets the kernel pick).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "adapters/epoll/loop.h"
#include "adapters/epoll/server.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

std::string Slurp(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "echo_server: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flag;  // --name value
  for (int i = 1; i + 1 < argc; i += 2) flag[argv[i]] = argv[i + 1];
  epoll::ServerOptions options;  // tls.createServer(options)
  if (flag.count("--pfx")) {
    options.context.pfx = Slurp(flag["--pfx"]);
    options.context.passphrase = flag["--passphrase"];
  } else if (flag.count("--key") && flag.count("--cert")) {
    options.context.key = {Slurp(flag["--key"])};
    options.context.cert = {Slurp(flag["--cert"])};
  } else {
    std::fprintf(stderr, "usage: echo_server --port N (--key K --cert C | --pfx F [--passphrase P]) [--connections N]\n");
    return 2;
  }
  const int limit = flag.count("--connections") ? std::atoi(flag["--connections"].c_str()) : -1;

  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) return Fail(loop.status());
  std::unique_ptr<epoll::Server> server;  // declared after the loop: destroyed before it
  int accepted = 0;

  epoll::ServerHandlers handlers;
  // 'connection' (TCP, before TLS): after `limit` of them, server.close():
  // stop accepting, and stop the loop once the open ones have closed.
  handlers.on_connection = [&](epoll::TlsSocket&) {
    if (++accepted != limit) return;
    absl::Status closing = server->Close([&] { (*loop)->Stop(); });
    if (!closing.ok()) Fail(closing);
  };
  // 'secureConnection': the handshake is done; the socket keeps itself alive
  // until its 'close', so the handlers may hold a plain pointer to it.
  handlers.on_secure_connection = [](std::shared_ptr<epoll::TlsSocket> socket) {
    std::fprintf(stderr, "secureConnection: %s:%d, %s, %s\n", socket->remote_address().c_str(),
                 socket->remote_port(), socket->protocol().c_str(), socket->GetCipher()->name.c_str());
    epoll::TlsSocket* s = socket.get();
    s->handlers().on_data = [s](absl::string_view data) {
      if (!s->Write(data)) s->Pause();  // the client reads slower than it sends...
    };
    s->handlers().on_drain = [s] { s->Resume(); };  // ...until it has caught up
    s->handlers().on_error = [](const absl::Status& e) { Fail(e); };
  };
  // 'tlsClientError': the handshake failed (a client that rejected our
  // certificate sends an alert: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA, ...).
  handlers.on_client_error = [](const absl::Status& e, epoll::TlsSocket&) {
    std::fprintf(stderr, "tlsClientError: %s [%s]\n", std::string(e.message()).c_str(), NodeCode(e).c_str());
  };

  absl::StatusOr<std::unique_ptr<epoll::Server>> created = epoll::Server::Create({loop->get()}, options, handlers);
  if (!created.ok()) return Fail(created.status());  // a bad key, or a wrong passphrase
  server = *std::move(created);
  if (absl::Status s = server->Listen(std::atoi(flag["--port"].c_str()), "127.0.0.1"); !s.ok()) return Fail(s);
  std::printf("listening on %d\n", server->address()->port);
  std::fflush(stdout);
  if (absl::Status s = (*loop)->Run(); !s.ok()) return Fail(s);
  return 0;
}
