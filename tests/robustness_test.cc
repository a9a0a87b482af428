// Bad input from the network: garbage, oversized and corrupted records, and
// floods. Each ends in an error event with a code and, where TLS allows, an
// alert flushed to the peer; nothing crashes and memory stays bounded.
#include <malloc.h>
#include <openssl/ssl.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/internal/connection_impl.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::ServerOptions;
using testing::SyntheticClientHello;
using testing::TestNow;
using Impl = TlsConnection::Impl;

std::unique_ptr<TlsConnection> NewConnection(ConnectionOptions o) {
  return *TlsConnection::Create(std::move(o), TestNow());
}

// Feeds `bytes` and polls; returns the error event's status (OK if none).
absl::Status FeedAndPoll(TlsConnection& conn, absl::string_view bytes) {
  absl::Status error;
  size_t fed = 0;
  while (fed < bytes.size()) {
    absl::StatusOr<size_t> n = conn.Feed(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()) + fed,
                                                             bytes.size() - fed));
    if (!n.ok() || *n == 0) break;
    fed += *n;
    while (auto ev = conn.NextEvent(TestNow())) {
      if (ev->type == EventType::kError) error = ev->status;
    }
  }
  return error;
}

void ExpectDeadAfterError(TlsConnection& conn) {
  EXPECT_TRUE(conn.finished());
  EXPECT_FALSE(conn.NextEvent(TestNow()).has_value());
  EXPECT_TRUE(conn.InputSpace().empty());
  EXPECT_FALSE(conn.Write("more").ok());
  EXPECT_EQ(NodeCode(conn.Write("more").status()), NodeCode(conn.status()));
}

TEST(RobustnessTest, PlainHttpToATlsServer) {
  auto server = NewConnection(ServerOptions());
  absl::Status s = FeedAndPoll(*server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(NodeCode(s), "ERR_SSL_HTTP_REQUEST");
  ExpectDeadAfterError(*server);
}

TEST(RobustnessTest, WrongRecordVersion) {
  auto server = NewConnection(ServerOptions());
  absl::Status s = FeedAndPoll(*server, std::string("\x16\x09\x09\x00\x05hello", 10));
  EXPECT_EQ(NodeCode(s), "ERR_SSL_WRONG_VERSION_NUMBER");
  ExpectDeadAfterError(*server);
}

TEST(RobustnessTest, OversizedRecordIsRefusedWithRecordOverflow) {
  auto server = NewConnection(ServerOptions());
  std::string record("\x16\x03\x01\xff\xff", 5);
  absl::Status s = FeedAndPoll(*server, record + std::string(100, 'A'));
  EXPECT_EQ(NodeCode(s), "ERR_SSL_PACKET_LENGTH_TOO_LONG");
  EXPECT_EQ(AlertOf(s), 22);  // record_overflow
  // The alert is in the output, to be sent: 21 = alert record.
  auto out = server->Output();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0][0], 21);
  ExpectDeadAfterError(*server);
}

TEST(RobustnessTest, GarbageHandshakeMessageGetsADecodeErrorAlert) {
  auto server = NewConnection(ServerOptions());
  // A handshake record holding a ClientHello whose body is nonsense.
  std::string body("\x01\x00\x00\x08" "\x03\x03garbag", 12);
  std::string record = std::string("\x16\x03\x01\x00", 4) + static_cast<char>(body.size()) + body;
  absl::Status s = FeedAndPoll(*server, record);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(NodeCode(s).empty());
  EXPECT_TRUE(AlertOf(s).has_value());
  EXPECT_FALSE(server->Output().empty());
}

class CorruptionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorruptionTest, AFlippedBitInApplicationDataIsABadRecordMac) {
  EnginePair pair(ServerOptions("server-rsa", GetParam()), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client().Write("secret message").ok());
  auto out = pair.client().Output();
  ASSERT_FALSE(out.empty());
  std::string wire(reinterpret_cast<const char*>(out[0].data()), out[0].size());
  ASSERT_TRUE(pair.client().ConsumeOutput(wire.size()).ok());
  wire[wire.size() - 3] ^= 0x01;
  absl::Status s = FeedAndPoll(pair.server(), wire);
  EXPECT_EQ(NodeCode(s), "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC");
  EXPECT_EQ(AlertOf(s), 20);  // bad_record_mac
  EXPECT_EQ(pair.server_side().received, "");
  // The alert reaches the client, which reports it.
  pair.Pump();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC");
  EXPECT_EQ(pair.client_side().error.code(), absl::StatusCode::kAborted);
}

INSTANTIATE_TEST_SUITE_P(Versions, CorruptionTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

TEST(RobustnessTest, RandomBytesNeverCrashEitherRole) {
  std::mt19937 rng(7);
  ConnectionOptions server_opts = ServerOptions();
  ConnectionOptions client_opts = ClientOptions();
  for (int i = 0; i < 500; ++i) {
    std::string junk(std::uniform_int_distribution<size_t>(1, 3000)(rng), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    // Half the time, make it look like a TLS record so it goes deeper.
    if (i % 2 == 0 && junk.size() > 5) {
      junk[0] = "\x14\x15\x16\x17"[rng() % 4];
      junk[1] = 3;
      junk[2] = static_cast<char>(rng() % 5);
    }
    auto conn = NewConnection(i % 3 == 0 ? client_opts : server_opts);
    conn->NextEvent(TestNow());
    absl::Status s = FeedAndPoll(*conn, junk);
    conn->OnTransportEof();
    while (auto ev = conn->NextEvent(TestNow())) {
      if (ev->type == EventType::kError) s = ev->status;
    }
    EXPECT_FALSE(s.ok()) << i;
    EXPECT_FALSE(NodeCode(s).empty()) << s;
    EXPECT_FALSE(conn->secure());
  }
}

TEST(RobustnessTest, InputIsBoundedByMaxInputBuffer) {
  ConnectionOptions o = ServerOptions();
  o.max_input_buffer = 20000;
  auto server = NewConnection(o);
  // A flood, unpolled: taken a record's worth at a time up to the bound.
  std::string flood(100000, 'x');
  size_t taken = 0;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<size_t> n =
        server->Feed(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(flood.data()), flood.size()));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_LE(*n, 18437u);
    taken += *n;
  }
  EXPECT_EQ(taken, 20000u);
  EXPECT_TRUE(server->InputSpace().empty());
  EXPECT_FALSE(server->interest().read);
  EXPECT_EQ(*server->Feed(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(flood.data()), 10)), 0u);
}

TEST(RobustnessTest, CommitMoreThanReservedIsRefused) {
  auto server = NewConnection(ServerOptions());
  absl::Status s = server->CommitInput(server->InputSpace().size() + 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(s), "ERR_INVALID_ARG_VALUE");
}

TEST(RobustnessTest, BadLimitsAreRefusedAtCreation) {
  ConnectionOptions o = ServerOptions();
  o.max_input_buffer = 1000;
  absl::StatusOr<std::unique_ptr<TlsConnection>> c = TlsConnection::Create(o, TestNow());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("max_input_buffer: must be at least 18437 bytes"), std::string::npos);
  o = ServerOptions();
  o.secure_context = nullptr;
  EXPECT_EQ(NodeCode(TlsConnection::Create(o, TestNow()).status()), "ERR_INVALID_ARG_VALUE");
  o = ServerOptions();
  o.handshake_timeout = absl::ZeroDuration();
  EXPECT_EQ(NodeCode(TlsConnection::Create(o, TestNow()).status()), "ERR_INVALID_ARG_VALUE");
  ConnectionOptions c2 = ClientOptions();
  c2.servername = std::string(300, 'a');
  EXPECT_EQ(NodeCode(TlsConnection::Create(c2, TestNow()).status()), "ERR_INVALID_ARG_VALUE");
}

TEST(RobustnessTest, WritesAndOutputAreBounded) {
  ConnectionOptions so = ServerOptions();
  so.max_write_buffer = 100000;
  so.max_output_buffer = 40000;
  EnginePair pair(so, ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::string big(1 << 20, 'z');
  EXPECT_EQ(*pair.server().Write(big), 100000u);
  EXPECT_EQ(*pair.server().Write(big), 0u);  // full: backpressure, not an error
  pair.server().Output();
  // Output stops growing once past the limit (plus at most one record).
  EXPECT_LE(pair.server().OutputSize(), 40000u + 16384 + 256);
  pair.Pump();
  EXPECT_GT(pair.client_side().received.size(), 0u);
  pair.Pump();
  EXPECT_EQ(pair.client_side().received.size(), 100000u);
}

// ---- What a connection holds before its handshake gets going ----

// Heap bytes in use (glibc's count, this thread's arena and mmapped
// chunks); nullopt when malloc keeps no such count (the sanitizers replace
// it), checked by watching a 64 KB allocation.
std::optional<size_t> HeapInUse() {
  auto now = [] {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  const size_t before = now();
  std::vector<char> probe(64 * 1024, 1);
  if (now() < before + probe.size()) return std::nullopt;
  probe.clear();
  probe.shrink_to_fit();
  return now();
}

// Feeds `bytes` in pieces of `piece` bytes, polling after each, as reads
// from a socket would; returns the error event's status (OK if none).
absl::Status FeedInPieces(TlsConnection& conn, absl::string_view bytes, size_t piece) {
  absl::Status error;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    absl::Status s = FeedAndPoll(conn, bytes.substr(at, piece));
    if (error.ok()) error = s;
  }
  return error;
}

TEST(FirstFlightTest, AServerStartsOpenSslOnlyOnceAWholeClientHelloHasArrived) {
  EnginePair pair(ServerOptions(), ClientOptions());
  TlsConnection& server = pair.server();
  // The contract before any byte: the handshake starts (and its timeout
  // counts) at the first poll; the server wants input.
  std::optional<Event> start = server.NextEvent(TestNow());
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->type, EventType::kHandshakeStart);
  EXPECT_FALSE(server.NextEvent(TestNow()).has_value());
  Interest want = server.interest();
  EXPECT_TRUE(want.read);
  EXPECT_FALSE(want.write);
  EXPECT_EQ(want.deadline, TestNow() + absl::Seconds(120));
  EXPECT_EQ(server.NextDeadline(), TestNow() + absl::Seconds(120));
  // ... and what it answers about itself meanwhile.
  EXPECT_EQ(server.servername(), "");
  EXPECT_EQ(server.alpn_protocol(), "");
  EXPECT_FALSE(server.GetCipher().has_value());
  EXPECT_FALSE(server.GetPeerCertificate().has_value());
  EXPECT_TRUE(server.GetCertificate().has_value()) << "the certificate it will present";
  EXPECT_EQ(server.GetSession(), "");
  EXPECT_FALSE(server.is_session_reused());
  EXPECT_TRUE(server.SetMaxSendFragment(1024));
  // It holds no OpenSSL state and no buffer.
  EXPECT_EQ(Impl::Of(server).ssl(), nullptr);
  EXPECT_EQ(Impl::Of(server).input().capacity(), 0u);

  // The client's ClientHello, all but its last byte, in pieces.
  pair.Poll();
  std::string hello;
  for (auto out = pair.client().Output(); !out.empty(); out = pair.client().Output()) {
    hello.append(reinterpret_cast<const char*>(out[0].data()), out[0].size());
    ASSERT_TRUE(pair.client().ConsumeOutput(out[0].size()).ok());
  }
  ASSERT_GT(hello.size(), 100u);
  ASSERT_TRUE(FeedInPieces(server, hello.substr(0, hello.size() - 1), 60).ok());
  EXPECT_EQ(Impl::Of(server).ssl(), nullptr) << "no SSL for a partial ClientHello";
  EXPECT_EQ(Impl::Of(server).input().capacity(), hello.size() - 1) << "a small partial ClientHello, at its size";
  EXPECT_EQ(server.OutputSize(), 0u);

  // The last byte: OpenSSL starts and answers with the server's flight.
  ASSERT_TRUE(FeedAndPoll(server, hello.substr(hello.size() - 1)).ok());
  EXPECT_NE(Impl::Of(server).ssl(), nullptr);
  EXPECT_GT(server.OutputSize(), 0u);
  EXPECT_EQ(Impl::Of(server).input().capacity(), 0u) << "OpenSSL took it all";
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(server.secure());
  pair.SendAll(pair.client_side(), "hello");
  EXPECT_EQ(pair.server_side().received, "hello");
}

TEST(FirstFlightTest, AFreshServerCostsAFewKilobytesOfHeapUntilItsFirstBytes) {
  ConnectionOptions options = ServerOptions();  // its context is shared, not the connection's
  std::optional<size_t> before = HeapInUse();
  if (!before) GTEST_SKIP() << "malloc keeps no statistics here (a sanitizer build)";
  std::unique_ptr<TlsConnection> server = NewConnection(options);
  while (server->NextEvent(TestNow())) {
  }
  std::optional<size_t> after = HeapInUse();
  ASSERT_TRUE(after.has_value());
  std::printf("a server engine waiting for its first bytes: %zu bytes of heap\n", *after - *before);
  // OpenSSL's SSL with its handshake and record buffers was about 70 KB.
  EXPECT_LT(*after - *before, 8u * 1024);
}

TEST(FirstFlightTest, AStalledLargeClientHelloIsHeldWithinTheInputBoundWithoutOpenSsl) {
  // 60000 bytes that fit the default 64 KiB input buffer, but the last.
  const std::string wire = SyntheticClientHello(60000);
  const absl::string_view stalled = absl::string_view(wire).substr(0, wire.size() - 1);
  ConnectionOptions options = ServerOptions();
  std::optional<size_t> before = HeapInUse();
  std::unique_ptr<TlsConnection> server = NewConnection(options);
  ASSERT_TRUE(FeedInPieces(*server, stalled, 16 * 1024).ok());
  EXPECT_EQ(Impl::Of(*server).ssl(), nullptr);
  EXPECT_LE(Impl::Of(*server).input().capacity(), options.max_input_buffer);
  EXPECT_TRUE(server->interest().read);
  if (before) {
    std::optional<size_t> after = HeapInUse();
    ASSERT_TRUE(after.has_value());
    std::printf("a ClientHello stalled %zu bytes in: %zu bytes of heap\n", stalled.size(), *after - *before);
    // Before: OpenSSL's message buffer grown to 4/3 of the length, its
    // record buffers, the SSL: about 130 KB.
    EXPECT_LT(*after - *before, options.max_input_buffer + 4 * 1024);
  }
  // The last byte starts OpenSSL, which judges the ClientHello (it offers
  // TLS 1.2 with a TLS 1.3 suite only: no shared cipher).
  absl::Status s = FeedAndPoll(*server, wire.substr(wire.size() - 1));
  EXPECT_NE(Impl::Of(*server).ssl(), nullptr);
  EXPECT_EQ(NodeCode(s), "ERR_SSL_NO_SHARED_CIPHER") << s;
}

TEST(FirstFlightTest, AClientHelloLargerThanTheInputBufferIsRefusedWithAnAlert) {
  // Its header says 100000 bytes: refused on its first record, before
  // the rest arrives.
  const std::string wire = SyntheticClientHello(100000);
  std::unique_ptr<TlsConnection> server = NewConnection(ServerOptions());
  absl::Status s = FeedAndPoll(*server, wire.substr(0, 16389));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(NodeCode(s), "ERR_SSL_EXCESSIVE_MESSAGE_SIZE") << s;
  EXPECT_EQ(AlertOf(s), SSL_AD_ILLEGAL_PARAMETER);
  EXPECT_EQ(Impl::Of(*server).ssl(), nullptr);
  // The fatal alert goes to the peer, in a plaintext record.
  auto out = server->Output();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out[0].data()), out[0].size()),
            std::string("\x15\x03\x01\x00\x02\x02\x2f", 7));
  ExpectDeadAfterError(*server);

  // With room for it, the same ClientHello waits for its last byte.
  ConnectionOptions roomy = ServerOptions();
  roomy.max_input_buffer = 128 * 1024;
  std::unique_ptr<TlsConnection> patient = NewConnection(roomy);
  EXPECT_TRUE(FeedInPieces(*patient, absl::string_view(wire).substr(0, wire.size() - 1), 16 * 1024).ok());
  EXPECT_FALSE(patient->finished());
  EXPECT_EQ(Impl::Of(*patient).input().size(), wire.size() - 1);
}

TEST(FirstFlightTest, OpenSslsRecordBuffersAreFreedWhileTheHandshakeWaitsForThePeer) {
  if (!HeapInUse()) GTEST_SKIP() << "malloc keeps no statistics here (a sanitizer build)";
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.3"), ClientOptions());
  // What SSL_free_buffers would still free now, on each side: nothing
  // when the engine freed OpenSSL's record buffers (about 34 KB) itself.
  auto still_held = [](TlsConnection& conn) {
    size_t before = *HeapInUse();
    EXPECT_EQ(SSL_free_buffers(Impl::Of(conn).ssl()), 1);
    return before - *HeapInUse();
  };
  pair.Poll();  // the client's ClientHello is out; it waits for the server
  EXPECT_LT(still_held(pair.client()), 1024u) << "client waiting for the ServerHello";
  pair.Transfer(pair.client_side(), pair.server_side());  // the server answers, then waits for Finished
  EXPECT_GT(pair.server().OutputSize(), 0u);
  EXPECT_LT(still_held(pair.server()), 1024u) << "server waiting for the client's Finished";
  ASSERT_TRUE(pair.Handshake().ok());
  pair.SendAll(pair.client_side(), "after");
  EXPECT_EQ(pair.server_side().received, "after");
}

TEST(RobustnessTest, OneConnectionsFailureDoesNotTouchAnother) {
  EnginePair good(ServerOptions(), ClientOptions());
  auto bad = NewConnection(ServerOptions());  // shares nothing but the code
  ASSERT_FALSE(FeedAndPoll(*bad, "garbage garbage garbage").ok());
  ASSERT_TRUE(good.Handshake().ok());
  good.SendAll(good.client_side(), "still fine");
  EXPECT_EQ(good.server_side().received, "still fine");
}

}  // namespace
}  // namespace tlsengine

