// Server and TlsSocket against each other over loopback: the Node surface
// (events, properties, error codes) and the driver's closing rules.
#include "adapters/epoll/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
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

TEST_F(ServerTest, AClientHelloTooLargeForTheInputBufferGetsAnAlertAndIsAClientError) {
  StartEcho();
  int raw = tlsengine::testing::ConnectLoopback(port_);
  ASSERT_GE(raw, 0);
  // The first record of a 100000-byte ClientHello: its header is enough.
  const std::string first = tlsengine::testing::SyntheticClientHello(100000).substr(0, 16389);
  ASSERT_EQ(send(raw, first.data(), first.size(), MSG_NOSIGNAL), static_cast<ssize_t>(first.size()));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !client_errors_.empty(); }));
  EXPECT_EQ(NodeCode(client_errors_[0]), "ERR_SSL_EXCESSIVE_MESSAGE_SIZE") << client_errors_[0];
  EXPECT_EQ(AlertOf(client_errors_[0]), 47);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
  // The peer gets the fatal illegal_parameter alert, then EOF.
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = recv(raw, buf, sizeof(buf), MSG_DONTWAIT)) > 0) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "EOF, not a reset";
  EXPECT_EQ(got, std::string("\x15\x03\x01\x00\x02\x02\x2f", 7));
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

// A connection that always has more to send (a producer writing again on
// every 'drain' to a peer that reads as fast as it can) must not keep the
// loop to itself: the driver yields after a bounded amount of work per
// wake, so another connection on the same loop is echoed meanwhile.
TEST_F(ServerTest, AFloodingConnectionDoesNotStarveAnotherOnTheSameLoop) {
  constexpr uint64_t kFloodBytes = 32 << 20;
  const std::string chunk(16 * 1024, 'f');
  uint64_t flooded = 0;
  bool flood_started = false, flood_done = false;
  int echoes = 0, echoes_when_flood_done = -1;
  // How much the flood produced between two echoes of the pinger, at most.
  uint64_t last_echo_at = 0, widest_gap = 0;
  std::shared_ptr<TlsSocket> flood;
  int accepted = 0;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    if (++accepted == 1) {  // the pinging client
      EchoOn(s);
      return;
    }
    flood = s;
    TlsSocket* raw = s.get();
    auto produce = [&, raw] {
      while (flooded < kFloodBytes) {
        flooded += chunk.size();
        if (!raw->Write(chunk)) return;  // on_drain comes back here
      }
      if (!flood_done) {
        flood_done = true;
        echoes_when_flood_done = echoes;
        raw->End();
      }
    };
    s->handlers().on_drain = produce;
    flood_started = true;
    produce();
  };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  port_ = server_->address()->port;

  // The pinging client: one byte out, its echo back, the next byte.
  std::shared_ptr<TlsSocket> pinger = ConnectSecure(ClientTo(port_));
  pinger->handlers().on_data = [&](absl::string_view d) {
    echoes += static_cast<int>(d.size());
    if (!flood_done) {
      widest_gap = std::max(widest_gap, flooded - last_echo_at);
      last_echo_at = flooded;
    }
    if (!flood_done) pinger->Write("p");
  };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return accepted == 1; }));

  // The flood's reader: a bare handshake, then a thread that reads and
  // drops the ciphertext as fast as the kernel hands it over. Its receive
  // buffer holds the whole flood (SO_RCVBUFFORCE where we may, else as
  // much as SO_RCVBUF allows), so the server's writes never find the
  // socket full: nothing but the driver's own bound makes it yield.
  int raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(raw, 0);
  int want = static_cast<int>(2 * kFloodBytes);
  if (setsockopt(raw, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0) {
    EXPECT_EQ(setsockopt(raw, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)), 0) << strerror(errno);
  }
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port_));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(raw, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0) << strerror(errno);
  ASSERT_NE(testing::HandshakeOver(raw, absl::Seconds(10), loop_.get()), nullptr);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return flood_started; }));
  std::atomic<uint64_t> drained{0};
  std::thread reader([raw, &drained] {
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = recv(raw, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      drained += static_cast<uint64_t>(n);
    }
  });
  pinger->Write("p");
  bool ran = RunUntil(*loop_, [&] { return flood_done; }, absl::Seconds(60));
  shutdown(raw, SHUT_RDWR);  // ends the reader whatever happened
  reader.join();
  close(raw);
  ASSERT_TRUE(ran) << "the flood did not finish; " << flooded << " bytes written";
  EXPECT_GT(drained.load(), 0u);
  // Each echo needs the loop's turn for both pinger sockets; the flood
  // gets at most a bounded share of each iteration (256 KB per Run, a
  // second Run from the posted task), so the pinger is never held back
  // for more than a few MB of it. Without the bound the flood runs until
  // the socket is full, which the receive buffer above never is.
  RecordProperty("echoes_during_flood", echoes_when_flood_done);
  RecordProperty("widest_gap_bytes", std::to_string(widest_gap));
  EXPECT_GE(echoes_when_flood_done, 8) << "the pinger was starved while " << kFloodBytes << " bytes were flooded";
  EXPECT_LE(widest_gap, uint64_t{4} << 20) << "the pinger waited while this much was flooded";
  pinger->End();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
}

