// Builds and runs every example as a user would: servers as child processes
// talked to by openssl s_client or by the client examples, clients against
// openssl s_server, tlsctl serve or the server examples. Checks what each
// prints or echoes, and the codes of the negative cases. Loopback only;
// every wait bounded.
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using ::tlsengine::testing::Subprocess;
using ::tlsengine::testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(30);

std::string Certs(const std::string& name) { return TestFilePath(name); }

// The server examples' default identity: server-rsa (localhost, 127.0.0.1)
// sent with int1, so clients trusting ca1 accept it.
std::vector<std::string> ServerRsaKeyAndCert() { return {Certs("server-rsa-key.pem"), Certs("server-rsa-chain.pem")}; }

// Starts a server example and returns the port it printed, or -1.
int StartServer(Subprocess& server, const std::vector<std::string>& argv) {
  if (!server.Start(argv).ok()) return -1;
  absl::StatusOr<std::string> line = server.WaitForLine("listening on ", kTimeout);
  if (!line.ok()) return -1;
  return std::stoi(line->substr(line->find("listening on ") + 13));
}

// Runs a client to the end with `input` on its stdin; returns its exit code.
int RunClient(Subprocess& client, const std::vector<std::string>& argv, const std::string& input = "") {
  if (!client.Start(argv).ok()) return -1;
  if (!input.empty() && !client.WriteStdin(input).ok()) return -1;
  client.CloseStdin();
  return client.Wait(kTimeout);
}

// openssl s_server with server-rsa + int1 and `args`; returns its port or -1.
int StartSServer(Subprocess& server, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-cert", Certs("server-rsa.pem"),
                                   "-cert_chain", Certs("int1.pem"), "-key", Certs("server-rsa-key.pem")};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!server.Start(argv).ok()) return -1;
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
  return accept.ok() ? std::stoi(accept->substr(accept->rfind(':') + 1)) : -1;
}

// openssl s_client to 127.0.0.1:port trusting ca1 and refusing what it cannot
// verify, reading until the server closes; returns its exit code.
int RunSClient(Subprocess& client, int port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                                   "-CAfile", Certs("ca1.pem"), "-verify_return_error", "-ign_eof"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunClient(client, argv);
}

// Replaces `path` with `contents`; false when that failed.
bool WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  return !out.fail();
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- embed_poll ----

TEST(EmbedPollTest, EchoesAMebibyteThroughTheEchoServer) {
  Subprocess server;
  int port = StartServer(server, {"examples/echo_server", "--port", "0", "--key", Certs("server-rsa-key.pem"),
                                  "--cert", Certs("server-rsa-chain.pem"), "--connections", "1"});
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"examples/embed_poll", "127.0.0.1", absl::StrCat(port), Certs("ca1.pem")}), 0)
      << client.err();
  EXPECT_TRUE(absl::StrContains(client.out(), "secure: TLSv1.3, authorized: 1")) << client.out();
  EXPECT_TRUE(absl::StrContains(client.out(), "peer sent close_notify")) << client.out();
  EXPECT_TRUE(absl::StrContains(client.out(), "echoed 1048576 bytes")) << client.out();
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

// ---- echo_server and echo_client (epoll) ----

class EchoServerTest : public ::testing::TestWithParam<bool> {
 protected:
  // --key/--cert, or --pfx/--passphrase (server-rsa + int1 in PKCS#12).
  std::vector<std::string> Identity() const {
    if (GetParam()) return {"--pfx", Certs("server-rsa.pfx"), "--passphrase", "secret"};
    return {"--key", Certs("server-rsa-key.pem"), "--cert", Certs("server-rsa-chain.pem")};
  }
};

