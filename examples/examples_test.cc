// Builds and runs every example: servers as child processes talked to by
// our client streams or by the client examples, clients against openssl
// s_server. Loopback only; every wait bounded.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using ::tlsengine::testing::ClientOptions;
using ::tlsengine::testing::Subprocess;
using ::tlsengine::testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(30);

std::string Certs(const std::string& name) { return TestFilePath(name); }

// Starts a server example and returns the port it printed, or -1.
int StartServer(Subprocess& server, const std::vector<std::string>& argv) {
  if (!server.Start(argv).ok()) return -1;
  absl::StatusOr<std::string> line = server.WaitForLine("listening on ", kTimeout);
  if (!line.ok()) return -1;
  return std::stoi(line->substr(line->find("listening on ") + 13));
}

// Runs a client example to the end; returns its exit code.
int RunClient(Subprocess& client, const std::vector<std::string>& argv, const std::string& input = "") {
  if (!client.Start(argv).ok()) return -1;
  if (!input.empty() && !client.WriteStdin(input).ok()) return -1;
  client.CloseStdin();
  return client.Wait(kTimeout);
}

int StartSServerWww(Subprocess& server, const std::string& version) {
  if (!server
           .Start({"openssl", "s_server", "-accept", "0", "-www", version, "-cert", Certs("server-rsa.pem"),
                   "-cert_chain", Certs("int1.pem"), "-key", Certs("server-rsa-key.pem")})
           .ok()) {
    return -1;
  }
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
  return accept.ok() ? std::stoi(accept->substr(accept->rfind(':') + 1)) : -1;
}

TEST(ExamplesTest, EmbedPollEchoesAMebibyteThroughTheEchoServer) {
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

class EchoServerTest : public ::testing::TestWithParam<bool> {};

TEST_P(EchoServerTest, EchoClientGetsItsLinesBack) {
  std::vector<std::string> identity =
      GetParam() ? std::vector<std::string>{"--pfx", Certs("server-rsa.pfx"), "--passphrase", "secret"}
                 : std::vector<std::string>{"--key", Certs("server-rsa-key.pem"), "--cert", Certs("server-rsa-chain.pem")};
  std::vector<std::string> argv = {"examples/echo_server", "--port", "0", "--connections", "2"};
  argv.insert(argv.end(), identity.begin(), identity.end());
  Subprocess server;
  int port = StartServer(server, argv);
  ASSERT_GT(port, 0) << server.err();
  for (int i = 0; i < 2; ++i) {  // two clients, one after the other
    Subprocess client;
    EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca1.pem")},
                        "hello\nworld\n"),
              0)
        << client.err();
    EXPECT_EQ(client.out(), "hello\nworld\n");
    EXPECT_TRUE(absl::StrContains(client.err(), "authorized: 1")) << client.err();
  }
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

