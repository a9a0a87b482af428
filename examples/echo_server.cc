// echo_server: a thread-per-connection TLS line echo server on the blocking
// adapter (Node's tls.createServer with key and cert, or pfx and passphrase).
// Every call has a deadline, so a silent client costs one thread for at most
// the handshake or idle timeout, never forever.
//
//   echo_server --port 8443 --key server-key.pem --cert server-chain.pem
//   echo_server --port 8443 --pfx server.pfx --passphrase secret
//   echo_server ... --connections 3   (exit after serving 3 connections)
// Prints "listening on PORT" once ready (port 0 lets the kernel pick).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

std::string Slurp(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

// One connection: echo each line until the client's close_notify, then
// answer with ours. Close() (in the destructor) is the careful close.
void Serve(std::unique_ptr<blocking::TlsStream> stream) {
  absl::Status status = stream->Handshake(absl::Now() + absl::Seconds(10));
  while (status.ok()) {
    absl::StatusOr<std::string> line = stream->ReadUntil("\n", 64 * 1024, absl::Now() + absl::Seconds(60));
    if (!line.ok()) status = line.status();
    else if (line->empty()) status = stream->Shutdown(absl::Now() + absl::Seconds(5));  // end of stream
    else status = stream->Write(*line, absl::Now() + absl::Seconds(10));
    if (status.ok() && line.ok() && line->empty()) return;
  }
  std::fprintf(stderr, "connection: %s [%s]\n", status.ToString().c_str(), NodeCode(status).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flag;  // --name value
  for (int i = 1; i + 1 < argc; i += 2) flag[argv[i]] = argv[i + 1];
  SecureContextOptions ctx_opts;  // tls.createSecureContext()
  if (flag.count("--pfx")) {
    ctx_opts.pfx = Slurp(flag["--pfx"]);
    ctx_opts.passphrase = flag["--passphrase"];
  } else if (flag.count("--key") && flag.count("--cert")) {
    ctx_opts.key = {Slurp(flag["--key"])};
    ctx_opts.cert = {Slurp(flag["--cert"])};
  } else {
    std::fprintf(stderr, "usage: echo_server --port N (--key K --cert C | --pfx F [--passphrase P]) [--connections N]\n");
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return std::fprintf(stderr, "%s\n", ctx.status().ToString().c_str()), 1;

  blocking::StreamOptions opts;
  opts.secure_context = *ctx;
  auto listener = blocking::TlsListener::Listen("127.0.0.1", std::atoi(flag["--port"].c_str()), opts);
  if (!listener.ok()) return std::fprintf(stderr, "%s\n", listener.status().ToString().c_str()), 1;
  std::printf("listening on %d\n", (*listener)->port());
  std::fflush(stdout);

  const int limit = flag.count("--connections") ? std::atoi(flag["--connections"].c_str()) : -1;
  std::vector<std::thread> threads;
  for (int served = 0; limit < 0 || served < limit; ++served) {
    // Accept returns before the handshake: it runs on the connection's thread.
    auto stream = (*listener)->Accept(absl::InfiniteFuture());
    if (!stream.ok()) return std::fprintf(stderr, "%s\n", stream.status().ToString().c_str()), 1;
    threads.emplace_back(Serve, std::move(*stream));
  }
  for (std::thread& t : threads) t.join();
  return 0;
}
