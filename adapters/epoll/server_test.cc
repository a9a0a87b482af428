// Server and TlsSocket against each other over loopback: the Node surface
// (events, properties, error codes) and the driver's closing rules.
#include "adapters/epoll/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/epoll/epoll_testlib.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace epoll {
namespace {

using testing::ClientTo;
using testing::EchoOn;
using testing::RunUntil;
using testing::ServerFor;

// The loopback fixture (epoll_testlib.h): an echo server on one loop, no fd
// left behind.
class ServerTest : public testing::EchoServerTest {};

TEST_F(ServerTest, EchoesAndClosesCleanlyWithNodesEventOrder) {
  StartEcho();
  absl::StatusOr<SocketAddress> addr = server_->address();
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->address, "127.0.0.1");
  EXPECT_EQ(addr->family, "IPv4");
  EXPECT_GT(addr->port, 0);

  absl::StatusOr<std::shared_ptr<TlsSocket>> made = TlsSocket::Connect(loop_.get(), ClientTo(port_));
  ASSERT_TRUE(made.ok()) << made.status();
  std::shared_ptr<TlsSocket> c = *made;
  EXPECT_EQ(c->ready_state(), ReadyState::kOpening);
  std::vector<std::string> order;
  std::string got;
  bool closed = false, had_error = true;
  c->handlers().on_connect = [&] { order.push_back("connect"); };
  c->handlers().on_secure_connect = [&] {
    order.push_back("secureConnect");
    EXPECT_TRUE(c->authorized());
    EXPECT_EQ(c->authorization_error(), "");
    EXPECT_EQ(c->ready_state(), ReadyState::kOpen);
    EXPECT_TRUE(c->Write("hello "));
    c->End("world");
    EXPECT_EQ(c->ready_state(), ReadyState::kReadOnly);
  };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_end = [&] { order.push_back("end"); };
  c->handlers().on_error = [&](const absl::Status& e) { ADD_FAILURE() << e; };
  c->handlers().on_close = [&](bool e) {
    order.push_back("close");
    closed = true;
    had_error = e;
  };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(got, "hello world");
  EXPECT_FALSE(had_error);
  EXPECT_EQ(order, (std::vector<std::string>{"connect", "secureConnect", "end", "close"}));
  EXPECT_EQ(c->ready_state(), ReadyState::kClosed);
  EXPECT_TRUE(c->close_status().ok()) << c->close_status();
  EXPECT_EQ(c->bytes_written(), 11u);
  EXPECT_EQ(c->bytes_read(), 11u);
  EXPECT_GT(c->raw_bytes_read(), c->bytes_read());
  EXPECT_GT(c->raw_bytes_written(), c->bytes_written());
  EXPECT_EQ(c->remote_address(), "127.0.0.1");
  EXPECT_EQ(c->remote_family(), "IPv4");
  EXPECT_EQ(c->remote_port(), port_);
  EXPECT_EQ(c->local_address(), "127.0.0.1");
  EXPECT_GT(c->local_port(), 0);
  EXPECT_EQ(c->address().port, c->local_port());
  EXPECT_EQ(secure_connections_, 1);
  EXPECT_TRUE(client_errors_.empty());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
}

TEST_F(ServerTest, ListensOnIpv6Loopback) {
  StartEcho(ServerFor(), "::1");
  EXPECT_EQ(server_->address()->family, "IPv6");
  EXPECT_EQ(server_->address()->address, "::1");
  TlsSocketOptions o = ClientTo(port_);
  o.host = "::1";
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  std::string got;
  bool closed = false;
  c->handlers().on_secure_connect = [&] { c->End("v6"); };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(got, "v6");
  EXPECT_EQ(c->remote_family(), "IPv6");
  EXPECT_EQ(c->remote_address(), "::1");
}

TEST_F(ServerTest, ResolvesLocalhostOffTheLoopAndDualStackListenAcceptsIt) {
  StartEcho(ServerFor(), "");  // "::" dual stack
  TlsSocketOptions o = ClientTo(port_);
  o.host = "localhost";
  o.family = 4;  // 127.0.0.1, through the v4-mapped dual-stack listener
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  std::string got;
  bool closed = false;
  c->handlers().on_secure_connect = [&] { c->End("name"); };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(got, "name");
  EXPECT_EQ(c->remote_address(), "127.0.0.1");
}

TEST_F(ServerTest, ListensOnAUnixSocketAndPathWinsOverPort) {
  std::string path = absl::StrCat("/tmp/tlsengine-epoll-", getpid(), ".sock");
  ::unlink(path.c_str());
  handlers_.on_secure_connection = [](std::shared_ptr<TlsSocket> s) { EchoOn(s); };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->ListenUnix(path).ok());
  EXPECT_EQ(server_->address()->family, "unix");
  EXPECT_EQ(server_->address()->address, path);
  TlsSocketOptions o = ClientTo(1);  // port 1 is ignored: path wins
  o.path = path;
  o.tls.servername = "localhost";
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  std::string got;
  bool closed = false;
  c->handlers().on_secure_connect = [&] { c->End("unix"); };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(got, "unix");
  EXPECT_EQ(c->remote_family(), "unix");
  bool server_closed = false;
  ASSERT_TRUE(server_->Close([&] { server_closed = true; }).ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_closed; }));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed at close";
}

TEST_F(ServerTest, ConnectionRefusedHasNodesCode) {
  // A port nobody listens on: bind one, close it.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(probe);

  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(port));
  testing::Ending ending;
  testing::RecordEnding(*c, &ending);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  EXPECT_EQ(NodeCode(ending.error), "ECONNREFUSED") << ending.error;
  EXPECT_EQ(ending.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(ending.error.message(), absl::StrCat("127.0.0.1:", port))) << ending.error;
  EXPECT_TRUE(ending.had_error);
}

