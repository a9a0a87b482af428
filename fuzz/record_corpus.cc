// Records the seed corpora in fuzz/corpus from real handshakes:
// - engine pairs over every configuration the targets can choose (the
//   client's flights become server_engine seeds, the server's become
//   client_engine seeds), with resumption;
// - openssl s_client talking to the engine server, and the engine client
//   talking to openssl s_server, over loopback;
// - scripts for engine_pair, option sets for secure_context, the test
//   certificates for certificate_info, and names for identity.
// Endpoints draw from the same deterministic random streams as the
// targets, so a recorded flight stays valid when the target replays it.
//
//   bazel run //fuzz:record_corpus -- $PWD/fuzz/corpus
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fuzz/common.h"
#include "tests/testlib/peers.h"

using namespace tlsengine;
using fuzz::AppendChunk;

namespace {

// A recording whose run failed is still saved (a failed handshake is a
// useful seed too); say so.
void Report(const absl::Status& status) {
  if (!status.ok()) std::fprintf(stderr, "record_corpus: run ended with %s\n", status.ToString().c_str());
}

std::string g_out;
int g_files = 0;

void Save(const std::string& target, const std::string& name, const std::string& bytes) {
  std::string dir = g_out + "/" + target;
  mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  g_files++;
}

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

std::string Drain(TlsConnection& conn, fuzz::Stream stream) {
  fuzz::UseStream(stream);
  return fuzz::PollAndDrain(conn);
}

// Feeds `bytes` to `conn` as the targets do and returns what it wrote.
std::string Deliver(TlsConnection& conn, fuzz::Stream stream, absl::string_view bytes) {
  fuzz::UseStream(stream);
  return fuzz::FeedAndPoll(conn, bytes);
}

struct PairSeeds {
  std::string server_seed, client_seed, session;
};

// An engine pair on configurations (sa, sb) and (ca, cb); the client asks
// for "GET /" once secure, and the server answers.
PairSeeds RecordPair(uint8_t sa, uint8_t sb, uint8_t ca, uint8_t cb, const std::string& session = "") {
  fuzz::ResetDeterminism();
  PairSeeds seeds{Bytes({sa, sb}), Bytes({ca, cb}), ""};
  fuzz::UseStream(fuzz::Stream::kServer);
  auto server = *TlsConnection::Create(fuzz::MakeServerConfig(sa, sb).options, fuzz::Now());
  fuzz::UseStream(fuzz::Stream::kClient);
  ConnectionOptions co = fuzz::MakeClientConfig(ca, cb).options;
  co.session = session;
  auto client = *TlsConnection::Create(co, fuzz::Now());
  bool asked = false, answered = false;
  std::string c_out = Drain(*client, fuzz::Stream::kClient);  // the ClientHello
  for (int round = 0; round < 20 && !c_out.empty(); ++round) {
    AppendChunk(&seeds.server_seed, c_out);
    std::string s_out = Deliver(*server, fuzz::Stream::kServer, c_out);
    if (server->secure() && asked && !answered) {
      answered = server->Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").ok();
      s_out += Drain(*server, fuzz::Stream::kServer);
    }
    if (s_out.empty()) break;
    AppendChunk(&seeds.client_seed, s_out);
    c_out = Deliver(*client, fuzz::Stream::kClient, s_out);
    if (client->secure() && !asked) {
      asked = client->Write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").ok();
      c_out += Drain(*client, fuzz::Stream::kClient);
    }
  }
  seeds.session = client->GetSession();
  return seeds;
}

void RecordPairs() {
  struct Config {
    const char* name;
    uint8_t sa, sb, ca, cb;
  };
  const Config configs[] = {
      {"plain", 0, 0, 0, 0},
      {"tls12", 1, 0, 1, 0},
      {"ecdsa", 2, 0, 0, 0},
      {"alpn", 4, 0, 16, 0},
      {"sni-table-exact", 8, 0, 1 << 2, 0},
      {"sni-table-wildcard", 8, 0, 3 << 2, 0},
      {"sni-callback", 16, 0, 1 << 2, 0},
      {"client-cert", 2 | 32, 2, 2, 0},
      {"client-cert-missing", 32, 2, 0, 0},
      {"session-cache-tls12", 1 | 64, 0, 1, 0},
      {"ocsp", 128, 0, 32, 0},
      {"ocsp-tls12", 129, 0, 33, 0},
      {"keylog", 0, 4, 128, 0},
      {"ip-host", 0, 0, 2 << 2, 0},
      {"async-answers", 16 | 128, 1, 32 | (1 << 2), 0},
      {"reject-and-verify", 0, 0, 64, 0},
      {"everything", 4 | 8 | 32 | 64 | 128, 2 | 4 | 8, 2 | 16 | 32 | 64 | 128 | (1 << 2), 1},
  };
  for (const Config& c : configs) {
    PairSeeds first = RecordPair(c.sa, c.sb, c.ca, c.cb);
    Save("server_engine", absl::StrCat("pair-", c.name), first.server_seed);
    Save("client_engine", absl::StrCat("pair-", c.name), first.client_seed);
    if (!first.session.empty()) {
      PairSeeds resumed = RecordPair(c.sa, c.sb, c.ca, c.cb, first.session);
      Save("server_engine", absl::StrCat("pair-", c.name, "-resumed"), resumed.server_seed);
    }
  }
}

// openssl s_client -> engine server: what s_client sends becomes a seed.
void RecordSClient(const std::string& name, uint8_t sa, uint8_t sb, std::vector<std::string> args) {
  using namespace tlsengine::testing;
  fuzz::ResetDeterminism();
  Listener listener;
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener.port()),
                                   "-CAfile", TestFilePath("ca1.pem")};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess client;
  if (!client.Start(argv).ok()) return;
  client.WriteStdin("GET / HTTP/1.1\r\n\r\n").IgnoreError();
  int fd = listener.Accept(absl::Seconds(10));
  if (fd < 0) return;
  fuzz::UseStream(fuzz::Stream::kServer);
  auto server = *TlsConnection::Create(fuzz::MakeServerConfig(sa, sb).options, fuzz::Now());
  std::string seed = Bytes({sa, sb});
  Report(RunOverSocket(
      *server, fd,
      [](TlsConnection& c, const Event& ev) {
        fuzz::AnswerSuspension(c, ev);
        if (ev.type == EventType::kData) {
          c.Write("HTTP/1.1 200 OK\r\n\r\n").IgnoreError();
          c.End(absl::Now());
        }
      },
      absl::Seconds(10), nullptr,
      [&seed](absl::Span<const uint8_t> in) {
        AppendChunk(&seed, absl::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
      }));
  client.CloseStdin();
  client.Wait(absl::Seconds(5));
  Save("server_engine", "s_client-" + name, seed);
}

