// The epoll Server and TlsSocket against peers we did not write, over
// loopback: openssl s_client/s_server, gnutls-cli/gnutls-serv, Node's tls,
// Python's ssl and curl. Every wait is bounded.
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/epoll/epoll_testlib.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/keylog.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace epoll {
namespace {

using tlsengine::testing::KeylogEntries;
using tlsengine::testing::KeylogLabels;
using tlsengine::testing::Subprocess;
using tlsengine::testing::TestFilePath;
using testing::ClientTo;
using testing::RunUntil;
using testing::ServerFor;

constexpr absl::Duration kPeerTimeout = absl::Seconds(15);

std::string OpenSslVersionFlag(const std::string& version) {
  return version == "TLSv1.2" ? "-tls1_2" : "-tls1_3";
}

// Starts `openssl s_server -rev` (it answers each line reversed) for one
// connection: TLS `version`, `identity` with its chain, then `extra`.
// Returns its port once it accepts.
absl::StatusOr<int> StartSServer(Subprocess& server, const std::string& version, const std::string& identity,
                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev",
                                   OpenSslVersionFlag(version), "-cert", TestFilePath(identity + ".pem"),
                                   "-cert_chain", TestFilePath("int1.pem"), "-key",
                                   TestFilePath(identity + "-key.pem")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::Status started = server.Start(argv);
  if (!started.ok()) return started;
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kPeerTimeout);
  if (!accept.ok()) return accept.status();
  return std::stoi(accept->substr(accept->rfind(':') + 1));
}

// `openssl s_client` to our server on `port`, for localhost, trusting
// ca1, TLS `version`, then `extra`.
std::vector<std::string> SClientTo(int port, const std::string& version, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                                   "-servername", "localhost", "-CAfile", TestFilePath("ca1.pem"),
                                   OpenSslVersionFlag(version)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Our server answering one request per connection: "pong: <line>" to a
// line, a small HTTP response to an HTTP request; then end().
class ServerInterop : public ::testing::Test {
 protected:
  void SetUp() override { loop_ = *Loop::Create(); }
  void TearDown() override {
    if (server_ != nullptr) {
      bool closed = false;
      ASSERT_TRUE(server_->Close([&] { closed = true; }).ok());
      server_->EndAll();
      EXPECT_TRUE(RunUntil(*loop_, [&] { return closed; }));
      server_.reset();
    }
  }

  void Start(ServerOptions o, bool reply = true) {
    handlers_.on_secure_connection = [this, reply](std::shared_ptr<TlsSocket> s) {
      TlsSocket* raw = s.get();
      ++secure_;
      last_ = s;
      protocol_ = s->protocol();
      servername_ = s->servername();
      alpn_ = s->alpn_protocol();
      authorized_ = s->authorized();
      reused_ = reused_ || s->is_session_reused();
      s->handlers().on_data = [this, raw, reply](absl::string_view d) {
        received_.append(d.data(), d.size());
        if (!reply) return;
        if (absl::StrContains(received_, "\r\n\r\n")) {
          raw->End("HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\npong from tlsengine");
        } else if (absl::StrContains(received_, "\n")) {
          raw->End(absl::StrCat("pong: ", received_));
        }
      };
      s->handlers().on_error = [this](const absl::Status& e) { socket_errors_.push_back(e); };
    };
    handlers_.on_client_error = [this](const absl::Status& e, TlsSocket&) { client_errors_.push_back(e); };
    server_ = *Server::Create({loop_.get()}, std::move(o), handlers_);
    ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
    port_ = server_->address()->port;
  }

  // Runs the loop while `client` works, until `done` or the bound; then
  // lets the client finish.
  int RunWith(Subprocess& client, const std::function<bool()>& done) {
    EXPECT_TRUE(RunUntil(*loop_, done, kPeerTimeout)) << client.out() << client.err();
    client.CloseStdin();
    RunUntil(*loop_, [&] { return server_->connections() == 0; }, absl::Seconds(5));
    return client.Wait(absl::Seconds(10));
  }

  // Our client with `o` to `server`, an s_server -rev: sends `line`, ends
  // once the reversed line has come back (everything received goes to
  // `got`), runs until it has closed. `setup` may add handlers first.
  std::shared_ptr<TlsSocket> ExchangeWithRev(Subprocess& server, TlsSocketOptions o, const std::string& line,
                                             std::string* got,
                                             const std::function<void(TlsSocket&)>& setup = nullptr) {
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), std::move(o));
    const std::string reversed(line.rbegin(), line.rend());
    bool closed = false;
    if (setup) setup(*c);
    c->handlers().on_secure_connect = [&, raw = c.get()] { raw->Write(line + "\n"); };
    c->handlers().on_data = [&, raw = c.get()](absl::string_view d) {
      got->append(d.data(), d.size());
      if (absl::StrContains(*got, reversed)) raw->End();
    };
    c->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
    c->handlers().on_close = [&](bool) { closed = true; };
    EXPECT_TRUE(RunUntil(*loop_, [&] { return closed; }, kPeerTimeout))
        << *got << " state " << ReadyStateName(c->ready_state()) << " secure " << c->secure_established()
        << " raw r/w " << c->raw_bytes_read() << "/" << c->raw_bytes_written() << " " << server.out()
        << server.err();
    EXPECT_TRUE(absl::StrContains(*got, reversed)) << *got;
    c->handlers() = SocketHandlers();  // they refer to this frame
    return c;
  }

  std::unique_ptr<Loop> loop_;
  ServerHandlers handlers_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  int secure_ = 0;
  std::shared_ptr<TlsSocket> last_;  // the latest secure server socket
  std::string received_, protocol_, servername_, alpn_;
  bool authorized_ = false, reused_ = false;
  std::vector<absl::Status> client_errors_, socket_errors_;
};