TEST_P(EchoServerTest, EchoClientGetsItsLinesBack) {
  Subprocess server;
  int port = StartServer(server, Concat({"examples/echo_server", "--port", "0", "--connections", "2"}, Identity()));
  ASSERT_GT(port, 0) << server.err();
  for (int i = 0; i < 2; ++i) {  // two clients, one after the other
    Subprocess client;
    EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca1.pem")},
                        "hello\nworld\n"),
              0)
        << client.err();
    EXPECT_EQ(client.out(), "hello\nworld\n");
    EXPECT_TRUE(absl::StrContains(client.err(), "connected: TLSv1.3 ")) << client.err();
    EXPECT_TRUE(absl::StrContains(client.err(), "authorized: 1")) << client.err();
  }
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();  // --connections 2: exits once both have closed
  EXPECT_TRUE(absl::StrContains(server.err(), "secureConnection: 127.0.0.1:")) << server.err();
}

TEST_P(EchoServerTest, EchoesToOpenSslSClient) {
  Subprocess server;
  int port = StartServer(server, Concat({"examples/echo_server", "--port", "0", "--connections", "1"}, Identity()));
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port), "-CAfile",
                          Certs("ca1.pem"), "-verify_return_error", "-tls1_2"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping from s_client\n").ok());
  // The echo (s_client prints what it reads); its own input is not echoed.
  EXPECT_TRUE(client.WaitForLine("ping from s_client", kTimeout).ok()) << client.out() << client.err();
  client.CloseStdin();  // s_client sends close_notify; the server answers and closes
  EXPECT_EQ(client.Wait(kTimeout), 0) << client.err();
  EXPECT_TRUE(absl::StrContains(client.out(), "Verify return code: 0 (ok)")) << client.out();
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
  EXPECT_TRUE(absl::StrContains(server.err(), "TLSv1.2")) << server.err();
}

// A client that sends 24 MiB but reads nothing for a second: echo_server
// must pause reading it until its socket drains. A server that kept reading
// would queue the echo and cut the client off at max_buffered_writes (16 MiB)
// with ERR_TLS_BUFFER_FULL. The client is Node's tls.connect().
TEST(EchoServerTest, PausesAClientThatDoesNotRead) {
  constexpr char kNodeClient[] = R"js(
    const tls = require('tls'), fs = require('fs');
    const [port, ca] = process.argv.slice(1);
    const total = 24 << 20;
    let got = 0;
    const s = tls.connect({port: +port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(ca)}, () => {
      s.pause();
      s.end(Buffer.alloc(total, 120));
      setTimeout(() => s.resume(), 1000);
    });
    s.on('data', (d) => { got += d.length; });
    s.on('end', () => console.log('echoed ' + got));
    s.on('error', (e) => { console.error(e.code || e.message); process.exitCode = 1; });
  )js";
  Subprocess server;
  int port = StartServer(server, {"examples/echo_server", "--port", "0", "--connections", "1", "--key",
                                  Certs("server-rsa-key.pem"), "--cert", Certs("server-rsa-chain.pem")});
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"node", "-e", kNodeClient, absl::StrCat(port), Certs("ca1.pem")}), 0) << client.err();
  EXPECT_EQ(client.out(), "echoed 25165824\n") << client.err();
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
  EXPECT_FALSE(absl::StrContains(server.err(), "ERR_TLS_BUFFER_FULL")) << server.err();
}

