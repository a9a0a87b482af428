// tlsctl end to end: the built binary as a subprocess against real peers
// (openssl s_client/s_server, curl) and against itself, on loopback.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace {

using testing::Subprocess;
using testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(15);

std::string Tlsctl() {
  char cwd[4096];
  EXPECT_NE(getcwd(cwd, sizeof cwd), nullptr);
  return absl::StrCat(cwd, "/examples/tlsctl/tlsctl");
}

std::string TmpDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

std::string CacheCert() { return TmpDir() + "/cache/tlsengine/tlsctl/localhost.pem"; }

struct Outcome {
  int code = -1;
  std::string out, err;
};

// Runs tlsctl to completion.
Outcome RunTlsctl(std::vector<std::string> args, const std::string& stdin_data = "") {
  args.insert(args.begin(), Tlsctl());
  Subprocess p;
  Outcome r;
  absl::Status s = p.Start(args);
  EXPECT_TRUE(s.ok()) << s;
  if (!s.ok()) return r;
  if (!stdin_data.empty()) {
    EXPECT_TRUE(p.WriteStdin(stdin_data).ok());
  }
  p.CloseStdin();
  r.code = p.Wait(kTimeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// The stdout lines holding `needle`.
std::vector<std::string> Lines(const std::string& out, const std::string& needle) {
  std::vector<std::string> got;
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::StrContains(l, needle)) got.emplace_back(l);
  }
  return got;
}

int PortOf(const std::string& listening_line) {
  size_t at = listening_line.find("\"port\":");
  return at == std::string::npos ? -1 : std::atoi(listening_line.c_str() + at + 7);
}

class TlsctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setenv("XDG_CACHE_HOME", (TmpDir() + "/cache").c_str(), 1); }

  // Starts `tlsctl serve --port 0 ARGS` and returns the port it listens on.
  int StartServe(Subprocess& server, std::vector<std::string> args) {
    args.insert(args.begin(), {Tlsctl(), "serve", "--port", "0"});
    absl::Status s = server.Start(args);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<std::string> line = server.WaitForLine("\"event\":\"listening\"", kTimeout);
    EXPECT_TRUE(line.ok()) << line.status();
    if (!line.ok()) return -1;
    EXPECT_TRUE(absl::StrContains(*line, "\"address\":\"127.0.0.1\"")) << *line;
    EXPECT_TRUE(absl::StrContains(*line, "\"family\":\"IPv4\"")) << *line;
    return PortOf(*line);
  }

  // Starts openssl s_server with `cert` (sent with int1 when `chain`) and
  // returns its port.
  int StartSServer(Subprocess& server, const std::string& cert, const std::string& key, bool chain) {
    std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "1", "-cert",
                                     TestFilePath(cert), "-key", TestFilePath(key)};
    if (chain) argv.insert(argv.end(), {"-cert_chain", TestFilePath("int1.pem")});
    EXPECT_TRUE(server.Start(argv).ok());
    absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
    EXPECT_TRUE(accept.ok()) << accept.status();
    if (!accept.ok()) return -1;
    return std::atoi(accept->substr(accept->rfind(':') + 1).c_str());
  }
};

TEST_F(TlsctlTest, BadFlagsAndUnreadableFilesExitTwoWithOneLine) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"serve", "--bogus"},
           {"serve", "--min-version", "TLSv1_3"},
           {"serve", "--key", "/nonexistent/k.pem", "--cert", "/nonexistent/c.pem"},
           {"connect", "--port", "1", "--ca", "/nonexistent/ca.pem"},
           {"connect", "--host", "127.0.0.1"},
           {"launch"},
       }) {
    Outcome r = RunTlsctl(args);
    EXPECT_EQ(r.code, 2) << args[1] << ": " << r.err;
    EXPECT_EQ(r.out, "") << args[1];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "tlsctl: ")) << r.err;
  }
  Outcome r = RunTlsctl({"serve", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"});
  EXPECT_TRUE(absl::StrContains(r.err, "--key: cannot read '/nonexistent/k.pem'")) << r.err;
}

TEST_F(TlsctlTest, HelpAndCiphers) {
  Outcome help = RunTlsctl({"serve", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "--reneg-limit N")) << help.out;
  Outcome ciphers = RunTlsctl({"ciphers"});
  EXPECT_EQ(ciphers.code, 0);
  EXPECT_FALSE(Lines(ciphers.out, "tls_aes_128_gcm_sha256").empty()) << ciphers.out;
  EXPECT_FALSE(Lines(ciphers.out, "ecdhe-rsa-aes128-gcm-sha256").empty());
}

TEST_F(TlsctlTest, ServeEchoesToOpensslClientWithTheCachedLocalhostCertificate) {
  Subprocess server;
  int port = StartServe(server, {});
  ASSERT_GT(port, 0);
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port), "-CAfile", CacheCert(),
                          "-verify_return_error", "-servername", "localhost"})
                  .ok());
  ASSERT_TRUE(client.WaitForLine("Verify return code: 0 (ok)", kTimeout).ok()) << client.err();
  ASSERT_TRUE(client.WriteStdin("ping from s_client\n").ok());
  EXPECT_TRUE(client.WaitForLine("ping from s_client", kTimeout).ok());
  client.CloseStdin();
  client.Wait(kTimeout);
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_TRUE(absl::StrContains(*secure, "\"protocol\":\"TLSv1.3\"")) << *secure;
  EXPECT_TRUE(absl::StrContains(*secure, "\"servername\":\"localhost\"")) << *secure;
  absl::StatusOr<std::string> close = server.WaitForLine("\"event\":\"close\"", kTimeout);
  ASSERT_TRUE(close.ok()) << close.status();
  EXPECT_TRUE(absl::StrContains(*close, "\"id\":1")) << *close;
}

TEST_F(TlsctlTest, CurlReadsTheConnectionAsJsonInHttpMode) {
  Subprocess server;
  int port = StartServe(server, {"--mode", "http", "--key", TestFilePath("server-rsa-key.pem"), "--cert",
                                 TestFilePath("server-rsa-chain.pem"), "--alpn", "http/1.1"});
  ASSERT_GT(port, 0);
  Subprocess curl;
  ASSERT_TRUE(curl.Start({"curl", "-sS", "--max-time", "10", "--cacert", TestFilePath("ca1.pem"),
                          absl::StrCat("https://localhost:", port, "/"), absl::StrCat("https://localhost:", port, "/again")})
                  .ok());
  EXPECT_EQ(curl.Wait(kTimeout), 0) << curl.err();
  std::vector<std::string> bodies = Lines(curl.out(), "\"event\":\"secureConnection\"");
  ASSERT_EQ(bodies.size(), 2u) << curl.out();  // two requests on one kept-alive connection
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"alpnProtocol\":\"http/1.1\"")) << bodies[0];
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"servername\":\"localhost\"")) << bodies[0];
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"cipher\":{\"name\":")) << bodies[0];
}

TEST_F(TlsctlTest, ConnectToOpensslServer) {
  Subprocess server;
  int port = StartSServer(server, "server-rsa.pem", "server-rsa-key.pem", true);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                     "localhost", "--max-version", "TLSv1.2"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::vector<std::string> secure = Lines(r.out, "\"event\":\"secureConnect\"");
  ASSERT_EQ(secure.size(), 1u) << r.out;
  EXPECT_TRUE(absl::StrContains(secure[0], "\"authorized\":true")) << secure[0];
  EXPECT_TRUE(absl::StrContains(secure[0], "\"protocol\":\"TLSv1.2\"")) << secure[0];
  EXPECT_TRUE(absl::StrContains(secure[0], "\"CN\":\"localhost\"")) << secure[0];
  EXPECT_EQ(Lines(r.out, "\"event\":\"close\",\"hadError\":false").size(), 1u) << r.out;
}

TEST_F(TlsctlTest, ConnectRefusesASelfSignedServer) {
  Subprocess server;
  int port = StartSServer(server, "self-signed.pem", "self-signed-key.pem", false);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--servername", "localhost"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(Lines(r.out, "\"event\":\"error\",\"code\":\"DEPTH_ZERO_SELF_SIGNED_CERT\"").size(), 1u) << r.out;
  EXPECT_TRUE(Lines(r.out, "secureConnect").empty()) << r.out;
}

TEST_F(TlsctlTest, ConnectRefusesAWrongName) {
  Subprocess server;
  int port = StartSServer(server, "other-name.pem", "other-name-key.pem", true);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                     "localhost"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(Lines(r.out, "\"code\":\"ERR_TLS_CERT_ALTNAME_INVALID\"").size(), 1u) << r.out;
}

TEST_F(TlsctlTest, ConnectReportsConnectionRefused) {
  int port;
  {
    testing::Listener closed;  // a port that was free a moment ago
    port = closed.port();
  }
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--insecure"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Lines(r.out, "\"code\":\"ECONNREFUSED\"").size(), 1u) << r.out;
}

TEST_F(TlsctlTest, ConnectToServeEchoesAndResumes) {
  for (const char* version : {"TLSv1.3", "TLSv1.2"}) {
    SCOPED_TRACE(version);
    Subprocess server;
    int port = StartServe(server, {"--max-version", version});
    ASSERT_GT(port, 0);
    std::string session = absl::StrCat(TmpDir(), "/session-", version, ".der");
    Outcome first = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--send", "hello \"tlsctl\"\n",
                           "--session-out", session});
    EXPECT_EQ(first.code, 0) << first.out << first.err;
    EXPECT_EQ(Lines(first.out, "{\"event\":\"data\",\"data\":\"hello \\\"tlsctl\\\"\\n\"}").size(), 1u) << first.out;
    EXPECT_EQ(Lines(first.out, "\"sessionReused\":false").size(), 1u) << first.out;
    Outcome second = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--stdin", "--session-in",
                            session},
                           "from stdin");
    EXPECT_EQ(second.code, 0) << second.out << second.err;
    EXPECT_EQ(Lines(second.out, "\"sessionReused\":true").size(), 1u) << second.out;
    EXPECT_EQ(Lines(second.out, "\"data\":\"from stdin\"").size(), 1u) << second.out;
    absl::StatusOr<std::string> reused = server.WaitForLine("\"sessionReused\":true", kTimeout);
    EXPECT_TRUE(reused.ok()) << reused.status();
  }
}

TEST_F(TlsctlTest, ServeReportsClientErrorsWithNodeCodes) {
  Subprocess server;
  int port = StartServe(server, {"--request-cert", "--reject-unauthorized", "--ca", TestFilePath("ca1.pem")});
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert()});
  EXPECT_EQ(r.code, 1) << r.out;
  absl::StatusOr<std::string> err = server.WaitForLine("\"event\":\"clientError\"", kTimeout);
  ASSERT_TRUE(err.ok()) << err.status();
  EXPECT_TRUE(absl::StrContains(*err, "\"code\":\"ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE\"")) << *err;
  // With a client certificate from ca1 the same server authorizes it.
  Outcome ok = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--key",
                      TestFilePath("client-key.pem"), "--cert", TestFilePath("client-chain.pem"), "--send", "x"});
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_TRUE(absl::StrContains(*secure, "\"authorized\":true")) << *secure;
  EXPECT_TRUE(absl::StrContains(*secure, "\"CN\":\"test client\"")) << *secure;
}

}  // namespace
}  // namespace tlsengine