// engine client -> openssl s_server -rev: what s_server sends is a seed.
void RecordSServer(const std::string& name, uint8_t ca, uint8_t cb, std::vector<std::string> args) {
  using namespace tlsengine::testing;
  fuzz::ResetDeterminism();
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev",
                                   "-cert", TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"),
                                   "-key", TestFilePath("server-rsa-key.pem")};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess server;
  if (!server.Start(argv).ok()) return;
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", absl::Seconds(10));
  if (!accept.ok()) return;
  int fd = ConnectLoopback(std::stoi(accept->substr(accept->rfind(':') + 1)));
  fuzz::UseStream(fuzz::Stream::kClient);
  auto client = *TlsConnection::Create(fuzz::MakeClientConfig(ca, cb).options, fuzz::Now());
  std::string seed = Bytes({ca, cb});
  std::string got;
  Report(RunOverSocket(
      *client, fd,
      [&got](TlsConnection& c, const Event& ev) {
        if (ev.type == EventType::kSecure) c.Write("hello\n").IgnoreError();
        if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      },
      absl::Seconds(10), [&got] { return absl::StrContains(got, "olleh"); },
      [&seed](absl::Span<const uint8_t> in) {
        AppendChunk(&seed, absl::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
      }));
  server.Kill();
  Save("client_engine", "s_server-" + name, seed);
}

