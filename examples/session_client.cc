// session_client: saves its TLS session to a file and resumes it on the next
// run, on the epoll adapter (Node's 'session' event and `session` option):
//
//   const socket = tls.connect({host, port, ca, session: fs.readFileSync(file)});
//   socket.on('session', (s) => fs.writeFileSync(file, s));
//
// A resumed handshake skips the certificate exchange; the engine still
// checks that the session's certificate is valid for HOST, and offers
// nothing otherwise. A file that holds no session is reported and ignored.
//
//   session_client HOST PORT CA_FILE SESSION_FILE
// Sends "GET / HTTP/1.0", reads the response to the server's close_notify,
// prints "TLSv1.3, 1234 bytes, reused: yes" (or "no"), and saves the newest
// session to SESSION_FILE.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "adapters/epoll/loop.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"
#include "core/tls_session.h"

using namespace tlsengine;  // NOLINT: a short example

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "session_client: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) return std::fprintf(stderr, "usage: session_client HOST PORT CA_FILE SESSION_FILE\n"), 2;
  const std::string file = argv[4];
  std::stringstream ca, saved;
  ca << std::ifstream(argv[3]).rdbuf();
  saved << std::ifstream(file, std::ios::binary).rdbuf();  // nothing on the first run
  SecureContextOptions ctx_opts;
  ctx_opts.ca = std::vector<std::string>{ca.str()};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return Fail(ctx.status());
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) return Fail(loop.status());

  epoll::TlsSocketOptions options;
  options.host = argv[1];
  options.port = std::atoi(argv[2]);
  options.tls.secure_context = *ctx;
  if (!saved.str().empty()) {
    // Decoding it here tells a damaged file from a session the server
    // declines (that one just means a full handshake).
    absl::StatusOr<std::shared_ptr<const TlsSession>> session = TlsSession::FromDer(saved.str());
    if (session.ok()) {
      options.tls.session_handle = *session;
    } else {
      std::fprintf(stderr, "session_client: %s: ignored: %s [%s]\n", file.c_str(),
                   std::string(session.status().message()).c_str(), NodeCode(session.status()).c_str());
    }
  }
  absl::StatusOr<std::shared_ptr<epoll::TlsSocket>> socket = epoll::TlsSocket::Connect(loop->get(), options);
  if (!socket.ok()) return Fail(socket.status());
  epoll::TlsSocket* s = socket->get();

  std::string newest;  // TLS 1.3 sends tickets after the handshake: keep the last
  size_t received = 0;
  bool failed = false;
  epoll::SocketHandlers& h = s->handlers();
  std::string protocol;
  bool reused = false;
  h.on_secure_connect = [&] {
    protocol = s->protocol();  // the socket forgets these at close
    reused = s->is_session_reused();
    s->End("GET / HTTP/1.0\r\n\r\n");  // HTTP/1.0: the server closes after answering
  };
  h.on_session = [&](const std::string& session) { newest = session; };
  h.on_data = [&](absl::string_view data) { received += data.size(); };
  h.on_error = [&](const absl::Status& e) {
    failed = true;
    Fail(e);
  };
  h.on_close = [&](bool) { (*loop)->Stop(); };
  if (absl::Status run = (*loop)->Run(); !run.ok()) return Fail(run);
  if (failed) return 1;

  // Write a new file and rename it over the old one, so that a crash never
  // leaves half a session behind.
  if (!newest.empty()) {
    std::ofstream(file + ".tmp", std::ios::binary | std::ios::trunc) << newest;
    if (std::rename((file + ".tmp").c_str(), file.c_str()) != 0) std::perror(file.c_str());
  }
  std::printf("%s, %zu bytes, reused: %s\n", protocol.c_str(), received, reused ? "yes" : "no");
  return 0;
}
