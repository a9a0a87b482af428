// Issue 3's features against peers we did not write: openssl s_client and
// s_server (-servername, -alpn, -nextprotoneg, -sess_out/-sess_in,
// -reconnect, -status/-status_file, renegotiation with "R", -enable_pha,
// -keylogfile) and gnutls-cli (--alpn, --resume, --save-ocsp).
#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
using testing::IdentityOptions;
using testing::Listener;
using testing::MakeContext;
using testing::ReadTestFile;
using testing::RunOverSocket;
using testing::ServerOptions;
using testing::Subprocess;
using testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(20);

std::vector<std::string> SClient(int port, std::vector<std::string> extra) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                                   "-CAfile", TestFilePath("ca1.pem")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Serves one connection that answers "pong\n" to the first line and closes.
// `extra` sees every event first (and may answer suspensions).
absl::Status ServePong(Listener& listener, const ConnectionOptions& options,
                       const std::function<void(TlsConnection&, const Event&)>& extra = nullptr,
                       const std::function<void(TlsConnection&)>& inspect = nullptr) {
  return testing::ServeRequest(
      listener, options, "\n", [](const std::string&) { return std::string("pong\n"); }, extra, inspect, kTimeout);
}

// Runs `client` against the engine server: writes `input`, serves, waits.
struct ClientRun {
  absl::Status served;
  std::string out, err;
};

ClientRun RunClient(Listener& listener, const std::vector<std::string>& argv, const ConnectionOptions& options,
              const std::string& input = "ping\n",
              const std::function<void(TlsConnection&, const Event&)>& extra = nullptr,
              const std::function<void(TlsConnection&)>& inspect = nullptr) {
  Subprocess client;
  ClientRun run;
  run.served = client.Start(argv);
  if (!run.served.ok()) return run;
  EXPECT_TRUE(client.WriteStdin(input).ok());
  run.served = ServePong(listener, options, extra, inspect);
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  run.out = client.out();
  run.err = client.err();
  return run;
}

// ---- SNI ----

TEST(SniInteropTest, SClientServernamePicksTheContext) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_contexts = std::make_shared<SniContexts>();
  ASSERT_TRUE(so.sni_contexts->Add("other.example.com", MakeContext(IdentityOptions("other-name"))).ok());
  Listener listener;
  std::string servername;
  ClientRun run = RunClient(listener,
                      SClient(listener.port(), {"-servername", "other.example.com", "-verify_hostname",
                                                "other.example.com", "-verify_return_error"}),
                      so, "ping\n", nullptr, [&](TlsConnection& c) { servername = c.servername(); });
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_EQ(servername, "other.example.com");
  EXPECT_TRUE(absl::StrContains(run.out, "subject=CN = other.example.com")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "Verify return code: 0 (ok)")) << run.out;
}

TEST(SniInteropTest, SClientWithSniCallbackAnsweredAsynchronously) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_callback = true;
  Listener listener;
  ClientRun run = RunClient(listener, SClient(listener.port(), {"-servername", "other.example.com"}), so, "ping\n",
                      [](TlsConnection& c, const Event& ev) {
                        if (ev.type == EventType::kSniRequest && ev.servername == "other.example.com") {
                          ASSERT_TRUE(c.AnswerSni(MakeContext(IdentityOptions("other-name"))).ok());
                        }
                      });
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_TRUE(absl::StrContains(run.out, "subject=CN = other.example.com")) << run.out;
}

// ---- ALPN and NPN ----

TEST(AlpnInteropTest, SClientAlpn) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.alpn_protocols = {"h2", "http/1.1"};
  Listener listener;
  std::string alpn;
  ClientRun run = RunClient(listener, SClient(listener.port(), {"-alpn", "http/1.1,h2"}), so, "ping\n", nullptr,
                      [&](TlsConnection& c) { alpn = c.alpn_protocol(); });
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_EQ(alpn, "h2");
  EXPECT_TRUE(absl::StrContains(run.out, "ALPN protocol: h2")) << run.out;
}

