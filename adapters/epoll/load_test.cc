// Load and faults: thousands of handshaked connections held and echoing,
// stalled handshakes timed out while others are served, resets and junk,
// a large echo checked by hash, several loops resuming each other's
// tickets; no fd left behind. The server runs on a LoopGroup (threads);
// the clients on a loop in the test thread.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/epoll/epoll_testlib.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/socket.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace epoll {
namespace {

using testing::ClientTo;
using testing::RunFor;
using testing::RunUntil;
using testing::ServerFor;

uint64_t Fnv1a(uint64_t h, absl::string_view data) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ull;

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::RaiseFdLimit(16384));
    fds_before_ = testing::CountOpenFds();
    loop_ = *Loop::Create();
  }
  void TearDown() override {
    if (server_ != nullptr) {
      std::atomic<bool> closed{false};
      ASSERT_TRUE(server_->Close([&] { closed = true; }).ok());
      server_->EndAll();
      // The clients' loop must run too, for their side of the close.
      EXPECT_TRUE(RunUntil(*loop_, [&] { return closed.load(); }, absl::Seconds(20)));
    }
    RunUntil(*loop_, [] { return false; }, absl::Milliseconds(50));
    if (group_ != nullptr) group_->Stop();
    server_.reset();
    group_.reset();
    loop_.reset();
    EXPECT_EQ(testing::CountOpenFds(), fds_before_) << "an fd was left behind";
  }

  void StartEchoServer(int loops, ServerOptions o) {
    group_ = *LoopGroup::Start(loops);
    ServerHandlers h;
    h.on_secure_connection = [this](std::shared_ptr<TlsSocket> s) {
      secure_.fetch_add(1);
      if (s->is_session_reused()) reused_.fetch_add(1);
      testing::EchoOn(s);
      s->handlers().on_error = [this](const absl::Status& e) {
        std::lock_guard<std::mutex> lock(mu_);
        socket_errors_.push_back(e);
      };
    };
    h.on_client_error = [this](const absl::Status& e, TlsSocket&) {
      std::lock_guard<std::mutex> lock(mu_);
      client_errors_.push_back(e);
    };
    server_ = *Server::Create(group_->loops(), std::move(o), h);
    ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
    port_ = server_->address()->port;
  }

  std::vector<absl::Status> ClientErrors() {
    std::lock_guard<std::mutex> lock(mu_);
    return client_errors_;
  }
  std::vector<absl::Status> SocketErrors() {
    std::lock_guard<std::mutex> lock(mu_);
    return socket_errors_;
  }

  int fds_before_ = 0;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<LoopGroup> group_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::atomic<int> secure_{0};
  std::atomic<int> reused_{0};
  std::mutex mu_;
  std::vector<absl::Status> client_errors_;  // guarded by mu_
  std::vector<absl::Status> socket_errors_;  // guarded by mu_: server sockets' on_error
};


TEST_F(LoadTest, HoldsTwoThousandHandshakedConnectionsAllStillEchoing) {
  constexpr int kConnections = 2000;
  constexpr int kInFlight = 100;  // handshakes at once (the listen backlog stays small)
  ServerOptions o = ServerFor("server-ecdsa");
  o.driver.linger_time = absl::Milliseconds(200);
  StartEchoServer(2, o);
  long rss_before = testing::ResidentKib();

  std::vector<std::shared_ptr<TlsSocket>> clients;
  int secure = 0, started = 0, errors = 0;
  std::vector<std::string> got(kConnections);
  auto start_one = [&] {
    int i = started++;
    TlsSocketOptions co = ClientTo(port_);
    co.tls.servername = "localhost";
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), co);
    c->handlers().on_secure_connect = [&] { ++secure; };
    c->handlers().on_data = [&got, i](absl::string_view d) { got[i].append(d.data(), d.size()); };
    c->handlers().on_error = [&](const absl::Status& e) {
      if (errors++ == 0) ADD_FAILURE() << e;
    };
    clients.push_back(c);
  };
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(RunUntil(*loop_,
                       [&] {
                         while (started < kConnections && started - secure < kInFlight) start_one();
                         return secure == kConnections || errors > 0;
                       },
                       absl::Seconds(90)));
  absl::Duration handshakes = absl::Now() - t0;
  ASSERT_EQ(errors, 0);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == kConnections; }));
  long rss_held = testing::ResidentKib();
  // Everybody echoes, all at once.
  for (int i = 0; i < kConnections; ++i) clients[i]->Write(absl::StrCat("ping ", i));
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    for (int i = 0; i < kConnections; ++i) {
      if (got[i].size() < absl::StrCat("ping ", i).size()) return false;
    }
    return true;
  }));
  for (int i = 0; i < kConnections; i += 97) EXPECT_EQ(got[i], absl::StrCat("ping ", i));
  // Both sides of each connection live in this process: per connection
  // that is a client and a server (engine + OpenSSL + adapter), each.
  std::printf("held %d connections: %s for the handshakes, %ld KiB resident for both ends (%.1f KiB per end)\n",
              kConnections, absl::FormatDuration(handshakes).c_str(), rss_held - rss_before,
              (rss_held - rss_before) / (2.0 * kConnections));
  int closed = 0;
  for (auto& c : clients) {
    c->handlers().on_close = [&](bool) { ++closed; };
    c->End();
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed == kConnections && server_->connections() == 0; },
                       absl::Seconds(30)));
  EXPECT_TRUE(ClientErrors().empty());
}

