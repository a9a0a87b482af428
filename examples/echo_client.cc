// echo_client: Node's tls.connect() on the blocking adapter. Verifies the
// server against a CA, sends each line of stdin and prints what comes back,
// then closes with close_notify both ways.
//
//   echo_client HOST PORT CA_FILE < lines.txt      (the server name: HOST)
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "echo_client: %s [%s]\n", s.ToString().c_str(), NodeCode(s).c_str());
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

  blocking::StreamOptions opts;  // reject_unauthorized is on by default, as in Node
  opts.secure_context = *ctx;
  auto deadline = [] { return absl::Now() + absl::Seconds(10); };
  auto stream = blocking::TlsStream::Connect(argv[1], std::atoi(argv[2]), opts, deadline());
  if (!stream.ok()) return Fail(stream.status());  // ECONNREFUSED, CERT_HAS_EXPIRED, ...
  std::fprintf(stderr, "connected: %s %s, authorized: %d\n", (*stream)->protocol().c_str(),
               (*stream)->GetCipher()->name.c_str(), (*stream)->authorized());

  for (std::string line; std::getline(std::cin, line);) {
    if (absl::Status s = (*stream)->Write(line + "\n", deadline()); !s.ok()) return Fail(s);
    absl::StatusOr<std::string> echo = (*stream)->ReadUntil("\n", 64 * 1024, deadline());
    if (!echo.ok()) return Fail(echo.status());
    std::fputs(echo->c_str(), stdout);
  }
  // Node's end(), then wait for the server's close_notify.
  if (absl::Status s = (*stream)->Shutdown(deadline(), /*wait_for_peer=*/true); !s.ok()) return Fail(s);
  return 0;
}