struct Param {
  std::string version;
  std::string identity;
};

class SClientTest : public ServerInterop, public ::testing::WithParamInterface<Param> {};

TEST_P(SClientTest, TalksToOurServer) {
  Start(ServerFor(GetParam().identity));
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-verify_hostname", "localhost", "-verify_return_error", "-CAfile",
                          TestFilePath("ca1.pem"), OpenSslVersionFlag(GetParam().version), "-brief"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  RunWith(client, [&] { return absl::StrContains(received_, "\n") && server_->connections() == 0; });
  EXPECT_EQ(received_, "ping\n");
  EXPECT_EQ(protocol_, GetParam().version);
  EXPECT_EQ(servername_, "localhost");
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(client.err(), "Verification: OK")) << client.err();
  EXPECT_TRUE(client_errors_.empty()) << client_errors_[0];
}

TEST_P(SClientTest, OurClientTalksToSServer) {
  Subprocess server;
  absl::StatusOr<int> port = StartSServer(server, GetParam().version, GetParam().identity);
  ASSERT_TRUE(port.ok()) << port.status();
  std::string got;
  std::shared_ptr<TlsSocket> c = ExchangeWithRev(server, ClientTo(*port), "hello tlsengine", &got);
  ASSERT_EQ(c->ready_state(), ReadyState::kClosed);
  EXPECT_TRUE(c->authorized());
  EXPECT_EQ(c->protocol(), GetParam().version);
  server.Wait(absl::Seconds(5));
}

INSTANTIATE_TEST_SUITE_P(All, SClientTest,
                         ::testing::Values(Param{"TLSv1.2", "server-rsa"}, Param{"TLSv1.3", "server-rsa"},
                                           Param{"TLSv1.2", "server-ecdsa"}, Param{"TLSv1.3", "server-ecdsa"}),
                         [](const auto& info) {
                           std::string v = info.param.version == "TLSv1.2" ? "Tls12" : "Tls13";
                           return v + (info.param.identity == "server-rsa" ? "Rsa" : "Ecdsa");
                         });

TEST_F(ServerInterop, SClientWithAClientCertificateIsAuthorized) {
  ServerOptions o = ServerFor("server-ecdsa");
  o.connection.request_cert = true;
  o.connection.reject_unauthorized = true;
  Start(o);
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-CAfile", TestFilePath("ca1.pem"), "-cert", TestFilePath("client.pem"),
                          "-cert_chain", TestFilePath("int1.pem"), "-key", TestFilePath("client-key.pem"), "-brief"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  RunWith(client, [&] { return absl::StrContains(received_, "\n"); });
  EXPECT_TRUE(authorized_);
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out();
}

