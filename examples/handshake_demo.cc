// The main job until the adapters exist: a server and a client TlsConnection
// run a real TLS handshake through memory, exchange a message, and print
// what was negotiated.
//
//   handshake_demo [--tls12] [--cert FILE --key FILE [--ca FILE] [--servername NAME]]
//
// Without --cert, the server uses a fresh self-signed ECDSA certificate for
// "localhost", which the client is told to trust.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "core/errors.h"
#include "core/secure_context.h"
#include "core/self_signed.h"
#include "core/tls_connection.h"

namespace {

using tlsengine::ConnectionOptions;
using tlsengine::Event;
using tlsengine::EventType;
using tlsengine::NodeCode;
using tlsengine::SecureContext;
using tlsengine::SecureContextOptions;
using tlsengine::TlsConnection;

struct Args {
  std::string version;
  std::string cert, key, ca, servername = "localhost";
};

bool ReadFile(const std::string& path, std::string* out) {
  // Under `bazel run` the program runs in its runfiles; paths given on the
  // command line are relative to where the user was.
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  std::string full = (cwd != nullptr && !path.empty() && path[0] != '/') ? std::string(cwd) + "/" + path : path;
  std::ifstream in(full, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: handshake_demo [--tls12|--tls13] [--cert FILE --key FILE [--ca FILE]]"
               " [--servername NAME]\n",
               why);
  return 2;
}

// Polls one engine's events; returns false on an error event.
bool Drain(const char* who, TlsConnection& conn, absl::Time now, std::string* received) {
  while (std::optional<Event> ev = conn.NextEvent(now)) {
    if (ev->type == EventType::kError) {
      std::fprintf(stderr, "%s: error %s: %s\n", who, NodeCode(ev->status).c_str(),
                   std::string(ev->status.message()).c_str());
      return false;
    }
    if (ev->type == EventType::kData) received->append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
  }
  return true;
}

// Moves all pending ciphertext from `from` into `to`.
bool Transfer(TlsConnection& from, TlsConnection& to) {
  bool moved = false;
  for (auto out = from.Output(); !out.empty(); out = from.Output()) {
    absl::StatusOr<size_t> n = to.Feed(out[0]);
    if (!n.ok() || *n == 0) break;
    if (!from.ConsumeOutput(*n).ok()) break;
    moved = true;
  }
  return moved;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--tls12") args.version = "TLSv1.2";
    else if (a == "--tls13") args.version = "TLSv1.3";
    else if (a == "--cert") { if (!value(&args.cert)) return Usage("--cert needs a file"); }
    else if (a == "--key") { if (!value(&args.key)) return Usage("--key needs a file"); }
    else if (a == "--ca") { if (!value(&args.ca)) return Usage("--ca needs a file"); }
    else if (a == "--servername") { if (!value(&args.servername)) return Usage("--servername needs a name"); }
    else if (a == "--help" || a == "-h") return Usage("handshake_demo: an in-memory TLS handshake");
    else return Usage(("unknown argument: " + a).c_str());
  }
  const absl::Time now = absl::Now();

  SecureContextOptions server_opts, client_opts;
  if (args.cert.empty()) {
    auto id = tlsengine::GenerateSelfSigned("localhost", now, static_cast<uint64_t>(absl::ToUnixNanos(now)));
    if (!id.ok()) return std::fprintf(stderr, "%s\n", id.status().ToString().c_str()), 1;
    server_opts.key = {id->key_pem};
    server_opts.cert = {id->cert_pem};
    client_opts.ca = std::vector<std::string>{id->cert_pem};
    std::printf("certificate: generated a self-signed ECDSA P-256 certificate for localhost\n");
  } else {
    std::string cert, key, ca;
    if (!ReadFile(args.cert, &cert) || !ReadFile(args.key, &key)) return Usage("cannot read --cert/--key");
    server_opts.cert = {cert};
    server_opts.key = {key};
    if (!args.ca.empty()) {
      if (!ReadFile(args.ca, &ca)) return Usage("cannot read --ca");
      client_opts.ca = std::vector<std::string>{ca};
    }
  }
  if (!args.version.empty()) {
    server_opts.min_version = server_opts.max_version = args.version;
  } else {
    server_opts.min_version = "TLSv1.3";  // the demo: a TLS 1.3 handshake by default
  }

  auto server_ctx = SecureContext::Create(server_opts);
  auto client_ctx = SecureContext::Create(client_opts);
  for (const auto* ctx : {&server_ctx, &client_ctx}) {
    if (!ctx->ok()) {
      std::fprintf(stderr, "context: %s (%s)\n", std::string(ctx->status().message()).c_str(),
                   NodeCode(ctx->status()).c_str());
      return 1;
    }
  }
  ConnectionOptions so, co;
  so.is_server = true;
  so.secure_context = *server_ctx;
  co.secure_context = *client_ctx;
  co.servername = args.servername;
  co.reject_unauthorized = false;  // report, rather than refuse, an untrusted certificate
  auto server = TlsConnection::Create(so, now);
  auto client = TlsConnection::Create(co, now);
  if (!server.ok() || !client.ok()) return std::fprintf(stderr, "engine creation failed\n"), 1;

  std::string to_server, to_client;
  if (!(*client)->Write("hello over TLS").ok()) return std::fprintf(stderr, "write failed\n"), 1;
  bool ok = true;
  bool answered = false;
  do {
    ok = Drain("client", **client, now, &to_client) && Drain("server", **server, now, &to_server);
    if (to_server == "hello over TLS" && !answered) {
      answered = (*server)->Write("and hello back").ok();
    }
  } while (ok && (Transfer(**client, **server) | Transfer(**server, **client)));
  if (!ok) return 1;

  TlsConnection& c = **client;
  auto cipher = c.GetCipher();
  auto peer = c.GetPeerCertificate();
  std::printf("protocol:      %s\n", c.protocol().c_str());
  std::printf("cipher:        %s (%s)\n", cipher ? cipher->name.c_str() : "-",
              cipher ? cipher->standard_name.c_str() : "-");
  std::printf("servername:    %s\n", (*server)->servername().c_str());
  std::printf("peer subject:  %s\n", peer ? peer->subject.ToString().c_str() : "-");
  std::printf("peer altnames: %s\n", peer ? peer->subjectaltname.c_str() : "-");
  std::printf("fingerprint256: %s\n", peer ? peer->fingerprint256.c_str() : "-");
  std::printf("authorized:    %s%s\n", c.authorized() ? "true" : "false",
              c.authorized() ? "" : (" (" + c.authorization_error() + ")").c_str());
  std::printf("server got:    \"%s\"\nclient got:    \"%s\"\n", to_server.c_str(), to_client.c_str());
  return to_server == "hello over TLS" && to_client == "and hello back" ? 0 : 1;
}
