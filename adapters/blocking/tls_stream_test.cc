// TlsStream and TlsListener against each other over loopback TCP (IPv4 and
// IPv6) and unix sockets: the handshake and data both ways, STARTTLS,
// rejected peers (who still learn why), mid-stream handshake messages, and
// a silent peer making every call fail at its deadline.
#include "adapters/blocking/tls_stream.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
using ::tlsengine::testing::ServerWith;

constexpr absl::Duration kGenerous = absl::Seconds(10);  // an upper bound, never a speed
constexpr absl::Duration kShort = absl::Milliseconds(300);

absl::Time Soon() { return absl::Now() + kGenerous; }

StreamOptions SelfSignedServer() {
  SecureContextOptions o;
  o.key = {testing::Key("self-signed")};
  o.cert = {testing::Cert("self-signed")};
  return StreamOptions(ServerWith(o));
}

// How late past its deadline a call may return: scheduling only. No call
// may block past its deadline (a careful close inside one used to add
// 2 x 250 ms of drain).
constexpr absl::Duration kLate = absl::Milliseconds(150);

// A status that failed with `code` at or after `deadline`, and returned
// no later than kLate after it.
void ExpectTimedOut(const absl::Status& s, absl::string_view code, absl::Time deadline) {
  absl::Time now = absl::Now();
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(NodeCode(s), code) << s;
  EXPECT_GE(now, deadline);
  EXPECT_LT(now, deadline + kLate) << "returned " << (now - deadline) << " past its deadline";
}

struct Pair {
  std::unique_ptr<TlsListener> listener;
  std::unique_ptr<TlsStream> server, client;
};

// A listener on `host`, one accepted and handshaken server stream, and the
// client connected to it.
absl::Status Connect(Pair& p, StreamOptions server, StreamOptions client, const std::string& host = "127.0.0.1") {
  absl::StatusOr<std::unique_ptr<TlsListener>> listener = TlsListener::Listen(host, 0, std::move(server));
  if (!listener.ok()) return listener.status();
  p.listener = std::move(*listener);
  absl::Status server_status;
  std::thread accept([&] {
    absl::StatusOr<std::unique_ptr<TlsStream>> s = p.listener->Accept(Soon());
    if (!s.ok()) {
      server_status = s.status();
      return;
    }
    p.server = std::move(*s);
    server_status = p.server->Handshake(Soon());
  });
  absl::StatusOr<std::unique_ptr<TlsStream>> c = TlsStream::Connect(host, p.listener->port(), client, Soon());
  accept.join();
  if (!c.ok()) return c.status();
  p.client = std::move(*c);
  return server_status;
}

class VersionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VersionTest, EchoesBothWaysAndEndsWithCloseNotify) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions("server-rsa", GetParam())), StreamOptions(ClientOptions())).ok());
  EXPECT_TRUE(p.client->authorized()) << p.client->authorization_error();
  EXPECT_EQ(p.client->protocol(), GetParam());
  ASSERT_TRUE(p.client->GetCipher().has_value());
  EXPECT_EQ(p.client->GetCipher()->version, GetParam());
  ASSERT_TRUE(p.client->GetPeerCertificate().has_value());
  EXPECT_EQ(p.client->GetPeerCertificate()->subject.Get("CN"), "localhost");
  EXPECT_EQ(p.server->servername(), "localhost");
  EXPECT_EQ(&p.client->connection(), &p.client->connection());

  ASSERT_TRUE(p.client->Write("ping\n", Soon()).ok());
  absl::StatusOr<std::string> line = p.server->ReadUntil("\n", 1024, Soon());
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "ping\n");
  std::string big(200000, 'x');  // more than the engine's buffers: Write loops
  ASSERT_TRUE(p.server->Write(big, Soon()).ok());
  std::string got(big.size(), '\0');
  ASSERT_TRUE(p.client->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(&got[0]), got.size()), Soon()).ok());
  EXPECT_EQ(got, big);

  ASSERT_TRUE(p.server->Shutdown(Soon()).ok());
  char buf[16];
  absl::StatusOr<size_t> n = p.client->Read(absl::MakeSpan(buf), Soon());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);  // close_notify: end of stream
  EXPECT_TRUE(p.client->Shutdown(Soon()).ok());
}

