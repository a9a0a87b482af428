// session_client: saves its TLS session to a file and resumes it on the
// next run (Node's 'session' event and `session` option). A resumed
// handshake skips the certificate exchange; the server's identity was
// checked when the session was made, and is checked again by the engine.
//
//   session_client HOST PORT CA_FILE SESSION_FILE
// Sends "GET / HTTP/1.0", reads the response, prints "reused: yes" or
// "reused: no", and writes the newest session to SESSION_FILE.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "session_client: %s [%s]\n", s.ToString().c_str(), NodeCode(s).c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) return std::fprintf(stderr, "usage: session_client HOST PORT CA_FILE SESSION_FILE\n"), 2;
  std::stringstream ca, saved;
  ca << std::ifstream(argv[3]).rdbuf();
  saved << std::ifstream(argv[4], std::ios::binary).rdbuf();  // empty on the first run
  SecureContextOptions ctx_opts;
  ctx_opts.ca = std::vector<std::string>{ca.str()};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return Fail(ctx.status());

  blocking::StreamOptions opts;
  opts.secure_context = *ctx;
  opts.session = saved.str();  // "" for a full handshake
  std::string newest;
  // TLS 1.3 sends tickets after the handshake, so sessions arrive while we
  // read; TLS 1.2 has one by the end of the handshake.
  opts.on_session = [&](const std::string& session) { newest = session; };

  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  auto stream = blocking::TlsStream::Connect(argv[1], std::atoi(argv[2]), opts, deadline);
  if (!stream.ok()) return Fail(stream.status());
  if (absl::Status s = (*stream)->Write("GET / HTTP/1.0\r\n\r\n", deadline); !s.ok()) return Fail(s);
  size_t received = 0;
  char buf[16384];
  for (;;) {
    absl::StatusOr<size_t> n = (*stream)->Read(absl::MakeSpan(buf), deadline);
    if (!n.ok()) return Fail(n.status());
    if (*n == 0) break;  // the server's close_notify
    received += *n;
  }
  if (newest.empty()) newest = (*stream)->GetSession();
  std::ofstream(argv[4], std::ios::binary | std::ios::trunc) << newest;
  std::printf("%s, %zu bytes, reused: %s\n", (*stream)->protocol().c_str(), received,
              (*stream)->is_session_reused() ? "yes" : "no");
  return 0;
}