TEST_F(LoadTest, StalledHandshakesTimeOutWhileOthersAreServed) {
  constexpr int kStalled = 200;
  ServerOptions o = ServerFor("server-ecdsa");
  o.handshake_timeout = absl::Milliseconds(800);
  o.driver.linger_time = absl::Milliseconds(100);
  StartEchoServer(1, o);
  std::vector<int> stalled;
  for (int i = 0; i < kStalled; ++i) {
    int fd = tlsengine::testing::ConnectLoopback(port_);
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) {
      // Half of them send the start of a record and nothing more.
      const char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
      ASSERT_EQ(send(fd, partial, sizeof(partial), 0), static_cast<ssize_t>(sizeof(partial)));
    }
    stalled.push_back(fd);
  }
  // Meanwhile real clients get served, one after another.
  int served = 0;
  std::shared_ptr<TlsSocket> current;
  auto next = [&] {
    current = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
    current->handlers().on_secure_connect = [&] { current->End("x"); };
    current->handlers().on_close = [&](bool had_error) {
      EXPECT_FALSE(had_error);
      ++served;
      current = nullptr;
    };
  };
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(RunUntil(*loop_,
                       [&] {
                         if (current == nullptr && absl::Now() - t0 < absl::Milliseconds(600)) next();
                         return ClientErrors().size() == kStalled;
                       },
                       absl::Seconds(20)));
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(750));
  EXPECT_GT(served, 3) << "others are served while handshakes stall";
  for (const absl::Status& e : ClientErrors()) {
    EXPECT_EQ(NodeCode(e), "ERR_TLS_HANDSHAKE_TIMEOUT") << e;
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return current == nullptr; }));
  for (int fd : stalled) close(fd);
}