INSTANTIATE_TEST_SUITE_P(Tls, VersionTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

TEST(TlsStreamTest, ConnectsOverIpv6) {
  Pair p;
  absl::Status s = Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions()), "::1");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(p.client->authorized());
  ASSERT_TRUE(p.client->Write("v6", Soon()).ok());
  char buf[2];
  ASSERT_TRUE(p.server->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(buf), 2), Soon()).ok());
  EXPECT_EQ(std::string(buf, 2), "v6");
}

TEST(TlsStreamTest, ConnectByNameSendsItAsSniAndChecksIt) {
  StreamOptions client = StreamOptions(ClientOptions());
  client.servername.clear();  // the host is the name, as in Node
  Pair p;
  absl::StatusOr<std::unique_ptr<TlsListener>> listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::thread accept([&] {
    auto s = (*listener)->Accept(Soon());
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE((*s)->Handshake(Soon()).ok());
    EXPECT_EQ((*s)->servername(), "localhost");
  });
  auto c = TlsStream::Connect("localhost", (*listener)->port(), client, Soon());
  accept.join();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->authorized());
}

TEST(TlsStreamTest, UnixSocket) {
  // sun_path holds 108 bytes: Bazel's TEST_TMPDIR is too deep.
  char dir[] = "/tmp/blocking-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = absl::StrCat(dir, "/s");
  auto listener = TlsListener::ListenUnix(path, StreamOptions(ServerOptions()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_EQ((*listener)->port(), 0);
  std::thread serve([&] {
    auto s = (*listener)->Accept(Soon());
    ASSERT_TRUE(s.ok()) << s.status();
    auto line = (*s)->ReadUntil("\n", 100, Soon());
    ASSERT_TRUE(line.ok()) << line.status();
    EXPECT_TRUE((*s)->Write("unix " + *line, Soon()).ok());
    EXPECT_TRUE((*s)->Shutdown(Soon(), /*wait_for_peer=*/true).ok());
  });
  auto c = TlsStream::ConnectUnix(path, StreamOptions(ClientOptions()), Soon());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Write("hi\n", Soon()).ok());
  auto reply = (*c)->ReadUntil("\n", 100, Soon());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "unix hi\n");
  EXPECT_TRUE((*c)->Shutdown(Soon()).ok());
  serve.join();
  listener->reset();  // removes the socket file
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  rmdir(dir);
}

// STARTTLS: a plaintext line, then TLS on the same socket. The server's
// plaintext read also took the start of the ClientHello; Wrap() gets it.
TEST(TlsStreamTest, WrapStartsTlsWithBytesAlreadyRead) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::thread client([fd = fds[0]] {
    ASSERT_EQ(write(fd, "STARTTLS\n", 9), 9);
    auto c = TlsStream::Wrap(fd, StreamOptions(ClientOptions()));
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE((*c)->Write("secret", Soon()).ok());
    EXPECT_TRUE((*c)->Shutdown(Soon(), /*wait_for_peer=*/true).ok());
  });
  // Wait until more than the line has arrived, then read it all in one go.
  char buf[4096];
  ssize_t n = 0;
  for (absl::Time end = Soon(); absl::Now() < end && n <= 9; absl::SleepFor(absl::Milliseconds(5))) {
    n = recv(fds[1], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  }
  ASSERT_GT(n, 9);
  n = recv(fds[1], buf, sizeof(buf), 0);
  std::string got(buf, static_cast<size_t>(n));
  ASSERT_TRUE(absl::StartsWith(got, "STARTTLS\n"));
  auto s = TlsStream::Wrap(fds[1], StreamOptions(ServerOptions()), absl::string_view(got).substr(9));
  ASSERT_TRUE(s.ok()) << s.status();
  char secret[6];
  ASSERT_TRUE((*s)->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(secret), 6), Soon()).ok());
  EXPECT_EQ(std::string(secret, 6), "secret");
  EXPECT_TRUE((*s)->Shutdown(Soon()).ok());
  client.join();
}

