// The blocking adapter against real peers on loopback, TLS 1.2 and 1.3:
// openssl s_server (including key update, renegotiation and post-handshake
// authentication that it starts mid-stream), openssl s_client, and node's
// tls as server and as client.
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace blocking {
namespace {

using ::tlsengine::testing::ClientOptions;
using ::tlsengine::testing::ClientWith;
using ::tlsengine::testing::IdentityOptions;
using ::tlsengine::testing::ServerOptions;
using ::tlsengine::testing::Subprocess;
using ::tlsengine::testing::TestFilePath;

constexpr absl::Duration kPeerTimeout = absl::Seconds(20);

absl::Time Soon() { return absl::Now() + kPeerTimeout; }

std::string VersionFlag(const std::string& version) { return version == "TLSv1.2" ? "-tls1_2" : "-tls1_3"; }

// Starts `openssl s_server` with server-rsa and returns its port.
int StartSServer(Subprocess& server, const std::string& version, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "1", VersionFlag(version),
                                   "-cert", TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                                   TestFilePath("server-rsa-key.pem")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!server.Start(argv).ok()) return -1;
  absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kPeerTimeout);
  if (!accept.ok()) return -1;
  return std::stoi(accept->substr(accept->rfind(':') + 1));
}

class PeerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PeerTest, ClientTalksToSServer) {
  Subprocess server;
  int port = StartSServer(server, GetParam(), {"-rev"});
  ASSERT_GT(port, 0) << server.err();
  auto c = TlsStream::Connect("127.0.0.1", port, StreamOptions(ClientOptions()), Soon());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->authorized()) << (*c)->authorization_error();
  EXPECT_EQ((*c)->protocol(), GetParam());
  const std::string hello = "hello openssl";
  ASSERT_TRUE((*c)->Write(hello + "\n", Soon()).ok());
  absl::StatusOr<std::string> line = (*c)->ReadUntil("\n", 1024, Soon());
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(absl::StrContains(*line, std::string(hello.rbegin(), hello.rend()))) << *line;
  (*c)->Close();
  EXPECT_EQ(server.Wait(kPeerTimeout), 0) << server.err();
}

TEST_P(PeerTest, SClientTalksToListener) {
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions("server-rsa", GetParam())));
  ASSERT_TRUE(listener.ok()) << listener.status();
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", (*listener)->port()),
                          VersionFlag(GetParam()), "-CAfile", TestFilePath("ca1.pem"), "-verify_return_error",
                          "-servername", "localhost", "-quiet"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("hello listener\n").ok());
  auto s = (*listener)->Accept(Soon());
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::string> line = (*s)->ReadUntil("\n", 1024, Soon());
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "hello listener\n");
  EXPECT_EQ((*s)->protocol(), GetParam());
  EXPECT_EQ((*s)->servername(), "localhost");
  ASSERT_TRUE((*s)->Write("bye from tlsengine\n", Soon()).ok());
  EXPECT_TRUE(client.WaitForLine("bye from tlsengine", kPeerTimeout).ok()) << client.out() << client.err();
  EXPECT_TRUE((*s)->Shutdown(Soon()).ok());
  (*s)->Close();
  client.CloseStdin();
  EXPECT_EQ(client.Wait(kPeerTimeout), 0) << client.err();
}

TEST_P(PeerTest, ClientTalksToNodeServer) {
  Subprocess server;
  ASSERT_TRUE(server
                  .Start({"node", "-e",
                          "const tls = require('tls'), fs = require('fs');\n"
                          "const srv = tls.createServer({key: fs.readFileSync(process.argv[1]),\n"
                          "  cert: fs.readFileSync(process.argv[2]), ALPNProtocols: ['h2', 'echo'],\n"
                          "  minVersion: process.argv[3], maxVersion: process.argv[3]}, s => {\n"
                          "  s.on('data', d => { s.end('node: ' + d + ' ' + s.alpnProtocol); srv.close(); });\n"
                          "});\n"
                          "srv.listen(0, '127.0.0.1', () => console.log('PORT', srv.address().port));\n",
                          TestFilePath("server-ecdsa-key.pem"), TestFilePath("server-ecdsa-chain.pem"), GetParam()})
                  .ok());
  absl::StatusOr<std::string> port = server.WaitForLine("PORT", kPeerTimeout);
  ASSERT_TRUE(port.ok()) << port.status() << server.err();
  StreamOptions opts = StreamOptions(ClientOptions());
  opts.alpn_protocols = {"echo"};
  auto c = TlsStream::Connect("127.0.0.1", std::stoi(port->substr(5)), opts, Soon());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->alpn_protocol(), "echo");
  EXPECT_EQ((*c)->protocol(), GetParam());
  ASSERT_TRUE((*c)->Write("hi", Soon()).ok());
  std::string got;
  char buf[256];
  for (;;) {
    absl::StatusOr<size_t> n = (*c)->Read(absl::MakeSpan(buf), Soon());
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;  // node's end(): close_notify
    got.append(buf, *n);
  }
  EXPECT_EQ(got, "node: hi echo");
  (*c)->Close();
  EXPECT_EQ(server.Wait(kPeerTimeout), 0) << server.err();
}

TEST_P(PeerTest, NodeClientTalksToListener) {
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions("server-rsa", GetParam())));
  ASSERT_TRUE(listener.ok()) << listener.status();
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"node", "-e",
                          "const tls = require('tls'), fs = require('fs');\n"
                          "const s = tls.connect({host: '127.0.0.1', port: +process.argv[1],\n"
                          "  servername: 'localhost', ca: fs.readFileSync(process.argv[2])}, () => {\n"
                          "  info = s.authorized + ' ' + s.getProtocol();\n"
                          "  s.write('hi from node\\n');\n"
                          "});\n"
                          "let got = '', info = '';\n"
                          "s.on('data', d => got += d);\n"
                          "s.on('end', () => { console.log('GOT', got.trim(), info); s.end(); });\n",
                          absl::StrCat((*listener)->port()), TestFilePath("ca1.pem")})
                  .ok());
  auto s = (*listener)->Accept(Soon());
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::string> line = (*s)->ReadUntil("\n", 1024, Soon());
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "hi from node\n");
  ASSERT_TRUE((*s)->Write("echo: " + *line, Soon()).ok());
  EXPECT_TRUE((*s)->Shutdown(Soon(), /*wait_for_peer=*/true).ok());
  absl::StatusOr<std::string> got = client.WaitForLine("GOT", kPeerTimeout);
  ASSERT_TRUE(got.ok()) << got.status() << client.err();
  EXPECT_TRUE(absl::StrContains(*got, "echo: hi from node")) << *got;
  EXPECT_TRUE(absl::StrContains(*got, "true " + GetParam())) << *got;
  EXPECT_EQ(client.Wait(kPeerTimeout), 0) << client.err();
}

INSTANTIATE_TEST_SUITE_P(Tls, PeerTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

// s_server's stdin commands start handshake messages while our client sits
// in ReadUntil(): each time the data after them still arrives.
struct MidStream {
  std::string version;
  std::string command;  // "K\n": key update asking for ours; "r\n": renegotiate; "c\n": post-handshake auth
  std::string name;
};

void PrintTo(const MidStream& m, std::ostream* os) { *os << m.name; }

class MidStreamTest : public ::testing::TestWithParam<MidStream> {};

TEST_P(MidStreamTest, ReadKeepsGoingThroughAServerHandshakeMessage) {
  Subprocess server;
  int port = StartSServer(server, GetParam().version, {"-CAfile", TestFilePath("ca1.pem")});
  ASSERT_GT(port, 0) << server.err();
  auto c = TlsStream::Connect("127.0.0.1", port, StreamOptions(ClientWith(IdentityOptions("client"))), Soon());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Write("ready\n", Soon()).ok());
  ASSERT_TRUE(server.WaitForLine("ready", kPeerTimeout).ok()) << server.out();
  ASSERT_TRUE(server.WriteStdin(GetParam().command).ok());
  // s_server drops whatever shares a read() with a command, so "after" is
  // repeated until one arrives; each short ReadUntil that times out leaves
  // the stream usable.
  absl::StatusOr<std::string> line;
  for (absl::Time end = Soon(); absl::Now() < end;) {
    ASSERT_TRUE(server.WriteStdin("after\n").ok());
    line = (*c)->ReadUntil("\n", 1024, absl::Now() + absl::Milliseconds(200));
    if (line.ok() || NodeCode(line.status()) != "ETIMEDOUT") break;
  }
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "after\n");
  // And our data still reaches it, under the new keys.
  ASSERT_TRUE((*c)->Write("still here\n", Soon()).ok());
  EXPECT_TRUE(server.WaitForLine("still here", kPeerTimeout).ok()) << server.out();
  if (GetParam().command == "K\n") {
    EXPECT_GE((*c)->connection().stats().key_updates_received, 1u);
  } else if (GetParam().command == "R\n") {
    EXPECT_EQ((*c)->connection().stats().renegotiations, 1u);
  } else {
    // The server asked for our certificate mid-stream and got it.
    // s_server's verify callback prints it (perhaps already read while waiting for "still here").
    bool seen = absl::StrContains(server.out() + server.err(), "CN = test client") ||
                server.WaitForLine("CN = test client", kPeerTimeout).ok();
    EXPECT_TRUE(seen) << server.out() << server.err();
  }
  (*c)->Close();
  server.Kill();
}

INSTANTIATE_TEST_SUITE_P(Commands, MidStreamTest,
                         ::testing::Values(MidStream{"TLSv1.3", "K\n", "KeyUpdate"},
                                           MidStream{"TLSv1.3", "c\n", "PostHandshakeAuth"},
                                           MidStream{"TLSv1.2", "R\n", "Renegotiation"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace blocking
}  // namespace tlsengine
