// The engine against implementations we did not write: a plain OpenSSL SSL
// object in this process, the openssl s_server/s_client programs, and the
// TLS clients of GnuTLS, Python, Node.js and curl, over loopback sockets.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::ConnectLoopback;
using testing::Listener;
using testing::RunOverSocket;
using testing::ServerOptions;
using testing::Subprocess;
using testing::TestFilePath;

constexpr absl::Duration kPeerTimeout = absl::Seconds(20);

struct Param {
  std::string version;   // "TLSv1.2" / "TLSv1.3"
  std::string identity;  // "server-rsa" / "server-ecdsa"
};

void PrintTo(const Param& p, std::ostream* os) { *os << p.version << "/" << p.identity; }

std::string Name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(info.param.version == "TLSv1.3" ? "Tls13" : "Tls12") +
         (info.param.identity == "server-rsa" ? "Rsa" : "Ecdsa");
}

std::vector<Param> AllParams() {
  return {{"TLSv1.2", "server-rsa"}, {"TLSv1.2", "server-ecdsa"}, {"TLSv1.3", "server-rsa"}, {"TLSv1.3", "server-ecdsa"}};
}

std::string OpenSslVersionFlag(const std::string& version) { return version == "TLSv1.3" ? "-tls1_3" : "-tls1_2"; }

// ---- A plain OpenSSL peer in this process ----

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL, SSL_free>>;

class RawOpenSslPeer {
 public:
  RawOpenSslPeer(bool server, const Param& p) {
    ctx_.reset(SSL_CTX_new(TLS_method()));
    int v = p.version == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx_.get(), v);
    SSL_CTX_set_max_proto_version(ctx_.get(), v);
    if (server) {
      SSL_CTX_use_certificate_chain_file(ctx_.get(), TestFilePath(p.identity + "-chain.pem").c_str());
      SSL_CTX_use_PrivateKey_file(ctx_.get(), TestFilePath(p.identity + "-key.pem").c_str(), SSL_FILETYPE_PEM);
    } else {
      SSL_CTX_load_verify_locations(ctx_.get(), TestFilePath("ca1.pem").c_str(), nullptr);
      SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    }
    ssl_.reset(SSL_new(ctx_.get()));
    BIO* internal = nullptr;
    BIO_new_bio_pair(&internal, 0, &network_, 0);
    SSL_set_bio(ssl_.get(), internal, internal);  // the SSL owns `internal`
    if (server) {
      SSL_set_accept_state(ssl_.get());
    } else {
      SSL_set_tlsext_host_name(ssl_.get(), "localhost");
      SSL_set1_host(ssl_.get(), "localhost");
      SSL_set_connect_state(ssl_.get());
    }
  }
  ~RawOpenSslPeer() { BIO_free(network_); }

  // Moves bytes both ways with `engine`; drives the peer's handshake/reads.
  void Pump(TlsConnection& engine, std::string* engine_received, absl::Time now) {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      if (!SSL_is_init_finished(ssl_.get())) {
        SSL_do_handshake(ssl_.get());
      } else {
        char buf[4096];
        int n;
        while ((n = SSL_read(ssl_.get(), buf, sizeof(buf))) > 0) {
          received_.append(buf, static_cast<size_t>(n));
          moved = true;
        }
        if (SSL_get_error(ssl_.get(), n) == SSL_ERROR_ZERO_RETURN) peer_closed_ = true;
      }
      ERR_clear_error();
      auto poll_engine = [&] {
        while (auto ev = engine.NextEvent(now)) {
          if (ev->type == EventType::kData) engine_received->append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
          if (ev->type == EventType::kError) engine_error_ = ev->status;
        }
      };
      poll_engine();
      for (auto out = engine.Output(); !out.empty(); out = engine.Output()) {
        int n = BIO_write(network_, out[0].data(), static_cast<int>(out[0].size()));
        if (n <= 0) break;
        ASSERT_TRUE(engine.ConsumeOutput(static_cast<size_t>(n)).ok());
        moved = true;
      }
      // Straight from the BIO pair into the engine's input reservation.
      for (absl::Span<uint8_t> space = engine.InputSpace(); !space.empty(); space = engine.InputSpace()) {
        int n = BIO_read(network_, space.data(), static_cast<int>(space.size()));
        absl::Status committed = engine.CommitInput(n > 0 ? static_cast<size_t>(n) : 0);
        ASSERT_TRUE(committed.ok() || engine.finished()) << committed;
        if (n <= 0) break;
        moved = true;
        poll_engine();
      }
      if (!moved && round > 2) break;
    }
  }
  SSL* ssl() { return ssl_.get(); }
  const std::string& received() const { return received_; }
  bool peer_closed() const { return peer_closed_; }
  const absl::Status& engine_error() const { return engine_error_; }

 private:
  CtxPtr ctx_;
  SslPtr ssl_;
  BIO* network_ = nullptr;  // our end of the BIO pair, freed in the destructor
  std::string received_;
  bool peer_closed_ = false;
  absl::Status engine_error_;
};

class InProcessOpenSslTest : public ::testing::TestWithParam<Param> {};

TEST_P(InProcessOpenSslTest, EngineClientWithOpenSslServer) {
  RawOpenSslPeer peer(/*server=*/true, GetParam());
  auto client = *TlsConnection::Create(ClientOptions(), absl::Now());
  std::string got;
  peer.Pump(*client, &got, absl::Now());
  ASSERT_TRUE(client->secure()) << peer.engine_error();
  EXPECT_TRUE(client->authorized());
  EXPECT_EQ(client->protocol(), GetParam().version);
  EXPECT_EQ(client->GetCipher()->name, SSL_CIPHER_get_name(SSL_get_current_cipher(peer.ssl())));
  EXPECT_TRUE(client->Write("to openssl").ok());
  SSL_write(peer.ssl(), "to engine", 9);
  peer.Pump(*client, &got, absl::Now());
  EXPECT_EQ(peer.received(), "to openssl");
  EXPECT_EQ(got, "to engine");
  client->End(absl::Now());
  peer.Pump(*client, &got, absl::Now());
  EXPECT_TRUE(peer.peer_closed());
}

TEST_P(InProcessOpenSslTest, EngineServerWithOpenSslClient) {
  RawOpenSslPeer peer(/*server=*/false, GetParam());
  auto server = *TlsConnection::Create(ServerOptions(GetParam().identity), absl::Now());
  std::string got;
  peer.Pump(*server, &got, absl::Now());
  ASSERT_TRUE(server->secure()) << peer.engine_error();
  EXPECT_EQ(SSL_get_verify_result(peer.ssl()), X509_V_OK);
  EXPECT_EQ(server->servername(), "localhost");
  SSL_write(peer.ssl(), "to engine", 9);
  EXPECT_TRUE(server->Write("to openssl").ok());
  peer.Pump(*server, &got, absl::Now());
  EXPECT_EQ(got, "to engine");
  EXPECT_EQ(peer.received(), "to openssl");
}

INSTANTIATE_TEST_SUITE_P(All, InProcessOpenSslTest, ::testing::ValuesIn(AllParams()), Name);

// ---- openssl s_server / s_client programs ----

class OpenSslProgramTest : public ::testing::TestWithParam<Param> {};

TEST_P(OpenSslProgramTest, EngineClientTalksToSServer) {
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev",
                          OpenSslVersionFlag(GetParam().version), "-cert",
                          TestFilePath(GetParam().identity + ".pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                          TestFilePath(GetParam().identity + "-key.pem")})
                  .ok());
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kPeerTimeout);
  ASSERT_TRUE(accept.ok()) << accept.status();
  int port = std::stoi(accept->substr(accept->rfind(':') + 1));
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);

  auto client = *TlsConnection::Create(ClientOptions(), absl::Now());
  std::string got;
  const std::string line = "hello tlsengine";
  std::string reversed(line.rbegin(), line.rend());
  absl::Status s = RunOverSocket(
      *client, fd,
      [&](TlsConnection& c, const Event& ev) {
        if (ev.type == EventType::kSecure) { EXPECT_TRUE(c.Write(line + "\n").ok()); }
        if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      },
      kPeerTimeout, [&] { return absl::StrContains(got, reversed); });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(client->authorized()) << client->authorization_status();
  EXPECT_EQ(client->protocol(), GetParam().version);
  EXPECT_TRUE(absl::StrContains(got, reversed)) << got;
  server.Wait(absl::Seconds(5));
  EXPECT_TRUE(absl::StrContains(server.out(), "1 server accepts that finished")) << server.out();
}

// Runs the engine as a server for one connection from a client program:
// answers the first line (or HTTP request) it receives, then closes with
// close_notify. Returns what the engine received.
struct ServedConnection {
  absl::Status status;
  std::string received;
  std::string protocol;
  std::string servername;
  bool secure = false;
};

ServedConnection ServeOne(Listener& listener, const ConnectionOptions& options, const std::string& reply_prefix,
                          bool http = false) {
  ServedConnection result;
  result.status = testing::ServeRequest(
      listener, options, http ? "\r\n\r\n" : "\n",
      [&](const std::string& received) {
        if (!http) return reply_prefix + received;
        return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", reply_prefix.size(),
                            "\r\nConnection: close\r\n\r\n", reply_prefix);
      },
      [&](TlsConnection&, const Event& ev) { result.secure |= ev.type == EventType::kSecure; },
      [&](TlsConnection& c) {
        result.protocol = c.protocol();
        result.servername = c.servername();
      },
      kPeerTimeout, &result.received);
  return result;
}

TEST_P(OpenSslProgramTest, SClientTalksToEngineServer) {
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener.port()),
                          "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error",
                          "-CAfile", TestFilePath("ca1.pem"), OpenSslVersionFlag(GetParam().version), "-brief"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  ServedConnection served = ServeOne(listener, ServerOptions(GetParam().identity), "pong: ");
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_TRUE(served.status.ok()) << served.status;
  EXPECT_EQ(served.received, "ping\n");
  EXPECT_EQ(served.protocol, GetParam().version);
  EXPECT_EQ(served.servername, "localhost");
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(client.err(), "Verification: OK")) << client.err();
  EXPECT_TRUE(absl::StrContains(client.err(), "Protocol version: " + GetParam().version)) << client.err();
}

TEST(OpenSslProgramTest, SClientWithAClientCertificate) {
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener.port()),
                          "-servername", "localhost", "-CAfile", TestFilePath("ca1.pem"), "-cert",
                          TestFilePath("client.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key", TestFilePath("client-key.pem"), "-brief"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  ConnectionOptions so = ServerOptions("server-ecdsa");
  so.request_cert = true;
  so.reject_unauthorized = true;
  ServedConnection served = ServeOne(listener, so, "pong: ");
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_TRUE(served.status.ok()) << served.status;
  EXPECT_EQ(served.received, "ping\n");
}

TEST(OpenSslProgramTest, SClientWithoutCaGetsTheEngineServersAlert) {
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener.port()),
                          "-servername", "localhost", "-brief"})
                  .ok());
  ConnectionOptions so = ServerOptions("server-ecdsa");
  so.request_cert = true;  // s_client sends no certificate
  so.reject_unauthorized = true;
  ServedConnection served = ServeOne(listener, so, "");
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_EQ(NodeCode(served.status), "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") << served.status;
  EXPECT_TRUE(absl::StrContains(client.err(), "alert certificate required")) << client.err();
}

INSTANTIATE_TEST_SUITE_P(All, OpenSslProgramTest, ::testing::ValuesIn(AllParams()), Name);

// ---- Other TLS stacks as clients ----

struct ClientProgram {
  std::string name;
  std::vector<std::string> argv;  // "{port}" and "{ca}" are substituted
  bool http;
  std::string expect_in_stdout;
};

std::vector<ClientProgram> ClientPrograms() {
  return {
      {"GnuTls", {"gnutls-cli", "--x509cafile", "{ca}", "--sni-hostname", "localhost", "--verify-hostname",
                  "localhost", "-p", "{port}", "127.0.0.1"}, false, "pong: ping"},
      {"Python", {"python3", "-c",
                  "import socket, ssl, sys\n"
                  "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
                  "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='localhost')\n"
                  "s.sendall(b'ping\\n')\n"
                  "data = b''\n"
                  "while True:\n"
                  "    chunk = s.recv(1024)\n"
                  "    if not chunk: break\n"
                  "    data += chunk\n"
                  "print(s.version(), data.decode())\n",
                  "{port}", "{ca}"}, false, "pong: ping"},
      {"Node", {"node", "-e",
                "const tls = require('tls'), fs = require('fs');\n"
                "const s = tls.connect({host: '127.0.0.1', port: +process.argv[1], servername: 'localhost',\n"
                "  ca: fs.readFileSync(process.argv[2])}, () => s.write('ping\\n'));\n"
                "let got = ''; s.on('data', d => got += d);\n"
                "s.on('end', () => console.log(s.getProtocol(), s.authorized, got));\n"
                "s.on('error', e => { console.log('error', e.code); process.exit(1); });\n",
                "{port}", "{ca}"}, false, "true pong: ping"},
      {"Curl", {"curl", "-sS", "--cacert", "{ca}", "--resolve", "localhost:{port}:127.0.0.1",
                "https://localhost:{port}/hello"}, true, "pong from tlsengine"},
  };
}

class ClientProgramTest : public ::testing::TestWithParam<ClientProgram> {};

TEST_P(ClientProgramTest, TalksToEngineServer) {
  Listener listener;
  std::vector<std::string> argv;
  for (std::string a : GetParam().argv) {
    for (auto [key, value] : {std::pair<std::string, std::string>{"{port}", std::to_string(listener.port())},
                              std::pair<std::string, std::string>{"{ca}", TestFilePath("ca1.pem")}}) {
      for (size_t at; (at = a.find(key)) != std::string::npos;) a.replace(at, key.size(), value);
    }
    argv.push_back(a);
  }
  Subprocess client;
  ASSERT_TRUE(client.Start(argv).ok());
  if (GetParam().name == "GnuTls") { EXPECT_TRUE(client.WriteStdin("ping\n").ok()); }
  ServedConnection served =
      ServeOne(listener, ServerOptions("server-rsa"), GetParam().http ? "pong from tlsengine" : "pong: ", GetParam().http);
  client.CloseStdin();
  int rc = client.Wait(absl::Seconds(10));
  EXPECT_TRUE(served.secure) << served.status;
  EXPECT_TRUE(served.status.ok()) << served.status;
  EXPECT_EQ(served.servername, "localhost");
  EXPECT_TRUE(absl::StrContains(client.out(), GetParam().expect_in_stdout))
      << "rc " << rc << "\nstdout: " << client.out() << "\nstderr: " << client.err();
  if (GetParam().http) {
    EXPECT_TRUE(absl::StartsWith(served.received, "GET /hello HTTP/1.1\r\n")) << served.received;
  }
}

INSTANTIATE_TEST_SUITE_P(All, ClientProgramTest, ::testing::ValuesIn(ClientPrograms()),
                         [](const auto& info) { return info.param.name; });

TEST(NodeServerTest, EngineClientTalksToNodeTlsServer) {
  Subprocess server;
  absl::StatusOr<int> port = testing::StartNodeTlsServer(
      server, "{ s.end('node says ' + d + ' over ' + s.getProtocol()); srv.close(); }", kPeerTimeout);
  ASSERT_TRUE(port.ok()) << port.status();
  int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  auto client = *TlsConnection::Create(ClientOptions(), absl::Now());
  std::string got;
  bool peer_closed = false;
  absl::Status s = RunOverSocket(
      *client, fd,
      [&](TlsConnection& c, const Event& ev) {
        if (ev.type == EventType::kSecure) { EXPECT_TRUE(c.Write("hi").ok()); }
        if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
        if (ev.type == EventType::kPeerClosed) {
          peer_closed = true;
          c.End(absl::Now());
        }
      },
      kPeerTimeout);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(peer_closed);
  EXPECT_EQ(got, "node says hi over TLSv1.3");
  server.Wait(absl::Seconds(5));
}

}  // namespace
}  // namespace tlsengine