INSTANTIATE_TEST_SUITE_P(Identity, EchoServerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Pfx" : "KeyAndCert"; });

TEST(EchoServerTest, RefusesAWrongPassphrase) {
  Subprocess server;
  ASSERT_TRUE(server.Start({"examples/echo_server", "--port", "0", "--pfx", Certs("server-rsa.pfx"), "--passphrase",
                            "wrong"}).ok());
  EXPECT_EQ(server.Wait(kTimeout), 1);
  EXPECT_TRUE(absl::StrContains(server.err(), "pfx: mac verify failure (wrong passphrase?)")) << server.err();
  EXPECT_TRUE(absl::StrContains(server.err(), "[ERR_INVALID_ARG_VALUE]")) << server.err();
}

TEST(EchoClientTest, RejectsAServerWhoseCaItDoesNotHave) {
  Subprocess server;
  int port = StartServer(server, {"examples/echo_server", "--port", "0", "--connections", "1", "--key",
                                  Certs("server-rsa-key.pem"), "--cert", Certs("server-rsa-chain.pem")});
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;  // trusts ca2 only
  EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca2.pem")}, "hi\n"), 1);
  EXPECT_TRUE(absl::StrContains(client.err(), "[UNABLE_TO_GET_ISSUER_CERT_LOCALLY]")) << client.err();
  EXPECT_EQ(client.out(), "");  // nothing was sent
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
  // The server heard why: the client's alert survived the careful close.
  EXPECT_TRUE(absl::StrContains(server.err(), "tlsClientError: ")) << server.err();
  EXPECT_TRUE(absl::StrContains(server.err(), "[ERR_SSL_TLSV1_ALERT_UNKNOWN_CA]")) << server.err();
}

TEST(EchoClientTest, TalksToOpenSslSServer) {
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    Subprocess server;  // -rev: sends each line back reversed
    int port = StartSServer(server, {"-rev", "-naccept", "1", version});
    ASSERT_GT(port, 0) << server.err();
    Subprocess client;
    EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca1.pem")},
                        "hello\nworld\n"),
              0)
        << client.err();
    EXPECT_EQ(client.out(), "olleh\ndlrow\n");
    EXPECT_TRUE(absl::StrContains(client.err(), version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3")) << client.err();
    EXPECT_EQ(server.Wait(kTimeout), 0) << server.out();
  }
}

// 1 MiB through echo_client and echo_server: from a regular file (read whole,
// since epoll refuses files) and from a pipe (read as the socket drains).
TEST(EchoClientTest, PipesAMebibyteFromAFileAndFromAPipe) {
  std::string payload;
  for (int i = 0; payload.size() < (1 << 20); ++i) payload += absl::StrCat("line ", i, "\n");
  const std::string file = absl::StrCat(::testing::TempDir(), "/payload.txt");
  ASSERT_TRUE(WriteFile(file, payload));
  Subprocess server;
  int port = StartServer(server, {"examples/echo_server", "--port", "0", "--connections", "2", "--key",
                                  Certs("server-rsa-key.pem"), "--cert", Certs("server-rsa-chain.pem")});
  ASSERT_GT(port, 0) << server.err();
  const std::string client = absl::StrCat("examples/echo_client localhost ", port, " ", Certs("ca1.pem"));
  for (const std::string& command : {absl::StrCat(client, " < ", file), absl::StrCat("cat ", file, " | ", client)}) {
    Subprocess shell;
    EXPECT_EQ(RunClient(shell, {"sh", "-c", command}), 0) << command << ": " << shell.err();
    EXPECT_EQ(shell.out().size(), payload.size()) << command;
    EXPECT_TRUE(shell.out() == payload) << command;  // (not EXPECT_EQ: it would print 1 MiB)
  }
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

// A server that stops reading: echo_client must stop reading stdin until the
// socket drains. A client that kept reading would queue 24 MiB and be cut
// off at max_buffered_writes (16 MiB) with ERR_TLS_BUFFER_FULL: the kernel
// and s_server absorb only a few MiB while s_server's stdout is not read.
TEST(EchoClientTest, StopsReadingStdinWhileTheServerDoesNotRead) {
  Subprocess server;  // plain s_server: prints what it reads, blocks once its stdout pipe is full
  int port = StartSServer(server, {"-naccept", "1"});
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"sh", "-c",
                          absl::StrCat("yes 0123456789abcdef | head -c 25165824 | examples/echo_client localhost ",
                                       port, " ", Certs("ca1.pem"))})
                  .ok());
  absl::SleepFor(absl::Seconds(1));  // s_server's output is not read meanwhile
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();  // reads it all; s_server exits after the client's end
  EXPECT_GE(server.out().size(), size_t{25165824});
  EXPECT_EQ(client.Wait(kTimeout), 0) << client.err();
  EXPECT_FALSE(absl::StrContains(client.err(), "ERR_TLS_BUFFER_FULL")) << client.err();
}

TEST(EchoClientTest, ReportsARefusedConnection) {
  int port;
  {
    testing::Listener closed;  // a port nobody listens on once this closes
    port = closed.port();
  }
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"examples/echo_client", "127.0.0.1", absl::StrCat(port), Certs("ca1.pem")}), 1);
  EXPECT_TRUE(absl::StrContains(client.err(), "[ECONNREFUSED]")) << client.err();
}

// ---- blocking_echo_server ----

TEST(BlockingEchoServerTest, ServesTwoClientsAtOnce) {
  Subprocess server;
  int port = StartServer(server, Concat({"examples/blocking_echo_server", "0"}, Concat(ServerRsaKeyAndCert(), {"2"})));
  ASSERT_GT(port, 0) << server.err();
  std::vector<std::string> client_argv = {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca1.pem")};
  // The first client stays connected while the second is served: each
  // connection has a thread of its own.
  Subprocess first;
  ASSERT_TRUE(first.Start(client_argv).ok());
  ASSERT_TRUE(first.WriteStdin("first\n").ok());
  ASSERT_TRUE(first.WaitForLine("first", kTimeout).ok()) << first.err();
  Subprocess second;
  EXPECT_EQ(RunClient(second, client_argv, "second\n"), 0) << second.err();
  EXPECT_EQ(second.out(), "second\n");
  ASSERT_TRUE(first.WriteStdin("again\n").ok());
  first.CloseStdin();
  EXPECT_EQ(first.Wait(kTimeout), 0) << first.err();
  EXPECT_EQ(first.out(), "first\nagain\n");
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

TEST(BlockingEchoServerTest, ReportsAClientThatRejectedIt) {
  Subprocess server;
  int port = StartServer(server, Concat({"examples/blocking_echo_server", "0"}, Concat(ServerRsaKeyAndCert(), {"1"})));
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca2.pem")}), 1);
  EXPECT_TRUE(absl::StrContains(client.err(), "[UNABLE_TO_GET_ISSUER_CERT_LOCALLY]")) << client.err();
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
  EXPECT_TRUE(absl::StrContains(server.err(), "[ERR_SSL_TLSV1_ALERT_UNKNOWN_CA]")) << server.err();
}

// ---- https_get against tlsctl serve --mode http ----

class HttpsGetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // tlsctl keeps its default certificate there; these tests give their own.
    ASSERT_EQ(setenv("XDG_CACHE_HOME", absl::StrCat(::testing::TempDir(), "/cache").c_str(), 1), 0);
  }
  // tlsctl serve --mode http with server-rsa, offering ALPN http/1.1, at most
  // `max_version`; returns its port or -1.
  static int StartTlsctlHttp(Subprocess& server, const std::string& max_version) {
    if (!server
             .Start({"examples/tlsctl/tlsctl", "serve", "--port", "0", "--mode", "http", "--alpn", "http/1.1",
                     "--max-version", max_version, "--key", Certs("server-rsa-key.pem"), "--cert",
                     Certs("server-rsa-chain.pem")})
             .ok()) {
      return -1;
    }
    absl::StatusOr<std::string> line = server.WaitForLine("\"event\":\"listening\"", kTimeout);
    if (!line.ok()) return -1;
    size_t at = line->find("\"port\":");
    return at == std::string::npos ? -1 : std::atoi(line->c_str() + at + 7);
  }
};

TEST_F(HttpsGetTest, FetchesFromTlsctlServe) {
  for (const std::string version : {"TLSv1.2", "TLSv1.3"}) {
    Subprocess server;
    int port = StartTlsctlHttp(server, version);
    ASSERT_GT(port, 0) << server.err();
    Subprocess client;
    EXPECT_EQ(RunClient(client, {"examples/https_get", "localhost", absl::StrCat(port), Certs("ca1.pem"), "/"}), 0)
        << client.err();
    // tlsctl answers with the connection as it saw it, in JSON.
    EXPECT_TRUE(absl::StartsWith(client.out(), "HTTP/1.1 200 OK\r\n")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.out(), "\r\n\r\n{\"event\":\"secureConnection\"")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.out(), absl::StrCat("\"protocol\":\"", version, "\""))) << client.out();
    EXPECT_TRUE(absl::StrContains(client.out(), "\"servername\":\"localhost\"")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.out(), "\"alpnProtocol\":\"http/1.1\"")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.err(), absl::StrCat("https_get: ", version, ", "))) << client.err();
    server.Kill();
  }
}

TEST_F(HttpsGetTest, RefusesAServerWhoseCaItDoesNotHave) {
  Subprocess server;
  int port = StartTlsctlHttp(server, "TLSv1.3");
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"examples/https_get", "localhost", absl::StrCat(port), Certs("ca2.pem")}), 1);
  EXPECT_TRUE(absl::StrContains(client.err(), "[UNABLE_TO_GET_ISSUER_CERT_LOCALLY]")) << client.err();
  EXPECT_EQ(client.out(), "");
  // tlsctl reports the client's alert.
  absl::StatusOr<std::string> error = server.WaitForLine("\"event\":\"clientError\"", kTimeout);
  ASSERT_TRUE(error.ok()) << server.out();
  EXPECT_TRUE(absl::StrContains(*error, "\"code\":\"ERR_SSL_TLSV1_ALERT_UNKNOWN_CA\"")) << *error;
  server.Kill();
}

// ---- sni_server ----

TEST(SniServerTest, PicksTheCertificateByName) {
  Subprocess server;
  int port = StartServer(server, Concat({"examples/sni_server", "0"},
                                        Concat(ServerRsaKeyAndCert(),
                                               {"other.example.com", Certs("other-name-key.pem"),
                                                Certs("other-name-chain.pem"), "*.example.com",
                                                Certs("wildcard-key.pem"), Certs("wildcard-chain.pem"), "4"})));
  ASSERT_GT(port, 0) << server.err();
  struct Case {
    std::vector<std::string> sni;  // s_client's SNI flags
    std::string verify_name;       // the name s_client checks the certificate for
    std::string greeting;
  };
  for (const Case& c : std::vector<Case>{
           {{"-servername", "other.example.com"}, "other.example.com",
            "hello other.example.com, I am other.example.com\n"},
           {{"-servername", "www.example.com"}, "www.example.com", "hello www.example.com, I am *.example.com\n"},
           {{"-servername", "unknown.test"}, "localhost", "hello unknown.test, I am localhost\n"},
           {{"-noservername"}, "localhost", "hello (no name), I am localhost\n"},
       }) {
    Subprocess client;
    EXPECT_EQ(RunSClient(client, port, Concat(c.sni, {"-verify_hostname", c.verify_name})), 0)
        << c.verify_name << ": " << client.err();
    EXPECT_TRUE(absl::StrContains(client.out(), "Verify return code: 0 (ok)")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.out(), c.greeting)) << c.greeting << " in " << client.out();
  }
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

TEST(SniServerTest, RefusesABadNamePattern) {
  Subprocess server;
  ASSERT_TRUE(server
                  .Start(Concat({"examples/sni_server", "0"},
                                Concat(ServerRsaKeyAndCert(), {"a.*.example.com", Certs("wildcard-key.pem"),
                                                               Certs("wildcard-chain.pem"), "other.example.com",
                                                               Certs("other-name-key.pem"), Certs("other-name-chain.pem")})))
                  .ok());
  EXPECT_EQ(server.Wait(kTimeout), 1);
  EXPECT_TRUE(absl::StrContains(server.err(), "'a.*.example.com': a wildcard must be the whole first label")) << server.err();
  EXPECT_TRUE(absl::StrContains(server.err(), "[ERR_INVALID_ARG_VALUE]")) << server.err();
}

// ---- session_client ----

TEST(SessionClientTest, ResumesOnItsSecondRun) {
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    Subprocess server;
    int port = StartSServer(server, {"-www", version});
    ASSERT_GT(port, 0) << server.err();
    std::string file = absl::StrCat(::testing::TempDir(), "/session", version);
    ASSERT_TRUE(WriteFile(file, ""));  // empty: the first run makes a full handshake
    std::vector<std::string> argv = {"examples/session_client", "localhost", absl::StrCat(port), Certs("ca1.pem"),
                                     file};
    const std::string protocol = version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
    Subprocess first, second;
    EXPECT_EQ(RunClient(first, argv), 0) << first.err();
    EXPECT_TRUE(absl::StartsWith(first.out(), protocol + ", ")) << first.out();
    EXPECT_TRUE(absl::StrContains(first.out(), "reused: no")) << first.out();
    EXPECT_EQ(RunClient(second, argv), 0) << second.err();
    EXPECT_TRUE(absl::StrContains(second.out(), "reused: yes")) << second.out() << second.err();
    server.Kill();
  }
}

TEST(SessionClientTest, IgnoresADamagedFileAndReplacesIt) {
  Subprocess server;
  int port = StartSServer(server, {"-www"});
  ASSERT_GT(port, 0) << server.err();
  std::string file = absl::StrCat(::testing::TempDir(), "/damaged-session");
  ASSERT_TRUE(WriteFile(file, "not a session"));
  std::vector<std::string> argv = {"examples/session_client", "localhost", absl::StrCat(port), Certs("ca1.pem"), file};
  Subprocess first, second;
  EXPECT_EQ(RunClient(first, argv), 0) << first.err();
  EXPECT_TRUE(absl::StrContains(first.err(), "ignored: session: not a serialized TLS session [ERR_INVALID_ARG_VALUE]"))
      << first.err();
  EXPECT_TRUE(absl::StrContains(first.out(), "reused: no")) << first.out();
  EXPECT_EQ(RunClient(second, argv), 0) << second.err();  // the file now holds a good session
  EXPECT_TRUE(absl::StrContains(second.out(), "reused: yes")) << second.out() << second.err();
  EXPECT_EQ(second.err(), "");
  server.Kill();
}

// ---- ocsp_server ----

TEST(OcspServerTest, StaplesTheFileAndReloadsIt) {
  std::string file = absl::StrCat(::testing::TempDir(), "/ocsp.der");
  const std::string der = testing::ReadTestFile("server-rsa-ocsp.der");
  ASSERT_TRUE(WriteFile(file, der));
  Subprocess server;
  int port = StartServer(server, Concat({"examples/ocsp_server", "0"}, Concat(ServerRsaKeyAndCert(), {file, "3"})));
  ASSERT_GT(port, 0) << server.err();

  Subprocess stapled;
  EXPECT_EQ(RunSClient(stapled, port, {"-status"}), 0) << stapled.err();
  EXPECT_TRUE(absl::StrContains(stapled.out(), "OCSP Response Status: successful")) << stapled.out();
  EXPECT_TRUE(absl::StrContains(stapled.out(), "Cert Status: good")) << stapled.out();
  EXPECT_TRUE(absl::StrContains(stapled.out(), "hello\n")) << stapled.out();
  EXPECT_TRUE(server.WaitForLine(absl::StrCat("stapling ", der.size(), " bytes"), kTimeout).ok()) << server.err();

  // Revoked upstream, say: the job empties the file, and the server staples
  // nothing from the next handshake on, without a restart.
  ASSERT_TRUE(WriteFile(file, ""));
  Subprocess none;
  EXPECT_EQ(RunSClient(none, port, {"-status"}), 0) << none.err();
  EXPECT_TRUE(absl::StrContains(none.out(), "OCSP response: no response sent")) << none.out();

  // A client that does not ask gets nothing, and the server is not asked.
  Subprocess plain;
  EXPECT_EQ(RunSClient(plain, port, {}), 0) << plain.err();
  EXPECT_FALSE(absl::StrContains(plain.out(), "OCSP response")) << plain.out();
  EXPECT_TRUE(absl::StrContains(plain.out(), "hello\n")) << plain.out();
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
  // Two handshakes asked; the second saw the emptied file.
  EXPECT_TRUE(absl::StrContains(server.err(), "stapling 0 bytes")) << server.err();
  EXPECT_EQ(server.err().find("stapling", server.err().find("stapling 0 bytes") + 1), std::string::npos)
      << server.err();
}

}  // namespace
}  // namespace tlsengine