TEST(TlsStreamTest, WrapRejectsABadFd) {
  auto s = TlsStream::Wrap(-1, StreamOptions(ClientOptions()));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(s.status()), "EBADF");
}

TEST(TlsStreamTest, ConnectRefused) {
  int port;
  {
    testing::Listener closed;  // bound, then closed: nobody listens there
    port = closed.port();
  }
  auto c = TlsStream::Connect("127.0.0.1", port, StreamOptions(ClientOptions()), Soon());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NodeCode(c.status()), "ECONNREFUSED") << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "127.0.0.1:")) << c.status();
}

// The client rejects the server's certificate: it reports the verify code,
// and the server hears the alert (the careful close delivered it).
TEST(TlsStreamTest, RejectedServerLearnsWhy) {
  Pair p;
  absl::Status s = Connect(p, SelfSignedServer(), StreamOptions(ClientOptions()));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  ASSERT_NE(p.server, nullptr);
  absl::Status server = p.server->status();
  EXPECT_EQ(server.code(), absl::StatusCode::kAborted) << server;
  EXPECT_TRUE(AlertOf(server).has_value()) << server;
}

TEST(TlsStreamTest, ClientReportsVerifyCodes) {
  {
    Pair p;
    absl::Status s = Connect(p, SelfSignedServer(), StreamOptions(ClientOptions()));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_EQ(NodeCode(s), "DEPTH_ZERO_SELF_SIGNED_CERT") << s;
  }
  {
    StreamOptions client = StreamOptions(ClientOptions());
    client.servername = "other.example.com";
    Pair p;
    absl::Status s = Connect(p, StreamOptions(ServerOptions()), client);
    EXPECT_EQ(NodeCode(s), kErrCertAltnameInvalid) << s;
  }
}

TEST(TlsStreamTest, ServerRequiresAClientCertificate) {
  StreamOptions server = StreamOptions(ServerOptions());
  server.request_cert = true;
  Pair p;
  absl::Status s = Connect(p, server, StreamOptions(ClientOptions("TLSv1.3")));
  // The client learns it from the certificate_required alert, on its
  // first read after the handshake (TLS 1.3 finishes the client first).
  ASSERT_NE(p.server, nullptr);
  EXPECT_EQ(NodeCode(p.server->status()), "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") << p.server->status();
  if (s.ok()) {
    char buf[1];
    absl::StatusOr<size_t> n = p.client->Read(absl::MakeSpan(buf), Soon());
    EXPECT_EQ(n.status().code(), absl::StatusCode::kAborted) << n.status();
    EXPECT_TRUE(AlertOf(n.status()).has_value()) << n.status();
  }

  StreamOptions with_cert = StreamOptions(ClientWith(IdentityOptions("client")));
  Pair q;
  ASSERT_TRUE(Connect(q, server, with_cert).ok());
  EXPECT_TRUE(q.server->authorized());
  ASSERT_TRUE(q.server->GetPeerCertificate().has_value());
  EXPECT_EQ(q.server->GetPeerCertificate()->subject.Get("CN"), "test client");
}

TEST(TlsStreamTest, TruncationIsAnError) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions())).ok());
  ::shutdown(p.server->fd(), SHUT_RDWR);  // the transport ends, no close_notify
  char buf[8];
  absl::StatusOr<size_t> n = p.client->Read(absl::MakeSpan(buf), Soon());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable) << n.status();
  EXPECT_EQ(NodeCode(n.status()), kErrConnReset);
  EXPECT_TRUE(absl::StrContains(n.status().message(), "close_notify")) << n.status();
}