TEST_F(ServerInterop, SClientWithoutACertificateIsAClientError) {
  ServerOptions o = ServerFor("server-ecdsa");
  o.connection.request_cert = true;
  o.connection.reject_unauthorized = true;
  Start(o);
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-CAfile", TestFilePath("ca1.pem"), "-brief"})
                  .ok());
  RunWith(client, [&] { return !client_errors_.empty(); });
  ASSERT_FALSE(client_errors_.empty());
  EXPECT_EQ(NodeCode(client_errors_[0]), "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") << client_errors_[0];
  EXPECT_EQ(secure_, 0);
  // The alert reached s_client before the close (the careful close).
  EXPECT_TRUE(absl::StrContains(client.err(), "alert") || absl::StrContains(client.out(), "alert"))
      << client.out() << client.err();
}

TEST_F(ServerInterop, SClientAlpnAndSniPickTheContext) {
  ServerOptions o = ServerFor("server-rsa");
  o.connection.alpn_protocols = {"h2", "http/1.1"};
  Start(o);
  ASSERT_TRUE(server_->AddContext("other.example.com", tlsengine::testing::IdentityOptions("other-name")).ok());
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "other.example.com", "-verify_hostname", "other.example.com", "-verify_return_error",
                          "-CAfile", TestFilePath("ca1.pem"), "-alpn", "http/1.1", "-brief"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  RunWith(client, [&] { return absl::StrContains(received_, "\n"); });
  EXPECT_EQ(alpn_, "http/1.1");
  EXPECT_EQ(servername_, "other.example.com");
  EXPECT_TRUE(absl::StrContains(client.err(), "Verification: OK")) << client.err();
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out();
}

TEST_F(ServerInterop, SClientResumesATls12SessionFromTheStore) {
  ServerOptions o = ServerFor("server-rsa", "TLSv1.2");
  o.context.secure_options = 0x00004000;  // SSL_OP_NO_TICKET: session ids only
  Start(o);
  std::string sess = absl::StrCat("/tmp/tlsengine-epoll-sess-", getpid());
  for (int round = 0; round < 2; ++round) {
    Subprocess client;
    std::vector<std::string> argv = {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_),
                                     "-servername", "localhost", "-CAfile", TestFilePath("ca1.pem"), "-tls1_2",
                                     round == 0 ? "-sess_out" : "-sess_in", sess};
    ASSERT_TRUE(client.Start(argv).ok());
    ASSERT_TRUE(client.WriteStdin("ping\n").ok());
    received_.clear();
    RunWith(client, [&] { return absl::StrContains(received_, "\n"); });
    if (round == 1) {
      EXPECT_TRUE(absl::StrContains(client.out(), "Reused, TLSv1.2")) << client.out();
    }
  }
  ::unlink(sess.c_str());
  EXPECT_TRUE(reused_);
  EXPECT_GE(static_cast<MemorySessionStore*>(server_->session_store())->size(), 1u);
}

TEST_F(ServerInterop, SClientStapledOcspResponseFromOCSPRequest) {
  ServerOptions o = ServerFor("server-rsa");
  std::string der = tlsengine::testing::ReadTestFile("server-rsa-ocsp.der");
  int asked = 0;
  handlers_.on_ocsp_request = [&](TlsSocket&, const std::string& cert, const std::string& issuer,
                                  std::function<void(absl::StatusOr<std::string>)> done) {
    ++asked;
    EXPECT_FALSE(cert.empty());
    // Answer later, from the loop, as an application fetching it would.
    loop_->AddTimer(loop_->Now() + absl::Milliseconds(20), [done, der] { done(der); });
  };
  Start(o);
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-CAfile", TestFilePath("ca1.pem"), "-status"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  RunWith(client, [&] { return absl::StrContains(received_, "\n"); });
  EXPECT_EQ(asked, 1);
  EXPECT_TRUE(absl::StrContains(client.out(), "OCSP Response Status: successful")) << client.out();
}