TEST(AlpnInteropTest, SClientAlpnWithoutOverlapGetsTheAlert) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.alpn_protocols = {"h2"};
  Listener listener;
  ClientRun run = RunClient(listener, SClient(listener.port(), {"-alpn", "spdy/3"}), so);
  EXPECT_EQ(NodeCode(run.served), "ERR_SSL_NO_APPLICATION_PROTOCOL") << run.served;
  EXPECT_TRUE(absl::StrContains(run.err, "no application protocol")) << run.err;
}

TEST(NpnInteropTest, SClientNextProtoNeg) {
  SecureContextOptions o = IdentityOptions("server-rsa");
  o.npn_protocols = {"spdy/3", "http/1.1"};
  ConnectionOptions so;
  so.is_server = true;
  so.secure_context = MakeContext(o);
  Listener listener;
  std::string npn;
  ClientRun run = RunClient(listener, SClient(listener.port(), {"-tls1_2", "-nextprotoneg", "http/1.1"}), so, "ping\n",
                      nullptr, [&](TlsConnection& c) { npn = c.npn_protocol(); });
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_EQ(npn, "http/1.1");
  EXPECT_TRUE(absl::StrContains(run.out, "Next protocol: (1) http/1.1")) << run.out;
}

TEST(AlpnInteropTest, GnutlsCliAlpn) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.alpn_protocols = {"h2"};
  Listener listener;
  ClientRun run = RunClient(listener,
                      {"gnutls-cli", "--x509cafile", TestFilePath("ca1.pem"), "--sni-hostname", "localhost",
                       "--alpn=http/1.1", "--alpn=h2", "-p", std::to_string(listener.port()), "127.0.0.1"},
                      so);
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_TRUE(absl::StrContains(run.out, "Application protocol: h2")) << run.out << run.err;
}

// ---- Sessions ----

class SessionInteropTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionInteropTest, SClientSessOutThenSessIn) {
  ConnectionOptions so = ServerOptions("server-rsa");  // one context: one set of ticket keys
  std::string sess = absl::StrCat(::testing::TempDir(), "/sess-", GetParam(), ".pem");
  const std::string version = GetParam() == "TLSv1.3" ? "-tls1_3" : "-tls1_2";
  Listener listener;
  ClientRun first = RunClient(listener, SClient(listener.port(), {version, "-sess_out", sess}), so);
  ASSERT_TRUE(first.served.ok()) << first.served;
  EXPECT_TRUE(absl::StrContains(first.out, "New, TLSv1.")) << first.out;
  bool reused = false;
  ClientRun second = RunClient(listener, SClient(listener.port(), {version, "-sess_in", sess}), so, "ping\n", nullptr,
                         [&](TlsConnection& c) { reused = c.is_session_reused(); });
  ASSERT_TRUE(second.served.ok()) << second.served;
  EXPECT_TRUE(reused);
  EXPECT_TRUE(absl::StrContains(second.out, "Reused, " + GetParam())) << second.out;
}

INSTANTIATE_TEST_SUITE_P(Versions, SessionInteropTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

TEST(SessionInteropTest, SClientReconnect) {
  ConnectionOptions so = ServerOptions("server-rsa");
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client.Start(SClient(listener.port(), {"-tls1_2", "-reconnect"})).ok());
  int reused = 0;
  for (int i = 0; i < 6; ++i) {  // s_client connects once, then five more times
    // The last connection stays interactive: end of input ends it.
    if (i == 5) client.CloseStdin();
    absl::Status s = testing::ServeOne(
        listener, so, [](TlsConnection&, const Event&) {},
        [&](TlsConnection& c) { reused += c.is_session_reused() ? 1 : 0; }, kTimeout);
    ASSERT_TRUE(s.ok()) << s;
  }
  client.Wait(absl::Seconds(10));
  EXPECT_EQ(reused, 5) << client.out();
}

TEST(SessionInteropTest, GnutlsCliResume) {
  ConnectionOptions so = ServerOptions("server-rsa");
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"gnutls-cli", "--x509cafile", TestFilePath("ca1.pem"), "--sni-hostname", "localhost",
                          "--resume", "-p", std::to_string(listener.port()), "127.0.0.1"})
                  .ok());
  int reused = 0;
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(client.WriteStdin("ping\n").ok());
    ASSERT_TRUE(ServePong(listener, so, nullptr, [&](TlsConnection& c) { reused += c.is_session_reused(); }).ok());
  }
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_EQ(reused, 1);
  EXPECT_TRUE(absl::StrContains(client.out(), "This is a resumed session")) << client.out() << client.err();
}