TEST(TlsStreamTest, CallsAfterCloseOrShutdown) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions())).ok());
  ASSERT_TRUE(p.client->Shutdown(Soon()).ok());
  absl::Status w = p.client->Write("late", Soon());
  EXPECT_EQ(w.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodeCode(w), "ERR_STREAM_WRITE_AFTER_END");
  p.client->Close();
  EXPECT_EQ(p.client->fd(), -1);
  char buf[1];
  EXPECT_EQ(NodeCode(p.client->Read(absl::MakeSpan(buf), Soon()).status()), "ERR_STREAM_DESTROYED");
  EXPECT_EQ(NodeCode(p.client->Handshake(Soon())), "ERR_STREAM_DESTROYED");
  // The server saw our close_notify.
  absl::StatusOr<size_t> n = p.server->Read(absl::MakeSpan(buf), Soon());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
}

// ---- Mid-stream handshake messages: a Read that meets one keeps going ----

TEST(TlsStreamTest, KeyUpdateMidStream) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions("server-rsa", "TLSv1.3")), StreamOptions(ClientOptions())).ok());
  ASSERT_TRUE(p.server->KeyUpdate(/*request_peer=*/true, Soon()).ok());
  ASSERT_TRUE(p.server->Write("after update", Soon()).ok());
  char buf[12];
  ASSERT_TRUE(p.client->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(buf), 12), Soon()).ok());
  EXPECT_EQ(std::string(buf, 12), "after update");
  EXPECT_GE(p.client->connection().stats().key_updates_received, 1u);
  ASSERT_TRUE(p.client->Write("x", Soon()).ok());  // carries the client's own KeyUpdate, as asked
  ASSERT_TRUE(p.server->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(buf), 1), Soon()).ok());
  EXPECT_GE(p.server->connection().stats().key_updates_received, 1u);
}

class RenegotiationTest : public ::testing::TestWithParam<std::string> {};

// TLS 1.2 renegotiation and TLS 1.3 post-handshake authentication, asked
// for by the server while the client sits in Read().
TEST_P(RenegotiationTest, ServerAsksForACertificateMidStream) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions("server-rsa", GetParam())),
                      StreamOptions(ClientWith(IdentityOptions("client")))).ok());
  EXPECT_FALSE(p.server->GetPeerCertificate().has_value());
  absl::Status client_read;
  std::string got(5, '\0');
  std::thread reader([&] {
    client_read = p.client->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(&got[0]), 5), Soon());
  });
  RenegotiateOptions opts;
  opts.request_cert = true;
  absl::Status s = p.server->Renegotiate(opts, Soon());
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(p.server->Write("after", Soon()).ok());
  reader.join();
  EXPECT_TRUE(client_read.ok()) << client_read;
  EXPECT_EQ(got, "after");
  ASSERT_TRUE(p.server->GetPeerCertificate().has_value());
  EXPECT_EQ(p.server->GetPeerCertificate()->subject.Get("CN"), "test client");
  EXPECT_TRUE(p.server->authorized());
  EXPECT_EQ(p.server->connection().stats().renegotiations, 1u);
}