INSTANTIATE_TEST_SUITE_P(Identity, EchoServerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Pfx" : "KeyAndCert"; });

TEST(ExamplesTest, EchoServerRefusesAWrongPassphrase) {
  Subprocess server;
  ASSERT_TRUE(server.Start({"examples/echo_server", "--port", "0", "--pfx", Certs("server-rsa.pfx"), "--passphrase",
                            "wrong"}).ok());
  EXPECT_EQ(server.Wait(kTimeout), 1);
  EXPECT_TRUE(absl::StrContains(server.err(), "pfx")) << server.err();
}

TEST(ExamplesTest, EchoClientRejectsAnUntrustedServer) {
  Subprocess server;
  int port = StartServer(server, {"examples/echo_server", "--port", "0", "--key", Certs("server-rsa-key.pem"),
                                  "--cert", Certs("server-rsa-chain.pem"), "--connections", "1"});
  ASSERT_GT(port, 0) << server.err();
  Subprocess client;
  EXPECT_EQ(RunClient(client, {"examples/echo_client", "localhost", absl::StrCat(port), Certs("ca2.pem")}), 1);
  EXPECT_TRUE(absl::StrContains(client.err(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY")) << client.err();
  EXPECT_EQ(server.Wait(kTimeout), 0);
  // The server heard why (the client's alert survived the careful close).
  EXPECT_TRUE(absl::StrContains(server.err(), "connection: ")) << server.err();
}

TEST(ExamplesTest, HttpsGetFetchesFromSServerWww) {
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    Subprocess server;
    int port = StartSServerWww(server, version);
    ASSERT_GT(port, 0) << server.err();
    Subprocess client;
    int rc = RunClient(client, {"examples/https_get", "localhost", absl::StrCat(port), Certs("ca1.pem"), "/"});
    EXPECT_EQ(rc, 0) << client.err();
    EXPECT_TRUE(absl::StartsWith(client.out(), "HTTP/1.0 200 ok")) << client.out();
    EXPECT_TRUE(absl::StrContains(client.err(), version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3")) << client.err();
  }
}

TEST(ExamplesTest, SniServerPicksTheCertificateByName) {
  Subprocess server;
  int port = StartServer(server, {"examples/sni_server", "0", Certs("server-rsa-key.pem"), Certs("server-rsa-chain.pem"),
                                  "other.example.com", Certs("other-name-key.pem"), Certs("other-name-chain.pem"),
                                  "*.example.com", Certs("wildcard-key.pem"), Certs("wildcard-chain.pem"), "3"});
  ASSERT_GT(port, 0) << server.err();
  for (const auto& [name, expected] : std::vector<std::pair<std::string, std::string>>{
           {"other.example.com", "other.example.com"}, {"www.example.com", "*.example.com"}, {"localhost", "localhost"}}) {
    blocking::StreamOptions opts = ClientOptions();
    opts.servername = name;
    auto stream = blocking::TlsStream::Connect("127.0.0.1", port, opts, absl::Now() + kTimeout);
    ASSERT_TRUE(stream.ok()) << name << ": " << stream.status();
    EXPECT_TRUE((*stream)->authorized()) << name;
    std::vector<std::string> dns = (*stream)->GetPeerCertificate()->DnsNames();
    EXPECT_NE(std::find(dns.begin(), dns.end(), expected), dns.end()) << name;
    absl::StatusOr<std::string> line = (*stream)->ReadUntil("\n", 1024, absl::Now() + kTimeout);
    ASSERT_TRUE(line.ok()) << line.status();
    EXPECT_TRUE(absl::StartsWith(*line, "hello " + name + ", I am ")) << *line;
  }
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

TEST(ExamplesTest, SessionClientResumesOnItsSecondRun) {
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    Subprocess server;
    int port = StartSServerWww(server, version);
    ASSERT_GT(port, 0) << server.err();
    std::string file = absl::StrCat(::testing::TempDir(), "/session", version);
    std::remove(file.c_str());
    std::vector<std::string> argv = {"examples/session_client", "localhost", absl::StrCat(port), Certs("ca1.pem"), file};
    Subprocess first, second;
    EXPECT_EQ(RunClient(first, argv), 0) << first.err();
    EXPECT_TRUE(absl::StrContains(first.out(), "reused: no")) << first.out();
    EXPECT_EQ(RunClient(second, argv), 0) << second.err();
    EXPECT_TRUE(absl::StrContains(second.out(), "reused: yes")) << second.out() << second.err();
    server.Kill();
  }
}

TEST(ExamplesTest, OcspServerStaplesTheFileAndReloadsIt) {
  std::string file = absl::StrCat(::testing::TempDir(), "/ocsp.der");
  const std::string der = testing::ReadTestFile("server-rsa-ocsp.der");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << der;
  Subprocess server;
  int port = StartServer(server, {"examples/ocsp_server", "0", Certs("server-rsa-key.pem"),
                                  Certs("server-rsa-chain.pem"), file, "2"});
  ASSERT_GT(port, 0) << server.err();
  auto fetch = [&](std::string* stapled, std::string* line) {
    blocking::StreamOptions opts = ClientOptions();
    opts.request_ocsp = true;
    auto stream = blocking::TlsStream::Connect("127.0.0.1", port, opts, absl::Now() + kTimeout);
    ASSERT_TRUE(stream.ok()) << stream.status();
    absl::StatusOr<std::string> got = (*stream)->ReadUntil("\n", 1024, absl::Now() + kTimeout);
    ASSERT_TRUE(got.ok()) << got.status();
    *line = *got;
    *stapled = (*stream)->ocsp_response();
  };
  std::string stapled, line;
  fetch(&stapled, &line);
  EXPECT_EQ(stapled, der);
  EXPECT_EQ(line, absl::StrCat("stapled ", der.size(), " bytes\n"));
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "";  // revoked upstream: staple nothing now
  fetch(&stapled, &line);
  EXPECT_EQ(stapled, "");
  EXPECT_EQ(line, "stapled 0 bytes\n");
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.err();
}

}  // namespace
}  // namespace tlsengine