// Tickets (TLS 1.3 and 1.2), and TLS 1.2 session ids (s_server -no_ticket
// keeps sessions in its cache).
class SServerResumptionTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(SServerResumptionTest, EngineClientResumes) {
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "2", "-rev", "-cert",
                                   TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                                   TestFilePath("server-rsa-key.pem")};
  argv.insert(argv.end(), GetParam().begin(), GetParam().end());
  Subprocess server;
  ASSERT_TRUE(server.Start(argv).ok());
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
  ASSERT_TRUE(accept.ok()) << accept.status();
  int port = std::stoi(accept->substr(accept->rfind(':') + 1));
  std::string session;
  for (int round = 0; round < 2; ++round) {
    ConnectionOptions co = ClientOptions();
    co.session = session;
    auto client = *TlsConnection::Create(co, absl::Now());
    std::string got;
    // A clean close (close_notify): an OpenSSL server drops a session id
    // from its cache when the connection ends without one.
    absl::Status s = RunOverSocket(
        *client, ConnectLoopback(port),
        [&](TlsConnection& c, const Event& ev) {
          if (ev.type == EventType::kSecure) { EXPECT_TRUE(c.Write("hello\n").ok()); }
          if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
          if (absl::StrContains(got, "olleh")) c.End(absl::Now());
        },
        kTimeout);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(client->is_session_reused(), round == 1);
    EXPECT_EQ(client->GetTlsTicket().empty(), absl::c_linear_search(GetParam(), "-no_ticket"));
    session = client->GetSession();
    ASSERT_FALSE(session.empty());
  }
  server.Wait(absl::Seconds(5));
}

INSTANTIATE_TEST_SUITE_P(Modes, SServerResumptionTest,
                         ::testing::Values(std::vector<std::string>{"-tls1_3"}, std::vector<std::string>{"-tls1_2"},
                                           std::vector<std::string>{"-tls1_2", "-no_ticket"}),
                         [](const auto& info) {
                           return info.param.size() == 2 ? std::string("Tls12SessionId")
                                  : info.param[0] == "-tls1_3" ? std::string("Tls13Ticket")
                                                               : std::string("Tls12Ticket");
                         });

// ---- OCSP stapling ----

TEST(OcspInteropTest, SClientStatusGetsTheStapledResponse) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.ocsp_request = true;
  Listener listener;
  bool asked = false;
  ClientRun run = RunClient(listener, SClient(listener.port(), {"-status"}), so, "ping\n",
                      [&](TlsConnection& c, const Event& ev) {
                        if (ev.type != EventType::kOcspRequest) return;
                        asked = true;
                        ASSERT_TRUE(c.AnswerOcspRequest(ReadTestFile("server-rsa-ocsp.der")).ok());
                      });
  EXPECT_TRUE(run.served.ok()) << run.served;
  EXPECT_TRUE(asked);
  EXPECT_TRUE(absl::StrContains(run.out, "OCSP Response Status: successful (0x0)")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "Cert Status: good")) << run.out;
}

TEST(OcspInteropTest, GnutlsCliSavesTheStapledResponse) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.ocsp_request = true;
  Listener listener;
  std::string saved = absl::StrCat(::testing::TempDir(), "/gnutls-ocsp.der");
  ClientRun run = RunClient(listener,
                      {"gnutls-cli", "--x509cafile", TestFilePath("ca1.pem"), "--sni-hostname", "localhost",
                       "--save-ocsp=" + saved, "-p", std::to_string(listener.port()), "127.0.0.1"},
                      so, "ping\n", [](TlsConnection& c, const Event& ev) {
                        if (ev.type == EventType::kOcspRequest) {
                          EXPECT_TRUE(c.AnswerOcspRequest(ReadTestFile("server-rsa-ocsp.der")).ok());
                        }
                      });
  EXPECT_TRUE(run.served.ok()) << run.served;
  std::ifstream in(saved, std::ios::binary);
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(file.str(), ReadTestFile("server-rsa-ocsp.der")) << run.out << run.err;
}

TEST(OcspInteropTest, EngineClientReceivesSServersStatusFile) {
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev", "-cert",
                          TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                          TestFilePath("server-rsa-key.pem"), "-status_file", TestFilePath("server-rsa-ocsp.der")})
                  .ok());
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
  ASSERT_TRUE(accept.ok()) << accept.status();
  ConnectionOptions co = ClientOptions();
  co.request_ocsp = true;
  auto client = *TlsConnection::Create(co, absl::Now());
  std::string response;
  bool secure = false;
  absl::Status s = RunOverSocket(
      *client, ConnectLoopback(std::stoi(accept->substr(accept->rfind(':') + 1))),
      [&](TlsConnection&, const Event& ev) {
        if (ev.type == EventType::kOcspResponse) response = ev.ocsp_response;
        if (ev.type == EventType::kSecure) secure = true;
      },
      kTimeout, [&] { return secure; });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response, ReadTestFile("server-rsa-ocsp.der"));
  server.Kill();
}

// ---- Renegotiation, post-handshake authentication ----

TEST(RenegotiationInteropTest, SClientRenegotiationsAreLimited) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.2");
  so.allow_client_renegotiation = true;
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client.Start(SClient(listener.port(), {"-tls1_2"})).ok());
  std::atomic<int> renegotiations{0};
  absl::Status served;
  std::thread server([&] {
    served = testing::ServeOne(
        listener, so,
        [&](TlsConnection&, const Event& ev) { renegotiations += ev.type == EventType::kRenegotiated; }, nullptr,
        kTimeout);
  });
  // Node's documentation: connect with s_client and tap R<CR> a few times.
  // Each R waits for the previous renegotiation, so that two never arrive
  // in one read (s_client would renegotiate once for both).
  absl::SleepFor(absl::Milliseconds(300));
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(client.WriteStdin("R\n").ok());
    for (absl::Time deadline = absl::Now() + absl::Seconds(10); i < 3 && renegotiations.load() <= i &&
                                                                absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  server.join();
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_EQ(renegotiations.load(), 3);
  EXPECT_EQ(NodeCode(served), "ERR_TLS_SESSION_ATTACK") << served << "\n" << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(client.out() + client.err(), "RENEGOTIATING")) << client.out();
}

// A server that refuses client renegotiation (the default) answers each
// attempt with a no_renegotiation warning; gnutls-cli carries on after it, so
// it can ask again and again. Refused attempts count against the same limit.
TEST(RenegotiationInteropTest, RefusedRenegotiationsFromGnutlsCliAreLimited) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.2");
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"gnutls-cli", "--x509cafile", TestFilePath("ca1.pem"), "--sni-hostname", "localhost",
                          "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2", "--inline-commands", "-p", std::to_string(listener.port()),
                          "127.0.0.1"})
                  .ok());
  std::atomic<bool> secure{false};
  absl::Status served;
  std::thread server([&] {
    served = testing::ServeOne(
        listener, so, [&](TlsConnection&, const Event& ev) { secure = secure || ev.type == EventType::kSecure; },
        nullptr, kTimeout);
  });
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); !secure.load() && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (int i = 0; i < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    if (!client.WriteStdin("^renegotiate^\n").ok()) break;  // the server may have ended it already
  }
  server.join();
  client.CloseStdin();
  client.Wait(absl::Seconds(10));
  EXPECT_TRUE(secure.load());
  EXPECT_EQ(NodeCode(served), "ERR_TLS_SESSION_ATTACK") << served << "\n" << client.out() << client.err();
}

class ClientAuthLaterTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClientAuthLaterTest, EngineServerAsksSClientForItsCertificate) {
  ConnectionOptions so = ServerOptions("server-ecdsa", GetParam());
  Listener listener;
  std::string peer_cn;
  bool authorized = false;
  std::vector<std::string> extra = {GetParam() == "TLSv1.3" ? "-tls1_3" : "-tls1_2", "-cert",
                                    TestFilePath("client.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                                    TestFilePath("client-key.pem")};
  if (GetParam() == "TLSv1.3") extra.push_back("-enable_pha");
  ClientRun run = RunClient(listener, SClient(listener.port(), extra), so, "",
                      [&](TlsConnection& c, const Event& ev) {
                        if (ev.type == EventType::kSecure) {
                          ASSERT_TRUE(c.Renegotiate({.request_cert = true, .reject_unauthorized = true}).ok());
                          if (GetParam() == "TLSv1.3") { EXPECT_TRUE(c.Write("certificate please\n").ok()); }
                        }
                        if (ev.type == EventType::kRenegotiated) {
                          authorized = c.authorized();
                          peer_cn = c.GetPeerCertificate()->subject.Get("CN");
                          c.End(absl::Now());
                        }
                      });
  EXPECT_TRUE(run.served.ok()) << run.served << run.err;
  EXPECT_TRUE(authorized);
  EXPECT_EQ(peer_cn, "test client");
}

INSTANTIATE_TEST_SUITE_P(Versions, ClientAuthLaterTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

// ---- GnuTLS as the server ----

TEST(GnutlsServInteropTest, EngineClientGetsAlpnAndStapledOcspFromGnutlsServ) {
  int port;
  {
    Listener probe;  // a free port for gnutls-serv, released at once
    port = probe.port();
  }
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"gnutls-serv", "--echo", "-p", std::to_string(port), "--x509certfile",
                          TestFilePath("server-rsa-chain.pem"), "--x509keyfile", TestFilePath("server-rsa-key.pem"),
                          "--alpn=h2", "--ocsp-response=" + TestFilePath("server-rsa-ocsp.der"),
                          "--ignore-ocsp-response-errors"})
                  .ok());
  ASSERT_TRUE(server.WaitForLine("listening", kTimeout).ok()) << server.out() << server.err();
  int fd = -1;
  for (int i = 0; i < 50 && fd < 0; ++i) {
    fd = ConnectLoopback(port);
    if (fd < 0) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(fd, 0);
  ConnectionOptions co = ClientOptions();
  co.alpn_protocols = {"http/1.1", "h2"};
  co.request_ocsp = true;
  auto client = *TlsConnection::Create(co, absl::Now());
  std::string got, ocsp;
  absl::Status s = RunOverSocket(
      *client, fd,
      [&](TlsConnection& c, const Event& ev) {
        if (ev.type == EventType::kSecure) { EXPECT_TRUE(c.Write("echo me\n").ok()); }
        if (ev.type == EventType::kOcspResponse) ocsp = ev.ocsp_response;
        if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      },
      kTimeout, [&] { return absl::StrContains(got, "echo me"); });
  server.Kill();
  ASSERT_TRUE(s.ok()) << s << server.out() << server.err();
  EXPECT_TRUE(client->authorized()) << client->authorization_status();
  EXPECT_EQ(client->alpn_protocol(), "h2");
  EXPECT_EQ(ocsp, ReadTestFile("server-rsa-ocsp.der"));
  EXPECT_EQ(got, "echo me\n");
}

// ---- Key log ----

TEST(KeylogInteropTest, LinesMatchSServersKeylogFile) {
  std::string file = absl::StrCat(::testing::TempDir(), "/s_server.keylog");
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev", "-keylogfile", file,
                          "-cert", TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                          TestFilePath("server-rsa-key.pem")})
                  .ok());
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
  ASSERT_TRUE(accept.ok()) << accept.status();
  ConnectionOptions co = ClientOptions();
  co.keylog = true;
  auto client = *TlsConnection::Create(co, absl::Now());
  std::set<std::string> ours;
  std::string got;
  absl::Status s = RunOverSocket(
      *client, ConnectLoopback(std::stoi(accept->substr(accept->rfind(':') + 1))),
      [&](TlsConnection& c, const Event& ev) {
        if (ev.type == EventType::kKeylog) ours.insert(ev.line);
        if (ev.type == EventType::kSecure) { EXPECT_TRUE(c.Write("x\n").ok()); }
        if (ev.type == EventType::kData) got.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
      },
      kTimeout, [&] { return absl::StrContains(got, "x"); });
  ASSERT_TRUE(s.ok()) << s;
  server.Wait(absl::Seconds(5));
  std::ifstream in(file);
  std::set<std::string> theirs;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') theirs.insert(line);
  }
  EXPECT_EQ(ours.size(), 5u);  // TLS 1.3: four traffic secrets and the exporter secret
  EXPECT_EQ(ours, theirs);
}

}  // namespace
}  // namespace tlsengine