INSTANTIATE_TEST_SUITE_P(Tls, RenegotiationTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

// ---- A silent peer makes each call fail at its deadline ----

TEST(DeadlineTest, TcpConnectTimesOut) {
  // A listen queue that is full: the kernel drops further SYNs, so connect
  // waits (Linux).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 0), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  int filler = testing::ConnectLoopback(port);
  ASSERT_GE(filler, 0);
  absl::Time deadline = absl::Now() + kShort;
  auto c = TlsStream::Connect("127.0.0.1", port, StreamOptions(ClientOptions()), deadline);
  ExpectTimedOut(c.status(), "ETIMEDOUT", deadline);
  close(filler);
  close(fd);
}

TEST(DeadlineTest, ConnectHandshakeTimesOutOnASilentServer) {
  testing::Listener silent;  // the kernel accepts; nobody ever speaks
  absl::Time deadline = absl::Now() + kShort;
  auto c = TlsStream::Connect("127.0.0.1", silent.port(), StreamOptions(ClientOptions()), deadline);
  ExpectTimedOut(c.status(), kErrHandshakeTimeout, deadline);
}

TEST(DeadlineTest, AcceptTimesOut) {
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::Time deadline = absl::Now() + kShort;
  auto s = (*listener)->Accept(deadline);
  ExpectTimedOut(s.status(), "ETIMEDOUT", deadline);
}

TEST(DeadlineTest, ServerHandshakeTimesOutOnASilentClientAndStaysFailed) {
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  int silent = testing::ConnectLoopback((*listener)->port());
  ASSERT_GE(silent, 0);
  auto s = (*listener)->Accept(Soon());
  ASSERT_TRUE(s.ok()) << s.status();
  absl::Time deadline = absl::Now() + kShort;
  ExpectTimedOut((*s)->Handshake(deadline), kErrHandshakeTimeout, deadline);
  EXPECT_EQ(NodeCode((*s)->Handshake(Soon())), kErrHandshakeTimeout);  // sticky, as Node destroys the socket
  close(silent);
}

TEST(DeadlineTest, ReadTimesOutAndTheStreamStaysUsable) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions())).ok());
  char buf[4];
  absl::Time deadline = absl::Now() + kShort;
  ExpectTimedOut(p.client->Read(absl::MakeSpan(buf), deadline).status(), "ETIMEDOUT", deadline);
  deadline = absl::Now() + kShort;
  ExpectTimedOut(p.client->ReadFull(absl::MakeSpan(reinterpret_cast<uint8_t*>(buf), 4), deadline), "ETIMEDOUT",
                 deadline);
  deadline = absl::Now() + kShort;
  ExpectTimedOut(p.client->ReadUntil("\n", 10, deadline).status(), "ETIMEDOUT", deadline);
  ASSERT_TRUE(p.server->Write("late", Soon()).ok());
  absl::StatusOr<size_t> n = p.client->Read(absl::MakeSpan(buf), Soon());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), std::string("late").substr(0, *n));
}

TEST(DeadlineTest, WriteTimesOutOnAPeerThatDoesNotReadAndFailsTheStream) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions())).ok());
  std::string lots(64 << 20, 'x');  // more than loopback's socket buffers
  absl::Time deadline = absl::Now() + kShort;
  ExpectTimedOut(p.client->Write(lots, deadline), "ETIMEDOUT", deadline);
  EXPECT_EQ(NodeCode(p.client->Write("more", Soon())), "ETIMEDOUT");
}

TEST(DeadlineTest, ShutdownWaitingForThePeerTimesOut) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions()), StreamOptions(ClientOptions())).ok());
  absl::Time deadline = absl::Now() + kShort;
  ExpectTimedOut(p.client->Shutdown(deadline, /*wait_for_peer=*/true), "ETIMEDOUT", deadline);
}

TEST(DeadlineTest, RenegotiateTimesOutWhenThePeerIsNotReading) {
  Pair p;
  ASSERT_TRUE(Connect(p, StreamOptions(ServerOptions("server-rsa", "TLSv1.2")), StreamOptions(ClientOptions())).ok());
  absl::Time deadline = absl::Now() + kShort;
  ExpectTimedOut(p.server->Renegotiate({}, deadline), "ETIMEDOUT", deadline);
}

TEST(ListenerTest, ShutdownWakesAcceptingThreads) {
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(ServerOptions()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<std::future<absl::Status>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::async(std::launch::async, [&] { return (*listener)->Accept(Soon()).status(); }));
  }
  absl::SleepFor(absl::Milliseconds(50));
  absl::Time asked = absl::Now();
  (*listener)->Shutdown();
  for (auto& f : waiting) {
    absl::Status s = f.get();
    EXPECT_EQ(NodeCode(s), "ECONNABORTED") << s;
  }
  EXPECT_LT(absl::Now(), asked + kGenerous);
}

TEST(ListenerTest, RefusesBadArguments) {
  EXPECT_EQ(TlsListener::Listen("127.0.0.1", 70000, StreamOptions(ServerOptions())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsListener::ListenUnix("", StreamOptions(ServerOptions())).status().code(), absl::StatusCode::kInvalidArgument);
  testing::Listener taken;
  auto again = TlsListener::Listen("127.0.0.1", taken.port(), StreamOptions(ServerOptions()));
  EXPECT_EQ(NodeCode(again.status()), "EADDRINUSE") << again.status();
}

}  // namespace
}  // namespace blocking
}  // namespace tlsengine