TEST_F(LoadTest, ResetsAndJunkAreClientErrorsAndTheServerCarriesOn) {
  ServerOptions o = ServerFor("server-ecdsa");
  o.driver.linger_time = absl::Milliseconds(100);
  StartEchoServer(2, o);
  // Junk: a megabyte that is not TLS.
  int junk = tlsengine::testing::ConnectLoopback(port_);
  std::string noise(1 << 20, 'x');
  send(junk, noise.data(), 4096, MSG_NOSIGNAL);
  // Reset mid-handshake: a partial ClientHello, then RST.
  int reset = tlsengine::testing::ConnectLoopback(port_);
  const char partial[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00};
  send(reset, partial, sizeof(partial), MSG_NOSIGNAL);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->accepted() == 2; }));
  RunUntil(*loop_, [] { return false; }, absl::Milliseconds(50));
  testing::ResetAndClose(reset);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ClientErrors().size() == 2; }));
  std::vector<absl::Status> errors = ClientErrors();
  bool saw_reset = false, saw_protocol = false;
  for (const absl::Status& e : errors) {
    saw_reset |= NodeCode(e) == "ECONNRESET";
    saw_protocol |= e.code() == absl::StatusCode::kAborted;
  }
  EXPECT_TRUE(saw_reset) << errors[0] << " / " << errors[1];
  EXPECT_TRUE(saw_protocol) << errors[0] << " / " << errors[1];
  // The junk sender got an alert and an orderly end, not a reset.
  char buf[4096];
  ssize_t n;
  absl::Time end = absl::Now() + absl::Seconds(5);
  while ((n = recv(junk, buf, sizeof(buf), MSG_DONTWAIT)) != 0 && absl::Now() < end) {
    if (n < 0) RunUntil(*loop_, [] { return false; }, absl::Milliseconds(10));
  }
  EXPECT_EQ(n, 0) << "an orderly end, not a reset";
  close(junk);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }))
      << server_->connections() << " still open after the junk and the reset";

  // And the server still serves.
  std::string got;
  bool closed = false;
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  c->handlers().on_secure_connect = [&] { c->End("still here"); };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(got, "still here");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));

  // A client that destroys its socket right after the handshake: the
  // server's side ends (as truncated) and closes, whichever loop serves it.
  // Four rounds: on both loops, destroying from inside 'secureConnect' and
  // from the test once it has seen it.
  for (int round = 0; round < 4; ++round) {
    std::shared_ptr<TlsSocket> d = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
    bool secure = false, d_closed = false;
    bool from_callback = round < 2;
    d->handlers().on_secure_connect = [&] {
      secure = true;
      if (from_callback) d->Destroy();
    };
    d->handlers().on_close = [&](bool) { d_closed = true; };
    ASSERT_TRUE(RunUntil(*loop_, [&] { return secure; })) << "round " << round;
    d->Destroy();
    ASSERT_TRUE(RunUntil(*loop_, [&] { return d_closed; })) << "round " << round;
    ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }))
        << "round " << round << ": " << server_->connections() << " still open after the client's Destroy()";
  }

  // A reset in the middle of a record after the handshake: the socket's
  // error (after 'secureConnection', so not a clientError), then close.
  int secure_before = secure_.load();
  size_t client_errors_before = ClientErrors().size();
  int raw = tlsengine::testing::ConnectLoopback(port_);
  ASSERT_GE(raw, 0);
  std::unique_ptr<TlsConnection> engine = testing::HandshakeOver(raw, absl::Seconds(10));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure_.load() == secure_before + 1; }));
  const char half_record[] = {0x17, 0x03, 0x03, 0x01, 0x00, 0x42, 0x42, 0x42};  // 256 announced, 3 sent
  ASSERT_EQ(send(raw, half_record, sizeof(half_record), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(half_record)));
  RunFor(*loop_, absl::Milliseconds(50));
  testing::ResetAndClose(raw);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !SocketErrors().empty() && server_->connections() == 0; }));
  EXPECT_EQ(NodeCode(SocketErrors()[0]), "ECONNRESET") << SocketErrors()[0];
  EXPECT_EQ(ClientErrors().size(), client_errors_before) << "errors after 'secure' are the socket's, not clientErrors";
}

TEST_F(LoadTest, LargeEchoWithRandomWriteSizesMatchesByHash) {
  // 1 GiB takes minutes under ASan on two shared cores; 64 MiB exercises
  // the same paths (backpressure both ways, drain, many records).
  constexpr size_t kTotal = 64u << 20;
  StartEchoServer(1, ServerFor("server-ecdsa"));
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  std::mt19937_64 rng(42);
  std::string block(256 * 1024, '\0');
  for (char& ch : block) ch = static_cast<char>(rng());
  size_t sent = 0, received = 0;
  uint64_t sent_hash = kFnvBasis, got_hash = kFnvBasis;
  bool closed = false;
  int drains = 0;
  std::function<void()> pump = [&] {
    while (sent < kTotal) {
      size_t n = std::min<size_t>(1 + rng() % 40000, kTotal - sent);
      size_t at = rng() % (block.size() - n + 1);
      absl::string_view piece(block.data() + at, n);
      sent_hash = Fnv1a(sent_hash, piece);
      sent += n;
      if (!c->Write(piece)) return;  // wait for 'drain'
    }
    c->End();
  };
  c->handlers().on_secure_connect = pump;
  c->handlers().on_drain = [&] {
    ++drains;
    pump();
  };
  c->handlers().on_data = [&](absl::string_view d) {
    got_hash = Fnv1a(got_hash, d);
    received += d.size();
  };
  c->handlers().on_error = [&](const absl::Status& e) { ADD_FAILURE() << e; };
  c->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }, absl::Seconds(120)));
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(got_hash, sent_hash);
  EXPECT_GT(drains, 0) << "backpressure was exercised";
}

TEST_F(LoadTest, TicketsIssuedOnOneLoopResumeOnAnother) {
  StartEchoServer(2, ServerFor("server-ecdsa", "TLSv1.3"));
  std::string session;
  for (int round = 0; round < 4; ++round) {  // round-robin: loops 0, 1, 0, 1
    TlsSocketOptions o = ClientTo(port_);
    o.tls.session = session;
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
    bool closed = false, got_session = false;
    bool reused = false;
    c->handlers().on_secure_connect = [&] { reused = c->is_session_reused(); };
    c->handlers().on_session = [&](const std::string& s) {
      session = s;
      if (!got_session) c->End();
      got_session = true;
    };
    c->handlers().on_close = [&](bool) { closed = true; };
    ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
    EXPECT_EQ(reused, round > 0) << "round " << round;
  }
  EXPECT_EQ(reused_.load(), 3);
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine
