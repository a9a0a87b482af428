// FdDriver over socketpair() and loopback TCP: reads until EAGAIN within a
// budget, one sendmsg for all output, EOF, a reset, and the careful close,
// bounded in time and bytes, whose alert reaches openssl s_client.
#include "adapters/fd/fd_driver.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/fd/resolve.h"
#include "adapters/fd/sys_status.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace fdio {
namespace {

// One end: an engine and its driver over a borrowed fd.
struct End {
  End(int fd, ConnectionOptions options) : fd(fd) {
    conn = *TlsConnection::Create(std::move(options), absl::Now());
    driver = std::make_unique<FdDriver>(fd, conn.get());
  }
  void Poll() {
    while (std::optional<Event> ev = conn->NextEvent(absl::Now())) {
      if (ev->type == EventType::kSecure) secure = true;
      if (ev->type == EventType::kData) data.append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
      if (ev->type == EventType::kTruncated) truncated = true;
      if (ev->type == EventType::kError) error = ev->status;
    }
  }
  int fd;
  std::unique_ptr<TlsConnection> conn;
  std::unique_ptr<FdDriver> driver;
  bool secure = false;
  bool truncated = false;
  std::string data;
  absl::Status error;
};

// Pumps both ends in this thread until both are secure and nothing is in flight.
bool Handshake(End& client, End& server) {
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while (absl::Now() < end) {
    for (End* e : {&client, &server}) {
      e->Poll();
      e->driver->WriteOutput();
      e->driver->ReadInput();
      e->Poll();
    }
    if (client.secure && server.secure && client.conn->OutputSize() == 0 && server.conn->OutputSize() == 0) {
      // The client's last flight (its Finished, a ticket's ack) may still be in the socket.
      for (int i = 0; i < 20; ++i) {
        for (End* e : {&client, &server}) {
          e->driver->ReadInput();
          e->Poll();
          e->driver->WriteOutput();
        }
      }
      return true;
    }
    WaitFd(client.fd, true, false, absl::Now() + absl::Milliseconds(1));
  }
  return false;
}

// Writes `text` on `e` as one record and sends it.
size_t SendRecord(End& e, const std::string& text) {
  EXPECT_EQ(*e.conn->Write(text), text.size());
  WriteResult w = e.driver->WriteOutput();
  EXPECT_TRUE(w.error.ok()) << w.error;
  EXPECT_FALSE(w.blocked);
  return w.bytes;
}

class SocketPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv_), 0);
    client_ = std::make_unique<End>(sv_[0], tlsengine::testing::ClientOptions());
    server_ = std::make_unique<End>(sv_[1], tlsengine::testing::ServerOptions());
    ASSERT_TRUE(Handshake(*client_, *server_));
  }
  void TearDown() override {
    for (int fd : sv_) {
      if (fd >= 0) close(fd);
    }
  }
  int sv_[2] = {-1, -1};
  std::unique_ptr<End> client_, server_;
};

TEST_F(SocketPairTest, OneCallReadsThreeRecordsUntilEagain) {
  size_t sent = SendRecord(*server_, "one") + SendRecord(*server_, "two") + SendRecord(*server_, "three");
  const uint64_t before = client_->driver->bytes_read();
  ReadResult r = client_->driver->ReadInput();
  EXPECT_EQ(r.stop, ReadStop::kWouldBlock);
  EXPECT_EQ(r.bytes, sent) << "all three records in one call";
  EXPECT_EQ(client_->driver->bytes_read() - before, sent);
  client_->Poll();
  EXPECT_EQ(client_->data, "onetwothree");
}

TEST_F(SocketPairTest, ReadStopsAtItsBudgetAndTheRestComesNext) {
  size_t sent = SendRecord(*server_, "one") + SendRecord(*server_, "two") + SendRecord(*server_, "three");
  ReadResult first = client_->driver->ReadInput(/*budget=*/10);
  EXPECT_EQ(first.stop, ReadStop::kBudget);
  EXPECT_EQ(first.bytes, 10u);
  ReadResult rest = client_->driver->ReadInput();
  EXPECT_EQ(rest.stop, ReadStop::kWouldBlock);
  EXPECT_EQ(first.bytes + rest.bytes, sent);
  client_->Poll();
  EXPECT_EQ(client_->data, "onetwothree");
}

TEST_F(SocketPairTest, ObserverSeesEveryByteRead) {
  size_t sent = SendRecord(*server_, "observed");
  size_t seen = 0;
  ReadResult r = client_->driver->ReadInput(kDefaultReadBudget, [&](absl::Span<const uint8_t> piece) { seen += piece.size(); });
  EXPECT_EQ(r.bytes, sent);
  EXPECT_EQ(seen, sent);
}

TEST_F(SocketPairTest, OneSendmsgCarriesAllTheOutput) {
  // Three full records' worth of plaintext: all of Output() goes in the
  // first (and only allowed) sendmsg.
  const std::string big(40000, 'x');
  ASSERT_EQ(*server_->conn->Write(big), big.size());
  size_t offered = 0;
  for (absl::Span<const uint8_t> span : server_->conn->Output()) offered += span.size();
  ASSERT_GT(offered, big.size());
  WriteResult w = server_->driver->WriteOutput(SIZE_MAX, /*max_writes=*/1);
  EXPECT_TRUE(w.error.ok()) << w.error;
  EXPECT_FALSE(w.blocked);
  EXPECT_EQ(w.bytes, offered);
  EXPECT_EQ(server_->conn->OutputSize(), 0u);
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while (client_->data.size() < big.size() && absl::Now() < end) {
    WaitFd(client_->fd, true, false, absl::Now() + absl::Milliseconds(10));
    client_->driver->ReadInput();
    client_->Poll();
  }
  EXPECT_EQ(client_->data, big);
}

TEST_F(SocketPairTest, WriteStopsAtItsByteBound) {
  const std::string big(40000, 'x');
  ASSERT_EQ(*server_->conn->Write(big), big.size());
  WriteResult w = server_->driver->WriteOutput(/*max_bytes=*/0);
  EXPECT_EQ(w.bytes, 0u);
  EXPECT_GT(server_->conn->OutputSize(), 0u);
}

TEST_F(SocketPairTest, EofCallsOnTransportEofOnce) {
  ASSERT_EQ(shutdown(sv_[1], SHUT_WR), 0);
  ReadResult r = client_->driver->ReadInput();
  EXPECT_EQ(r.stop, ReadStop::kEof);
  EXPECT_TRUE(r.error.ok());
  EXPECT_TRUE(client_->driver->eof());
  EXPECT_FALSE(client_->conn->interest().read) << "the engine was told";
  client_->Poll();
  EXPECT_TRUE(client_->truncated) << "EOF without close_notify";
  EXPECT_EQ(client_->driver->ReadInput().stop, ReadStop::kEof) << "no read after EOF";
}

TEST_F(SocketPairTest, WriteToAClosedPeerIsEpipe) {
  close(sv_[0]);
  sv_[0] = -1;
  ASSERT_EQ(*server_->conn->Write(std::string("late")), 4u);
  WriteResult w = server_->driver->WriteOutput();
  EXPECT_EQ(w.err, EPIPE);
  EXPECT_EQ(w.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NodeCode(w.error), "EPIPE");
  EXPECT_EQ(w.error.message(), "write EPIPE: Broken pipe");
}

// ---- Over loopback TCP: resets, and the close against stubborn peers.

// Writes to `e` until the socket takes nothing more, even after a pause.
void FillUntilStuck(End& e) {
  const std::string chunk(16384, 'z');
  const absl::Time end = absl::Now() + absl::Seconds(10);
  int stuck = 0;
  while (stuck < 3 && absl::Now() < end) {
    e.conn->Write(chunk).IgnoreError();  // takes what fits the write buffer
    WriteResult w = e.driver->WriteOutput();
    ASSERT_TRUE(w.error.ok()) << w.error;
    if (!w.blocked) continue;
    stuck = w.bytes == 0 ? stuck + 1 : 0;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

class TcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_fd_ = tlsengine::testing::ConnectLoopback(listener_.port());
    ASSERT_GE(peer_fd_, 0);
    fd_ = listener_.Accept(absl::Seconds(5));
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    for (int fd : {fd_, peer_fd_}) {
      if (fd >= 0) close(fd);
    }
  }
  // Both ends with engines, handshaken.
  void Secure() {
    client_ = std::make_unique<End>(peer_fd_, tlsengine::testing::ClientOptions());
    server_ = std::make_unique<End>(fd_, tlsengine::testing::ServerOptions());
    ASSERT_TRUE(Handshake(*client_, *server_));
  }
  tlsengine::testing::Listener listener_;
  int fd_ = -1, peer_fd_ = -1;
  std::unique_ptr<End> client_, server_;
};

TEST_F(TcpTest, PeerResetIsEconnreset) {
  Secure();
  linger l = {1, 0};
  ASSERT_EQ(setsockopt(peer_fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
  close(peer_fd_);
  peer_fd_ = -1;
  WaitFd(fd_, true, false, absl::Now() + absl::Seconds(2));
  ReadResult r = server_->driver->ReadInput();
  EXPECT_EQ(r.stop, ReadStop::kError);
  EXPECT_EQ(r.err, ECONNRESET);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NodeCode(r.error), "ECONNRESET");
  EXPECT_EQ(r.error.message(), "read ECONNRESET: Connection reset by peer");
}

TEST_F(TcpTest, CloseGivesUpOnAPeerThatNeverReads) {
  Secure();
  // The client stops reading: fill every buffer on the way (a fixed send
  // buffer: no autotuning that would make room later).
  int small = 16384;
  ASSERT_EQ(setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  FillUntilStuck(*server_);
  ASSERT_GT(server_->conn->OutputSize(), 0u) << "the socket should be full";
  server_->conn->End(absl::Now());
  CloseLimits limits;
  limits.flush_time = absl::Milliseconds(100);
  limits.linger_time = absl::Seconds(10);  // not reached: the flush gave up
  const absl::Time start = absl::Now();
  server_->driver->CloseBlocking(limits);
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(95));
  EXPECT_LT(took, absl::Milliseconds(600)) << took;
  EXPECT_GT(server_->conn->OutputSize(), 0u) << "the rest was never sent";
}

TEST_F(TcpTest, CloseIsBoundedByTheCallersLimit) {
  Secure();
  int small = 16384;
  ASSERT_EQ(setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  FillUntilStuck(*server_);
  ASSERT_GT(server_->conn->OutputSize(), 0u) << "the socket should be full";
  server_->conn->End(absl::Now());
  CloseLimits limits;  // 5 s and 2 s by default
  limits.limit = absl::Now() + absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  server_->driver->CloseBlocking(limits);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300));
}

TEST_F(TcpTest, LingerIsBoundedInTimeAgainstAPeerThatNeverCloses) {
  Secure();
  server_->conn->End(absl::Now());
  CloseLimits limits;
  limits.linger_time = absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  server_->driver->CloseBlocking(limits);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(server_->conn->OutputSize(), 0u) << "the close_notify went out";
  EXPECT_GE(took, absl::Milliseconds(95));
  EXPECT_LT(took, absl::Milliseconds(600)) << took;
  // The peer got the close_notify, then our FIN.
  client_->driver->ReadInput();
  client_->Poll();
  EXPECT_FALSE(client_->truncated);
  EXPECT_TRUE(client_->driver->eof());
}

TEST_F(TcpTest, LingerIsBoundedInBytesAgainstAPeerThatKeepsSending) {
  Secure();
  // The peer sends 1 MB of junk that nobody will decrypt.
  const std::string junk(1 << 20, 'j');
  size_t sent = 0;
  while (sent < junk.size()) {
    ssize_t n = send(peer_fd_, junk.data() + sent, junk.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ASSERT_GT(sent, 128u * 1024);
  server_->conn->End(absl::Now());
  CloseLimits limits;
  limits.linger_time = absl::Seconds(10);
  limits.linger_bytes = 64 * 1024;
  const uint64_t before = server_->driver->bytes_read();
  const absl::Time start = absl::Now();
  server_->driver->CloseBlocking(limits);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(server_->driver->bytes_read() - before, limits.linger_bytes);
}

// The careful close against a real peer: openssl s_client has sent a line
// the server never reads (so a plain close() would reset the connection,
// and the reset can overtake the alert); it still sees the close_notify.
TEST_F(TcpTest, OpensslSeesTheCloseNotifyDespiteUnreadInput) {
  close(peer_fd_);
  peer_fd_ = -1;
  close(fd_);
  fd_ = -1;
  tlsengine::testing::Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener_.port()), "-msg",
                          "-ign_eof", "-tls1_3"})
                  .ok());
  fd_ = listener_.Accept(absl::Seconds(10));
  ASSERT_GE(fd_, 0);
  End server(fd_, tlsengine::testing::ServerOptions());
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (!server.secure && absl::Now() < end) {
    WaitFd(fd_, true, false, absl::Now() + absl::Milliseconds(20));
    server.driver->ReadInput();
    server.Poll();
    server.driver->WriteOutput();
  }
  ASSERT_TRUE(server.secure);
  // Let the client's Finished and a line arrive, and leave the line unread.
  for (int i = 0; i < 10; ++i) {
    WaitFd(fd_, true, false, absl::Now() + absl::Milliseconds(10));
    server.driver->ReadInput();
    server.Poll();
    server.driver->WriteOutput();
  }
  ASSERT_TRUE(client.WriteStdin(std::string(60000, 'u') + "\n").ok());
  absl::SleepFor(absl::Milliseconds(200));  // the line is in our receive buffer now
  server.conn->End(absl::Now());
  CloseLimits limits;
  limits.linger_time = absl::Milliseconds(300);
  server.driver->CloseBlocking(limits);
  close(fd_);
  fd_ = -1;
  absl::StatusOr<std::string> alert = client.WaitForLine("close_notify", absl::Seconds(10));
  EXPECT_TRUE(alert.ok()) << alert.status();
  if (alert.ok()) EXPECT_TRUE(absl::StrContains(*alert, "<<<")) << *alert << " is the one received";
  client.Kill();
}

// ---- One errno mapping, one resolver.

TEST(SysErrorTest, CodesAndNodeFormat) {
  absl::Status refused = SysError("connect 127.0.0.1:443", ECONNREFUSED);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NodeCode(refused), "ECONNREFUSED");
  EXPECT_EQ(refused.message(), "connect 127.0.0.1:443 ECONNREFUSED: Connection refused");
  EXPECT_EQ(SysError("connect", ETIMEDOUT).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(SysError("accept", EMFILE).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SysError("read", EBADF).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SysError("read", EBADF, absl::StatusCode::kInternal).code(), absl::StatusCode::kInternal);
}

TEST(ResolveTest, LiteralsAndUnknownNames) {
  absl::StatusOr<std::vector<Address>> v4 = Resolve("127.0.0.1", 443);
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_EQ(v4->size(), 1u);
  EXPECT_EQ((*v4)[0].text, "127.0.0.1");
  EXPECT_EQ((*v4)[0].family(), AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>((*v4)[0].addr())->sin_port), 443);
  absl::StatusOr<std::vector<Address>> v6 = Resolve("::1", 0);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ((*v6)[0].text, "::1");
  ResolveOptions only6;
  only6.family = 6;
  EXPECT_FALSE(Resolve("127.0.0.1", 0, only6).ok());
  absl::StatusOr<std::vector<Address>> unknown = Resolve("no-such-host.invalid", 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(NodeCode(unknown.status()) == "ENOTFOUND" || NodeCode(unknown.status()) == "EAI_AGAIN")
      << unknown.status();
  EXPECT_TRUE(absl::StartsWith(unknown.status().message(), "getaddrinfo ")) << unknown.status();
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "no-such-host.invalid")) << unknown.status();
}

}  // namespace
}  // namespace fdio
}  // namespace tlsengine
