// engine_echo: the loopback benchmark's echo server on the epoll adapter
// (adapters/epoll Server over a LoopGroup), as tlsctl serve would run it.
// netbench starts it, reads "port N" from its stdout and stops it by closing
// its stdin.
//
//   engine_echo --key=k1.pem,k2.pem --cert=c1.pem,c2.pem [--loops=N]
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/epoll/server.h"
#include "bench/echo_flags.h"

namespace tlsengine {
namespace bench {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return in.good() || in.eof();
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "engine_echo: %s\n", what.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  EchoFlags flags;
  if (!ParseEchoFlags(argc, argv, "engine_echo", &flags)) return 1;
  const std::vector<std::string>& keys = flags.keys;
  const std::vector<std::string>& certs = flags.certs;
  const int loops = flags.loops;
  epoll::ServerOptions o;
  std::vector<std::string> key_pems, cert_pems;
  for (const std::string& k : keys) {
    std::string pem;
    if (!ReadFile(k, &pem) || pem.empty()) return Fail("cannot read " + k);
    key_pems.push_back(pem);
  }
  for (const std::string& c : certs) {
    std::string pem;
    if (!ReadFile(c, &pem) || pem.empty()) return Fail("cannot read " + c);
    cert_pems.push_back(pem);
  }
  o.context.key = key_pems;
  o.context.cert = cert_pems;
  o.handshake_timeout = absl::Seconds(30);
  // Tickets only, as plain_echo (SSL_SESS_CACHE_OFF): no server-side
  // session store, which would serialize and keep every session issued.
  o.session_cache = false;
  epoll::ServerHandlers h;
  h.on_secure_connection = [](std::shared_ptr<epoll::TlsSocket> s) {
    epoll::TlsSocket* sock = s.get();  // alive until its 'close'
    sock->handlers().on_data = [sock](absl::string_view d) { sock->Write(d); };
    sock->handlers().on_end = [sock] { sock->End(); };
  };
  h.on_client_error = [](const absl::Status&, epoll::TlsSocket&) {};

  auto group = epoll::LoopGroup::Start(loops);
  if (!group.ok()) return Fail(group.status().ToString());
  auto server = epoll::Server::Create((*group)->loops(), o, h);
  if (!server.ok()) return Fail(server.status().ToString());
  if (absl::Status s = (*server)->Listen(0, "127.0.0.1"); !s.ok()) return Fail(s.ToString());
  std::printf("port %d\n", (*server)->address()->port);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  // The parent closed our stdin: stop at once. _exit skips teardown (and
  // LeakSanitizer's report on connections still open), which a benchmark
  // server does not need.
  _exit(0);
}

}  // namespace
}  // namespace bench
}  // namespace tlsengine

int main(int argc, char** argv) { return tlsengine::bench::Main(argc, argv); }
