// sni_server: one listener, three identities, on the epoll adapter. Node's
// server.addContext(): the name the client sends (SNI) picks the certificate,
// exact names first, then "*.example.com" patterns; no name, or one nobody
// added, gets the default. Greets each client with the name it asked for and
// the certificate it got, then ends.
//
//   const server = tls.createServer({key, cert});   // the default
//   server.addContext('other.example.com', {key: key1, cert: cert1});
//   server.addContext('*.example.com', {key: key2, cert: cert2});
//
//   sni_server PORT KEY CERT NAME1 KEY1 CERT1 NAME2 KEY2 CERT2 [CONNECTIONS]
// Prints "listening on PORT" once ready (port 0 lets the kernel pick); with
// CONNECTIONS, exits after serving that many.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/epoll/loop.h"
#include "adapters/epoll/server.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

SecureContextOptions Identity(const char* key_file, const char* cert_file) {
  std::stringstream key, cert;
  key << std::ifstream(key_file).rdbuf();
  cert << std::ifstream(cert_file).rdbuf();
  SecureContextOptions o;
  o.key = {key.str()};
  o.cert = {cert.str()};
  return o;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sni_server: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 10) return std::fprintf(stderr, "usage: sni_server PORT KEY CERT NAME1 KEY1 CERT1 NAME2 KEY2 CERT2\n"), 2;
  const int limit = argc > 10 ? std::atoi(argv[10]) : -1;
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) return Fail(loop.status());
  std::unique_ptr<epoll::Server> server;
  int accepted = 0;

  epoll::ServerOptions options;
  options.context = Identity(argv[2], argv[3]);  // the default
  epoll::ServerHandlers handlers;
  handlers.on_connection = [&](epoll::TlsSocket&) {
    if (++accepted != limit) return;
    absl::Status closing = server->Close([&] { (*loop)->Stop(); });  // exit once the last one closed
    if (!closing.ok()) Fail(closing);
  };
  handlers.on_secure_connection = [](std::shared_ptr<epoll::TlsSocket> socket) {
    std::string name = socket->servername();  // "" when the client sent none
    std::string cn = socket->GetCertificate()->subject.Get("CN");
    socket->End(absl::StrCat("hello ", name.empty() ? "(no name)" : name, ", I am ", cn, "\n"));
  };
  handlers.on_client_error = [](const absl::Status& e, epoll::TlsSocket&) { Fail(e); };
  absl::StatusOr<std::unique_ptr<epoll::Server>> created = epoll::Server::Create({loop->get()}, options, handlers);
  if (!created.ok()) return Fail(created.status());
  server = *std::move(created);

  // Contexts can be added (and replaced) while the server runs; new
  // connections see them.
  for (int i = 4; i < 10; i += 3) {
    absl::Status added = server->AddContext(argv[i], Identity(argv[i + 1], argv[i + 2]));
    if (!added.ok()) return Fail(added);  // a bad name pattern, key or certificate
  }
  if (absl::Status s = server->Listen(std::atoi(argv[1]), "127.0.0.1"); !s.ok()) return Fail(s);
  std::printf("listening on %d\n", server->address()->port);
  std::fflush(stdout);
  if (absl::Status s = (*loop)->Run(); !s.ok()) return Fail(s);
  return 0;
}