TEST_F(ServerTest, ListenResolvesANameToItsFirstAddressAndAnUnknownNameIsENOTFOUND) {
  // Node listens on the first address dns.lookup gives: getaddrinfo's.
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  ASSERT_EQ(getaddrinfo("localhost", nullptr, &hints, &res), 0);
  char first[INET6_ADDRSTRLEN] = {};
  const void* where = res->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr);
  inet_ntop(res->ai_family, where, first, sizeof(first));
  freeaddrinfo(res);

  StartEcho(ServerFor(), "localhost");
  absl::StatusOr<SocketAddress> addr = server_->address();
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->address, first);
  TlsSocketOptions o = ClientTo(port_);
  o.host = addr->address;
  std::shared_ptr<TlsSocket> c = ConnectSecure(o);
  std::string got;
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->End("named");
  testing::Ending ending;
  testing::RecordEnding(*c, &ending);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  EXPECT_EQ(got, "named");

  std::unique_ptr<Server> other = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  absl::Status unknown = other->Listen(0, "no-such-host.invalid");  // RFC 6761: never resolves
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnavailable) << unknown;
  EXPECT_TRUE(NodeCode(unknown) == "ENOTFOUND" || NodeCode(unknown) == "EAI_AGAIN") << unknown;
  EXPECT_TRUE(absl::StrContains(unknown.message(), "no-such-host.invalid")) << unknown;
  EXPECT_FALSE(other->listening());
  EXPECT_EQ(other->Listen(70000, "localhost").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, AcceptOutOfDescriptorsIsAnEmfileErrorTheBacklogIsRefusedAndOpenConnectionsCarryOn) {
  std::vector<absl::Status> errors;
  handlers_.on_error = [&](const absl::Status& e) { errors.push_back(e); };
  StartEcho();
  std::shared_ptr<TlsSocket> open = ConnectSecure(ClientTo(port_));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 1; }));

  // Lower the descriptor limit, take every descriptor under it, then give
  // one back: the next client's socket takes it, and the server's accept
  // finds none (EMFILE).
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) highest = std::max(highest, atoi(e->d_name));
    closedir(d);
  }
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 16);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0) << strerror(errno);
  std::vector<int> fillers;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
  int exhausted = errno;
  ASSERT_FALSE(fillers.empty());
  close(fillers.back());
  fillers.pop_back();
  absl::StatusOr<std::shared_ptr<TlsSocket>> refused = TlsSocket::Connect(loop_.get(), ClientTo(port_));
  testing::Ending ending;
  if (refused.ok()) testing::RecordEnding(**refused, &ending);
  bool ended = refused.ok() && RunUntil(*loop_, [&] { return ending.closed && !errors.empty(); });
  bool echoed = Echoes(open, "the open connection carries on");
  for (int fd : fillers) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);  // restored before anything can fail below
  EXPECT_EQ(exhausted, EMFILE);
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_TRUE(ended) << "the client in the backlog was not refused, or no 'error' came";
  EXPECT_TRUE(echoed);

  EXPECT_EQ(NodeCode(errors[0]), "EMFILE") << errors[0];
  EXPECT_EQ(errors[0].code(), absl::StatusCode::kResourceExhausted) << errors[0];
  EXPECT_EQ(errors[0].message(), "accept EMFILE: Too many open files");
  EXPECT_TRUE(ending.had_error) << "closed at accept by the reserve-descriptor trick";
  EXPECT_GE(server_->refused(), 1u);
  EXPECT_TRUE(client_errors_.empty()) << "never a connection: no clientError";

  // Accepting resumes after the pause: a new client is served.
  std::shared_ptr<TlsSocket> later = ConnectSecure(ClientTo(port_));
  EXPECT_TRUE(Echoes(later, "accepting again"));
  for (const absl::Status& e : errors) EXPECT_EQ(NodeCode(e), "EMFILE") << e;
  open->End();
  later->End();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
}

// The epoll instances of this process, by descriptor.
std::set<int> EpollFds() {
  std::set<int> out;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      char target[64] = {};
      std::string link = absl::StrCat("/proc/self/fd/", e->d_name);
      if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
          absl::string_view(target) == "anon_inode:[eventpoll]") {
        out.insert(atoi(e->d_name));
      }
    }
    closedir(d);
  }
  return out;
}

TEST(LoopGroupTest, StopReturnsTheErrorALoopsRunEndedWith) {
  std::set<int> before = EpollFds();
  std::unique_ptr<LoopGroup> group = *LoopGroup::Start(1);
  std::vector<int> added;
  for (int fd : EpollFds()) {
    if (before.count(fd) == 0) added.push_back(fd);
  }
  ASSERT_EQ(added.size(), 1u) << "the group's loop has one epoll instance";
  EXPECT_TRUE(group->status().ok());
  // The loop's epoll descriptor now names /dev/null: the wait in progress
  // (on the instance it still holds) is woken by a post, and the next
  // epoll_wait fails with EINVAL, ending that loop's Run().
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(dup2(null, added[0]), added[0]);
  close(null);
  group->loops()[0]->Post([] {});
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (group->status().ok() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(1));
  absl::Status stopped = group->Stop();
  EXPECT_EQ(NodeCode(stopped), "EINVAL") << stopped;
  EXPECT_TRUE(absl::StrContains(stopped.message(), "epoll_wait")) << stopped;
  EXPECT_EQ(group->status(), stopped) << "the first error stays";
  EXPECT_EQ(group->Stop(), stopped) << "Stop() is idempotent";
}

TEST(LoopGroupTest, StopReturnsOkWhenEveryLoopRanUntilStopped) {
  std::unique_ptr<LoopGroup> group = *LoopGroup::Start(2);
  bool ran = false;
  group->RunOn(1, [&] { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(group->Stop().ok());
}

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