TEST_F(ServerInterop, SClientRenegotiationPastTheLimitIsASessionAttack) {
  ServerOptions o = ServerFor("server-rsa", "TLSv1.2");
  o.connection.allow_client_renegotiation = true;
  o.connection.client_reneg_limit = 1;
  Start(o, /*reply=*/false);
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-CAfile", TestFilePath("ca1.pem"), "-tls1_2"})
                  .ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure_ == 1; }, kPeerTimeout));
  ASSERT_TRUE(client.WriteStdin("R\n").ok());
  // The first renegotiation is allowed; the second goes past the limit.
  RunUntil(*loop_, [] { return false; }, absl::Milliseconds(500));
  ASSERT_TRUE(client.WriteStdin("R\n").ok());
  RunWith(client, [&] { return !socket_errors_.empty(); });
  ASSERT_FALSE(socket_errors_.empty());
  EXPECT_EQ(NodeCode(socket_errors_[0]), "ERR_TLS_SESSION_ATTACK") << socket_errors_[0];
}

TEST_F(ServerInterop, SClientKeyUpdateKeepsTheConnectionWorking) {
  Start(ServerFor("server-rsa", "TLSv1.3"));
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-servername",
                          "localhost", "-CAfile", TestFilePath("ca1.pem"), "-tls1_3"})
                  .ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure_ == 1; }, kPeerTimeout));
  ASSERT_TRUE(client.WriteStdin("K\n").ok());  // KeyUpdate, asking for ours
  RunUntil(*loop_, [] { return false; }, absl::Milliseconds(300));
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  RunWith(client, [&] { return absl::StrContains(received_, "ping\n"); });
  EXPECT_TRUE(socket_errors_.empty());
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out() << client.err();
}

struct Program {
  std::string name;
  std::vector<std::string> argv;  // "{port}" and "{ca}" are substituted
  std::string stdin_text;
  std::string expect_in_stdout;
};

class ProgramTest : public ServerInterop, public ::testing::WithParamInterface<Program> {};

TEST_P(ProgramTest, TalksToOurServer) {
  Start(ServerFor("server-rsa"));
  std::vector<std::string> argv;
  for (std::string a : GetParam().argv) {
    for (auto [key, value] : {std::pair<std::string, std::string>{"{port}", std::to_string(port_)},
                              std::pair<std::string, std::string>{"{ca}", TestFilePath("ca1.pem")}}) {
      for (size_t at; (at = a.find(key)) != std::string::npos;) a.replace(at, key.size(), value);
    }
    argv.push_back(a);
  }
  Subprocess client;
  ASSERT_TRUE(client.Start(argv).ok());
  if (!GetParam().stdin_text.empty()) { ASSERT_TRUE(client.WriteStdin(GetParam().stdin_text).ok()); }
  int rc = RunWith(client, [&] { return secure_ == 1 && server_->connections() == 0; });
  EXPECT_EQ(servername_, "localhost");
  EXPECT_TRUE(absl::StrContains(client.out(), GetParam().expect_in_stdout))
      << "rc " << rc << "\nstdout: " << client.out() << "\nstderr: " << client.err();
  EXPECT_TRUE(client_errors_.empty()) << client_errors_[0];
}

INSTANTIATE_TEST_SUITE_P(
    All, ProgramTest,
    ::testing::Values(
        Program{"GnuTls",
                {"gnutls-cli", "--x509cafile", "{ca}", "--sni-hostname", "localhost", "--verify-hostname",
                 "localhost", "-p", "{port}", "127.0.0.1"},
                "ping\n",
                "pong: ping"},
        Program{"Python",
                {"python3", "-c",
                 "import socket, ssl, sys\n"
                 "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
                 "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), "
                 "server_hostname='localhost')\n"
                 "s.sendall(b'ping\\n')\n"
                 "data = b''\n"
                 "while True:\n"
                 "    chunk = s.recv(1024)\n"
                 "    if not chunk: break\n"
                 "    data += chunk\n"
                 "print(s.version(), data.decode())\n",
                 "{port}", "{ca}"},
                "",
                "pong: ping"},
        Program{"Node",
                {"node", "-e",
                 "const tls = require('tls'), fs = require('fs');\n"
                 "const s = tls.connect({host: '127.0.0.1', port: +process.argv[1], servername: 'localhost',\n"
                 "  ca: fs.readFileSync(process.argv[2])}, () => s.write('ping\\n'));\n"
                 "let got = ''; s.on('data', d => got += d);\n"
                 "s.on('end', () => console.log(s.getProtocol(), s.authorized, got));\n"
                 "s.on('error', e => { console.log('error', e.code); process.exit(1); });\n",
                 "{port}", "{ca}"},
                "",
                "true pong: ping"},
        Program{"Curl",
                {"curl", "-sS", "--cacert", "{ca}", "--resolve", "localhost:{port}:127.0.0.1",
                 "https://localhost:{port}/hello"},
                "",
                "pong from tlsengine"}),
    [](const auto& info) { return info.param.name; });