TEST_F(ServerTest, BadConnectOptionsFailAtOnce) {
  TlsSocketOptions o = ClientTo(0);
  absl::StatusOr<std::shared_ptr<TlsSocket>> s = TlsSocket::Connect(loop_.get(), o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  o = ClientTo(443);
  o.tls.secure_context = nullptr;
  s = TlsSocket::Connect(loop_.get(), o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(s.status()), "ERR_INVALID_ARG_VALUE");
  o = ClientTo(443);
  o.family = 5;
  EXPECT_EQ(TlsSocket::Connect(loop_.get(), o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, UnknownHostIsENOTFOUND) {
  TlsSocketOptions o = ClientTo(443);
  o.host = "no-such-host.invalid";  // RFC 6761: never resolves
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  absl::Status error;
  bool closed = false;
  c->handlers().on_error = [&](const absl::Status& e) { error = e; };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }, absl::Seconds(20)));
  EXPECT_TRUE(NodeCode(error) == "ENOTFOUND" || NodeCode(error) == "EAI_AGAIN") << error;
}

TEST_F(ServerTest, WrongNameIsAltnameInvalidOnTheClientAndAClientErrorOnTheServer) {
  StartEcho();
  TlsSocketOptions o = ClientTo(port_);
  o.tls.servername = "other.example.com";
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  absl::Status error;
  bool closed = false, secure = false;
  c->handlers().on_secure_connect = [&] { secure = true; };
  c->handlers().on_error = [&](const absl::Status& e) { error = e; };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed && !client_errors_.empty(); }));
  EXPECT_FALSE(secure);
  EXPECT_EQ(NodeCode(error), "ERR_TLS_CERT_ALTNAME_INVALID") << error;
  // The server heard the client's alert (bad_certificate or similar):
  // a protocol error, reported before 'secureConnection'.
  EXPECT_EQ(client_errors_[0].code(), absl::StatusCode::kAborted) << client_errors_[0];
  EXPECT_TRUE(AlertOf(client_errors_[0]).has_value()) << client_errors_[0];
  EXPECT_EQ(secure_connections_, 0);
}

TEST_F(ServerTest, StalledHandshakeIsClosedAtTheHandshakeTimeout) {
  ServerOptions o = ServerFor();
  o.handshake_timeout = absl::Milliseconds(300);
  StartEcho(o);
  int raw = tlsengine::testing::ConnectLoopback(port_);
  ASSERT_GE(raw, 0);
  absl::Time start = absl::Now();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !client_errors_.empty(); }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(NodeCode(client_errors_[0]), "ERR_TLS_HANDSHAKE_TIMEOUT") << client_errors_[0];
  // The peer sees the server's side end: EOF (after an alert, if any).
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
  char buf[256];
  ssize_t n;
  do {
    n = recv(raw, buf, sizeof(buf), MSG_DONTWAIT);
  } while (n > 0);
  EXPECT_EQ(n, 0) << "EOF, not a reset";
  close(raw);
}

TEST_F(ServerTest, MaxConnectionsClosesTheExcessWithoutClientError) {
  ServerOptions o = ServerFor();
  o.max_connections = 1;
  StartEcho(o);
  EXPECT_EQ(server_->max_connections(), 1);
  std::shared_ptr<TlsSocket> first = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  bool first_secure = false;
  first->handlers().on_secure_connect = [&] { first_secure = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return first_secure && server_->connections() == 1; }));
  std::shared_ptr<TlsSocket> second = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  absl::Status error;
  bool second_closed = false;
  second->handlers().on_error = [&](const absl::Status& e) { error = e; };
  second->handlers().on_close = [&](bool) { second_closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return second_closed; }));
  EXPECT_EQ(NodeCode(error), "ECONNRESET") << error;
  EXPECT_EQ(server_->refused(), 1u);
  EXPECT_EQ(server_->connections(), 1);
  EXPECT_TRUE(client_errors_.empty());
  EXPECT_TRUE(server_->set_max_connections(0).ok());
  EXPECT_EQ(server_->set_max_connections(-1).code(), absl::StatusCode::kInvalidArgument);
  first->End();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine

namespace tlsengine {
namespace epoll {
namespace {

TEST_F(ServerTest, ClientDestroyEndsTheServerSideAsTruncated) {
  std::vector<std::string> server_events;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    TlsSocket* raw = s.get();
    s->handlers().on_end = [&, raw] { server_events.push_back(raw->truncated() ? "end(truncated)" : "end"); };
    s->handlers().on_error = [&](const absl::Status& e) { server_events.push_back(NodeCode(e)); };
    s->handlers().on_close = [&](bool had_error) { server_events.push_back(had_error ? "close(error)" : "close"); };
  };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(server_->address()->port));
  bool secure = false, closed = false, had_error = true;
  c->handlers().on_secure_connect = [&] { secure = true; };
  c->handlers().on_close = [&](bool e) {
    closed = true;
    had_error = e;
  };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure && server_->connections() == 1; }));
  c->Destroy();
  EXPECT_FALSE(closed) << "'close' comes from the loop, not from inside Destroy()";
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed && server_->connections() == 0; }))
      << absl::StrJoin(server_events, ",");
  EXPECT_FALSE(had_error);
  EXPECT_EQ(server_events, (std::vector<std::string>{"end(truncated)", "close"}));
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine
