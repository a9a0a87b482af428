// https_get: a blocking HTTPS-style client. Sends "GET PATH HTTP/1.0" and
// prints the response; HTTP/1.0 ends the body by closing, so the response
// ends at the server's close_notify (or, from sloppy servers, at a bare
// TCP close, which is reported as truncation).
//
//   https_get HOST PORT CA_FILE [PATH]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "https_get: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 4) return std::fprintf(stderr, "usage: https_get HOST PORT CA_FILE [PATH]\n"), 2;
  std::stringstream ca;
  ca << std::ifstream(argv[3]).rdbuf();
  SecureContextOptions ctx_opts;
  ctx_opts.ca = std::vector<std::string>{ca.str()};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return Fail(ctx.status());
  blocking::StreamOptions opts;
  opts.secure_context = *ctx;
  opts.alpn_protocols = {"http/1.1"};  // (HTTP/1.0 has no ALPN name of its own)

  // One deadline for the whole exchange: connect, handshake, request, response.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  auto stream = blocking::TlsStream::Connect(argv[1], std::atoi(argv[2]), opts, deadline);
  if (!stream.ok()) return Fail(stream.status());
  std::string request = absl::StrCat("GET ", argc > 4 ? argv[4] : "/", " HTTP/1.0\r\nHost: ", argv[1], "\r\n\r\n");
  if (absl::Status s = (*stream)->Write(request, deadline); !s.ok()) return Fail(s);

  char buf[16384];
  for (;;) {
    absl::StatusOr<size_t> n = (*stream)->Read(absl::MakeSpan(buf), deadline);
    if (!n.ok()) return Fail(n.status());  // ETIMEDOUT, ECONNRESET (truncated), or a TLS error
    if (*n == 0) break;                    // close_notify: the whole response arrived
    std::fwrite(buf, 1, *n, stdout);
  }
  std::fprintf(stderr, "https_get: %s, %s, ALPN %s\n", (*stream)->protocol().c_str(),
               (*stream)->GetCipher()->name.c_str(), (*stream)->alpn_protocol().c_str());
  return 0;
}