TEST_F(ServerInterop, OurClientTalksToGnutlsServWithAlpnAndOcsp) {
  int port;
  {
    tlsengine::testing::Listener probe;  // a free port for gnutls-serv, released at once
    port = probe.port();
  }
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"gnutls-serv", "--echo", "-p", std::to_string(port), "--x509certfile",
                          TestFilePath("server-rsa-chain.pem"), "--x509keyfile", TestFilePath("server-rsa-key.pem"),
                          "--alpn=h2", "--ocsp-response=" + TestFilePath("server-rsa-ocsp.der"),
                          "--ignore-ocsp-response-errors"})
                  .ok());
  ASSERT_TRUE(server.WaitForLine("listening", kPeerTimeout).ok()) << server.out() << server.err();
  TlsSocketOptions o = ClientTo(port);
  o.tls.alpn_protocols = {"h2"};
  o.tls.request_ocsp = true;
  std::shared_ptr<TlsSocket> c;
  std::string got, ocsp;
  bool closed = false;
  // gnutls-serv may take a moment to accept after printing "listening".
  for (int attempt = 0; attempt < 20 && got.empty(); ++attempt) {
    closed = false;
    c = *TlsSocket::Connect(loop_.get(), o);
    c->handlers().on_secure_connect = [&] { c->Write("echo me\n"); };
    c->handlers().on_ocsp_response = [&](const std::string& r) { ocsp = r; };
    c->handlers().on_data = [&](absl::string_view d) {
      got.append(d.data(), d.size());
      if (absl::StrContains(got, "echo me")) c->End();
    };
    c->handlers().on_close = [&](bool) { closed = true; };
    ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }, kPeerTimeout));
    if (got.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(absl::StrContains(got, "echo me")) << got;
  EXPECT_EQ(c->alpn_protocol(), "h2");
  EXPECT_FALSE(ocsp.empty());
  server.Kill();
}

TEST_F(ServerInterop, OurClientTalksToNodeTlsServerAndResumesWithItsSession) {
  Subprocess server;
  absl::StatusOr<int> node_port = tlsengine::testing::StartNodeTlsServer(
      server, "s.end('node says ' + d + ' reused ' + s.isSessionReused())", kPeerTimeout);
  ASSERT_TRUE(node_port.ok()) << node_port.status();
  int port = *node_port;
  std::string session;
  for (int round = 0; round < 2; ++round) {
    TlsSocketOptions o = ClientTo(port);
    o.tls.session = session;
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
    std::string got;
    bool closed = false;
    c->handlers().on_secure_connect = [&] { c->Write("hi"); };
    c->handlers().on_session = [&](const std::string& s) { session = s; };
    c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
    c->handlers().on_error = [&](const absl::Status& e) { ADD_FAILURE() << e; };
    c->handlers().on_close = [&](bool) { closed = true; };
    ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }, kPeerTimeout));
    EXPECT_EQ(got, round == 0 ? "node says hi reused false" : "node says hi reused true");
    EXPECT_EQ(c->is_session_reused(), round == 1);
    EXPECT_FALSE(session.empty());
  }
  server.Kill();
}

// Key logs checked against an independent oracle: OpenSSL's own
// -keylogfile, at the other end of the same connection, must hold exactly
// the lines we logged, through the 'keylog' event and through the key-log
// file option (tlsctl's --keylog), for TLS 1.2 and 1.3.
class KeylogInterop : public ServerInterop, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    ServerInterop::SetUp();
    for (std::string* path : {&ours_, &theirs_}) {
      *path = absl::StrCat(::testing::TempDir(), "/keylog-", path == &ours_ ? "ours" : "openssl", "-",
                           GetParam(), "-", getpid());
      ::unlink(path->c_str());
    }
  }
  void TearDown() override {
    ServerInterop::TearDown();
    ::unlink(ours_.c_str());
    ::unlink(theirs_.c_str());
  }
  // Each of the version's labels once in OpenSSL's file, and the same
  // lines in our file and our events.
  void ExpectSameLines(const std::vector<std::string>& events) {
    absl::StatusOr<KeylogEntries> theirs = tlsengine::testing::ReadKeylog(theirs_);
    ASSERT_TRUE(theirs.ok()) << theirs.status();
    for (const std::string& label : KeylogLabels(GetParam())) EXPECT_EQ(theirs->count(label), 1u) << label;
    EXPECT_EQ(theirs->size(), KeylogLabels(GetParam()).size());
    absl::StatusOr<KeylogEntries> ours = tlsengine::testing::ReadKeylog(ours_);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_EQ(*ours, *theirs) << "our key-log file";
    absl::StatusOr<KeylogEntries> logged = tlsengine::testing::ParseKeylog(absl::StrJoin(events, "\n"));
    ASSERT_TRUE(logged.ok()) << logged.status();
    EXPECT_EQ(*logged, *theirs) << "our 'keylog' events";
  }
  std::string ours_, theirs_;
};

TEST_P(KeylogInterop, SClientLogsTheSameSecretsAsOurServer) {
  ServerOptions o = ServerFor("server-ecdsa", GetParam());
  o.keylog_file = ours_;
  std::vector<std::string> events;
  handlers_.on_keylog = [&](const std::string& line, TlsSocket&) { events.push_back(line); };
  Start(o);
  Subprocess client;
  ASSERT_TRUE(client.Start(SClientTo(port_, GetParam(), {"-keylogfile", theirs_, "-brief"})).ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  int rc = RunWith(client, [&] { return absl::StrContains(received_, "\n") && server_->connections() == 0; });
  EXPECT_EQ(rc, 0) << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(client.out(), "pong: ping")) << client.out() << client.err();
  EXPECT_EQ(protocol_, GetParam());
  ExpectSameLines(events);
}

TEST_P(KeylogInterop, SServerLogsTheSameSecretsAsOurClient) {
  Subprocess server;
  absl::StatusOr<int> port = StartSServer(server, GetParam(), "server-ecdsa", {"-keylogfile", theirs_});
  ASSERT_TRUE(port.ok()) << port.status();
  TlsSocketOptions o = ClientTo(*port);
  o.keylog_file = ours_;
  std::vector<std::string> events;
  std::string got;
  std::shared_ptr<TlsSocket> c = ExchangeWithRev(server, o, "keylog", &got, [&](TlsSocket& s) {
    s.handlers().on_keylog = [&](const std::string& line) { events.push_back(line); };
  });
  ASSERT_EQ(c->ready_state(), ReadyState::kClosed);
  EXPECT_EQ(c->protocol(), GetParam());
  EXPECT_EQ(server.Wait(absl::Seconds(5)), 0) << server.out() << server.err();
  ExpectSameLines(events);
}

INSTANTIATE_TEST_SUITE_P(All, KeylogInterop, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

// Renegotiation started by our side (the peer's side is
// SClientRenegotiationPastTheLimitIsASessionAttack above).
TEST_F(ServerInterop, OurClientRenegotiatesWithSServerAndDataFlowsBothWaysAfter) {
  Subprocess server;
  // OpenSSL 3.0 servers refuse client-initiated renegotiation by default.
  absl::StatusOr<int> port = StartSServer(server, "TLSv1.2", "server-rsa", {"-client_renegotiation"});
  ASSERT_TRUE(port.ok()) << port.status();
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(*port));
  std::string got;
  bool closed = false, started = false;
  std::vector<absl::Status> done;
  int renegotiated = 0;
  c->handlers().on_secure_connect = [&] { c->Write("before\n"); };
  c->handlers().on_renegotiated = [&] { ++renegotiated; };
  c->handlers().on_data = [&](absl::string_view d) {
    got.append(d.data(), d.size());
    if (absl::StrContains(got, "erofeb") && !started) {
      started = true;
      absl::Status s = c->Renegotiate({}, [&](const absl::Status& result) {
        done.push_back(result);
        c->Write("after\n");  // both ways once it is over
      });
      EXPECT_TRUE(s.ok()) << s;
    }
    if (absl::StrContains(got, "retfa")) c->End();
  };
  c->handlers().on_error = [&](const absl::Status& e) { ADD_FAILURE() << e; };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }, kPeerTimeout)) << got << server.out() << server.err();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].ok()) << done[0];
  EXPECT_EQ(renegotiated, 1) << "'renegotiated' after Renegotiate()'s callback";
  EXPECT_TRUE(absl::StrContains(got, "erofeb\nretfa")) << got;
  EXPECT_TRUE(c->authorized());
  EXPECT_EQ(server.Wait(absl::Seconds(5)), 0) << server.out() << server.err();
}

TEST_F(ServerInterop, OurServerRenegotiatesAnSClientConnectionAndDataFlowsBothWaysAfter) {
  Start(ServerFor("server-rsa", "TLSv1.2"), /*reply=*/false);
  Subprocess client;
  ASSERT_TRUE(client.Start(SClientTo(port_, "TLSv1.2")).ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return last_ != nullptr; }, kPeerTimeout)) << client.out() << client.err();
  std::vector<absl::Status> done;
  int renegotiated = 0;
  last_->handlers().on_renegotiated = [&] { ++renegotiated; };
  ASSERT_TRUE(last_->Renegotiate({}, [&](const absl::Status& s) { done.push_back(s); }).ok());
  // s_client answers the HelloRequest as soon as it reads the socket.
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !done.empty(); }, kPeerTimeout)) << client.out() << client.err();
  EXPECT_TRUE(done[0].ok()) << done[0];
  EXPECT_EQ(renegotiated, 1);
  ASSERT_TRUE(client.WriteStdin("after\n").ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return absl::StrContains(received_, "after\n"); }, kPeerTimeout));
  last_->End("from the server after\n");
  EXPECT_EQ(RunWith(client, [&] { return server_->connections() == 0; }), 0) << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(client.out(), "from the server after")) << client.out() << client.err();
  EXPECT_TRUE(socket_errors_.empty()) << socket_errors_[0];
  EXPECT_EQ(last_->engine()->stats().renegotiations, 1u);
}

TEST_F(ServerInterop, OurServerCannotRenegotiateTls13) {
  Start(ServerFor("server-rsa", "TLSv1.3"), /*reply=*/false);
  Subprocess client;
  ASSERT_TRUE(client.Start(SClientTo(port_, "TLSv1.3")).ok());  // without -enable_pha
  ASSERT_TRUE(RunUntil(*loop_, [&] { return last_ != nullptr; }, kPeerTimeout)) << client.out() << client.err();
  absl::Status plain = last_->Renegotiate({});
  EXPECT_EQ(plain.code(), absl::StatusCode::kFailedPrecondition) << plain;
  EXPECT_EQ(NodeCode(plain), "ERR_TLS_RENEGOTIATE") << plain;
  // A certificate request after the handshake (RFC 8446 §4.6.2) needs the
  // client's post_handshake_auth extension, which s_client did not send.
  RenegotiateOptions pha;
  pha.request_cert = true;
  absl::Status refused = last_->Renegotiate(pha);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(NodeCode(refused), "ERR_TLS_RENEGOTIATE") << refused;
  // The connection is unharmed.
  ASSERT_TRUE(client.WriteStdin("still\n").ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return absl::StrContains(received_, "still\n"); }, kPeerTimeout));
  last_->End();
  EXPECT_EQ(RunWith(client, [&] { return server_->connections() == 0; }), 0) << client.out() << client.err();
  EXPECT_TRUE(socket_errors_.empty()) << socket_errors_[0];
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine
