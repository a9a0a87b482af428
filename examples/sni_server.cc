// sni_server: one listener, three identities. Node's server.addContext():
// the name the client sends (SNI) picks the certificate, exact names first,
// then "*.example.com" patterns, else the default. Greets each client with
// the name it asked for, one connection at a time.
//
//   sni_server PORT DEFAULT_KEY DEFAULT_CERT NAME1 KEY1 CERT1 NAME2 KEY2 CERT2 [CONNECTIONS]
// Prints "listening on PORT" once ready (port 0 lets the kernel pick).
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

namespace {

absl::StatusOr<std::shared_ptr<const SecureContext>> Identity(const char* key_file, const char* cert_file) {
  std::stringstream key, cert;
  key << std::ifstream(key_file).rdbuf();
  cert << std::ifstream(cert_file).rdbuf();
  SecureContextOptions o;
  o.key = {key.str()};
  o.cert = {cert.str()};
  return SecureContext::Create(o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 10) return std::fprintf(stderr, "usage: sni_server PORT KEY CERT NAME1 KEY1 CERT1 NAME2 KEY2 CERT2\n"), 2;
  auto fallback = Identity(argv[2], argv[3]);
  if (!fallback.ok()) return std::fprintf(stderr, "%s\n", fallback.status().ToString().c_str()), 1;
  auto names = std::make_shared<SniContexts>();  // shared with every connection; may change while in use
  for (int i = 4; i + 2 < 10; i += 3) {
    auto ctx = Identity(argv[i + 1], argv[i + 2]);
    absl::Status added = ctx.ok() ? names->Add(argv[i], *ctx) : ctx.status();
    if (!added.ok()) return std::fprintf(stderr, "%s: %s\n", argv[i], added.ToString().c_str()), 1;
  }
  blocking::StreamOptions opts;
  opts.secure_context = *fallback;  // no SNI, or a name nobody registered
  opts.sni_contexts = names;
  auto listener = blocking::TlsListener::Listen("127.0.0.1", std::atoi(argv[1]), opts);
  if (!listener.ok()) return std::fprintf(stderr, "%s\n", listener.status().ToString().c_str()), 1;
  std::printf("listening on %d\n", (*listener)->port());
  std::fflush(stdout);

  const int limit = argc > 10 ? std::atoi(argv[10]) : -1;
  for (int served = 0; limit < 0 || served < limit; ++served) {
    auto stream = (*listener)->Accept(absl::InfiniteFuture());
    if (!stream.ok()) return std::fprintf(stderr, "%s\n", stream.status().ToString().c_str()), 1;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::Status s = (*stream)->Handshake(deadline);
    std::string cn = s.ok() ? (*stream)->GetCertificate()->subject.Get("CN") : "";
    if (s.ok()) s = (*stream)->Write(absl::StrCat("hello ", (*stream)->servername(), ", I am ", cn, "\n"), deadline);
    if (s.ok()) s = (*stream)->Shutdown(deadline);
    if (!s.ok()) std::fprintf(stderr, "connection: %s [%s]\n", s.ToString().c_str(), NodeCode(s).c_str());
  }
  return 0;
}