void RecordPrograms() {
  using tlsengine::testing::TestFilePath;
  RecordSClient("tls13", 0, 0, {"-tls1_3"});
  RecordSClient("tls12", 0, 0, {"-tls1_2"});
  RecordSClient("alpn", 4, 0, {"-alpn", "h2,http/1.1"});
  RecordSClient("servername", 8, 0, {"-servername", "other.example.com"});
  RecordSClient("status", 128, 0, {"-status"});
  RecordSClient("nextprotoneg", 0, 0, {"-tls1_2", "-nextprotoneg", "http/1.1"});
  RecordSClient("client-cert", 32, 2,
                {"-cert", TestFilePath("client.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                 TestFilePath("client-key.pem")});
  RecordSServer("tls13", 0, 0, {"-tls1_3"});
  RecordSServer("tls12", 1, 0, {"-tls1_2"});
  RecordSServer("alpn", 16, 0, {"-alpn", "h2"});
  RecordSServer("status", 32, 0, {"-status_file", TestFilePath("server-rsa-ocsp.der")});
  RecordSServer("client-cert", 2, 0, {"-Verify", "1", "-CAfile", TestFilePath("ca1.pem")});
}

// engine_pair scripts: [sa][sb][ca][cb] then operations (see engine_pair.cc).
void RecordScripts() {
  const std::string handshake = Bytes({0x8f, 0x81, 0x01, 0x8f, 0x81, 0x01, 0x8f, 0x81, 0x01, 0x8f, 0x81, 0x01});
  const std::string data = Bytes({0x80, 0x01, 0x00, 0x81, 0x0f, 0x00, 0x40, 0x00, 0x01, 0x8f});
  const std::string close = Bytes({0x97, 0x81, 0x0f, 0x07, 0x01, 0x8f});
  Save("engine_pair", "handshake-data-close", Bytes({0, 0, 0, 0}) + handshake + data + close);
  Save("engine_pair", "tls12-data", Bytes({1, 0, 1, 0}) + handshake + data + data);
  Save("engine_pair", "key-update", Bytes({0, 0, 0, 0}) + handshake + Bytes({0x94, 0x81, 0x0f, 0x01, 0x8f}) + data);
  Save("engine_pair", "renegotiate-tls12", Bytes({2 | 1, 0, 2, 0}) + handshake + Bytes({0x15, 0x01, 0x8f}) + handshake + data);
  Save("engine_pair", "pha-tls13", Bytes({2, 0, 2, 1}) + handshake + Bytes({0x15, 0x01, 0x8f}) + data + handshake);
  Save("engine_pair", "client-reneg-limit", Bytes({1, 8 | 0x10, 1, 0}) + handshake + Bytes({0x85, 0x81, 0x0f, 0x01}) + handshake);
  Save("engine_pair", "flip-bit", Bytes({0, 0, 0, 0}) + handshake + Bytes({0x80, 0x00, 0x20, 0x8a, 0x00, 0x09, 0x0f}));
  Save("engine_pair", "drop-bytes", Bytes({0, 0, 0, 0}) + handshake + Bytes({0x80, 0x00, 0x20, 0x8b, 0x00, 0x03, 0x0f}));
  Save("engine_pair", "fragment-timer-eof",
       Bytes({0, 0, 0, 0}) + handshake + Bytes({0x86, 0x02, 0x00, 0x80, 0x10, 0x00, 0x81, 0x08, 0xff, 0x09, 0x0f}));
  Save("engine_pair", "handshake-timeout", Bytes({0, 0, 0, 0, 0x8f, 0x08, 0x7f, 0x08, 0x7f, 0x0f}));
  Save("engine_pair", "partial-moves",
       Bytes({0, 0, 0, 0, 0x8f, 0x82, 0x00, 0x07, 0x0f, 0x82, 0x01, 0x00, 0x0f, 0x81, 0x02, 0x00, 0x10, 0x8f, 0x01}));
}

// secure_context: [flags] then chunks (see secure_context.cc).
void RecordContexts() {
  using fuzz::ReadCert;
  auto options = [](uint8_t flags, std::vector<std::string> chunks) {
    std::string seed(1, static_cast<char>(flags));
    for (const std::string& c : chunks) AppendChunk(&seed, c);
    seed.push_back(0);
    return seed;
  };
  Save("secure_context", "rsa-identity",
       options(1 | 2 | 4 | 8, {ReadCert("server-rsa-key.pem"), ReadCert("server-rsa-chain.pem"), "", "",
                               ReadCert("ca1.pem"), ReadCert("crl-chain.pem"), "", "", "", ""}));
  Save("secure_context", "encrypted-key",
       options(1 | 2, {ReadCert("server-rsa-key-encrypted.pem"), ReadCert("server-rsa-chain.pem"), "secret", "", "",
                       "", "ECDHE-RSA-AES128-GCM-SHA256:!RC4", "TLS_AES_128_GCM_SHA256", "P-256:X25519",
                       ReadCert("dhparam-2048.pem")}));
  Save("secure_context", "pfx", options(0, {"secret", ReadCert("server-rsa.pfx")}));
  Save("secure_context", "pfx-nopass", options(0, {"", ReadCert("server-rsa-nopass.pfx")}));
  Save("secure_context", "versions-and-tickets",
       options(16 | 32 | 64 | 128, {"", "", "", "", "", "", "", "", "TLSv1", "TLSv1.3", "TLSv1_2_method",
                                    std::string(48, 'k'), "h2"}));
  Save("secure_context", "ecdsa-mismatch",
       options(1 | 2, {ReadCert("server-ecdsa-key.pem"), ReadCert("server-rsa-chain.pem")}));
}

void RecordCertificates() {
  for (const char* name : {"ca1", "ca2", "int1", "server-rsa", "server-ecdsa", "other-name", "wildcard", "cn-only",
                           "expired", "client", "self-signed"}) {
    absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(fuzz::ReadCert(std::string(name) + ".pem"));
    if (info.ok()) Save("certificate_info", name, info->raw);
  }
}

void RecordIdentities() {
  auto seed = [](std::vector<std::string> chunks) {
    std::string out;
    for (const std::string& c : chunks) AppendChunk(&out, c);
    return out;
  };
  Save("identity", "dns", seed({"localhost", "DNS:localhost, IP Address:127.0.0.1", "", "localhost", "LOCALHOST."}));
  Save("identity", "wildcard", seed({"a.example.com", "DNS:*.example.com", "", "*.example.com", "b.example.com"}));
  Save("identity", "ipv6", seed({"[::1]", "IP Address:0:0:0:0:0:0:0:1", "", "*.a.b", "x.a.b"}));
  Save("identity", "cn", seed({"host.example", "", "host.example", "", ""}));
  Save("identity", "bad-wildcards", seed({"foo.example.org", "DNS:f*.example.org, DNS:*.com", "", "a.*.b", "a"}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: record_corpus OUTPUT_DIR (e.g. $PWD/fuzz/corpus)\n");
    return 2;
  }
  g_out = argv[1];
  mkdir(g_out.c_str(), 0755);
  RecordPairs();
  RecordPrograms();
  RecordScripts();
  RecordContexts();
  RecordCertificates();
  RecordIdentities();
  std::printf("recorded %d seeds in %s\n", g_files, g_out.c_str());
  return 0;
}
