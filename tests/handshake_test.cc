// Engine pairs in memory: every protocol version, key type and chunk size.
#include <random>
#include <string>
#include <tuple>

#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::ServerOptions;

struct Param {
  std::string version;
  std::string identity;
  size_t chunk;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << p.version << "/" << p.identity << "/chunk " << (p.chunk == SIZE_MAX ? std::string("whole") : std::to_string(p.chunk));
}

std::string Name(const ::testing::TestParamInfo<Param>& info) {
  std::string v = info.param.version == "TLSv1.3" ? "Tls13" : "Tls12";
  std::string k = info.param.identity == "server-rsa" ? "Rsa" : "Ecdsa";
  std::string c = info.param.chunk == SIZE_MAX ? "WholeFlight" : "Chunk" + std::to_string(info.param.chunk);
  return v + k + c;
}

class HandshakeTest : public ::testing::TestWithParam<Param> {
 protected:
  EnginePair MakePair() {
    return EnginePair(ServerOptions(GetParam().identity, GetParam().version), ClientOptions());
  }
};

TEST_P(HandshakeTest, CompletesAndReportsWhatWasNegotiated) {
  EnginePair pair = MakePair();
  ASSERT_TRUE(pair.Handshake(GetParam().chunk).ok());
  for (TlsConnection* c : {&pair.client(), &pair.server()}) {
    EXPECT_TRUE(c->secure());
    EXPECT_TRUE(c->encrypted());
    EXPECT_EQ(c->protocol(), GetParam().version);
    ASSERT_TRUE(c->GetCipher().has_value());
    EXPECT_EQ(c->GetCipher()->version, GetParam().version);
    EXPECT_FALSE(c->is_session_reused());
  }
  EXPECT_TRUE(pair.client().authorized());
  EXPECT_EQ(pair.client().authorization_error(), "");
  EXPECT_FALSE(pair.server().authorized());  // Node: no requestCert, not authorized
  EXPECT_EQ(pair.server().servername(), "localhost");
  EXPECT_EQ(pair.client().servername(), "localhost");
  std::string cipher = pair.client().GetCipher()->name;
  if (GetParam().version == "TLSv1.2") {
    EXPECT_NE(cipher.find(GetParam().identity == "server-rsa" ? "ECDHE-RSA" : "ECDHE-ECDSA"), std::string::npos)
        << cipher;
    EXPECT_NE(pair.client().GetCipher()->standard_name.find("TLS_ECDHE_"), std::string::npos);
  } else {
    EXPECT_EQ(cipher.rfind("TLS_", 0), 0u) << cipher;
  }
  std::optional<CertificateInfo> peer = pair.client().GetPeerCertificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->subject.Get("CN"), "localhost");
  EXPECT_EQ(peer->issuer.Get("CN"), "Test Intermediate CA 1");
  EXPECT_EQ(peer->asn1_curve.empty(), GetParam().identity == "server-rsa");
  EXPECT_EQ(pair.server().GetCertificate()->fingerprint256, peer->fingerprint256);
  EXPECT_FALSE(pair.server().GetPeerCertificate().has_value());
  // Event order: handshake start, then secure; a client's session may come
  // before 'secure' (TLS 1.2) or after it (TLS 1.3 tickets), as in Node.
  std::vector<EventType> c;
  for (EventType e : pair.client_side().events) {
    if (e != EventType::kSession) c.push_back(e);
  }
  ASSERT_GE(c.size(), 2u);
  EXPECT_EQ(c[0], EventType::kHandshakeStart);
  EXPECT_EQ(c[1], EventType::kSecure);
  EXPECT_TRUE(pair.client_side().Saw(EventType::kSession));
}

TEST_P(HandshakeTest, MessagesArriveBothWays) {
  EnginePair pair = MakePair();
  ASSERT_TRUE(pair.Handshake(GetParam().chunk).ok());
  pair.SendAll(pair.client_side(), "hello from the client", GetParam().chunk);
  pair.SendAll(pair.server_side(), "hello from the server", GetParam().chunk);
  EXPECT_EQ(pair.server_side().received, "hello from the client");
  EXPECT_EQ(pair.client_side().received, "hello from the server");
}

TEST_P(HandshakeTest, DataWrittenBeforeTheHandshakeIsSentAfterIt) {
  EnginePair pair = MakePair();
  ASSERT_EQ(*pair.client().Write("early"), 5u);
  ASSERT_TRUE(pair.Handshake(GetParam().chunk).ok());
  pair.Pump(GetParam().chunk);
  EXPECT_EQ(pair.server_side().received, "early");
}

TEST_P(HandshakeTest, CleanCloseIsReportedAsPeerClosed) {
  EnginePair pair = MakePair();
  ASSERT_TRUE(pair.Handshake(GetParam().chunk).ok());
  EXPECT_TRUE(pair.client().Write("last words").ok());
  pair.client().End(pair.now(), /*wait_for_peer=*/true);
  pair.Pump(GetParam().chunk);
  EXPECT_EQ(pair.server_side().received, "last words");
  EXPECT_TRUE(pair.server_side().Saw(EventType::kPeerClosed));
  EXPECT_FALSE(pair.server_side().Saw(EventType::kTruncated));
  pair.server().End(pair.now());
  pair.Pump(GetParam().chunk);
  EXPECT_TRUE(pair.server_side().Saw(EventType::kClosed));
  EXPECT_TRUE(pair.client_side().Saw(EventType::kPeerClosed));
  EXPECT_TRUE(pair.client_side().Saw(EventType::kClosed));
  EXPECT_TRUE(pair.client().status().ok());
  EXPECT_TRUE(pair.server().status().ok());
  absl::StatusOr<size_t> late = pair.client().Write("x");
  EXPECT_EQ(NodeCode(late.status()), "ERR_STREAM_WRITE_AFTER_END");
}

TEST_P(HandshakeTest, TicketsAndDataInOneFlightAllArrive) {
  // Regression: the server's tickets (TLS 1.3) and its first data reach the
  // client in one piece; polling once must yield the data.
  EnginePair pair = MakePair();
  auto move = [](TlsConnection& from, TlsConnection& to) {
    for (auto out = from.Output(); !out.empty(); out = from.Output()) {
      absl::StatusOr<size_t> n = to.Feed(out[0]);
      ASSERT_TRUE(n.ok()) << n.status();
      ASSERT_GT(*n, 0u);
      ASSERT_TRUE(from.ConsumeOutput(*n).ok());
    }
  };
  auto& client = pair.client_side();
  auto& server = pair.server_side();
  auto drain = [&](testing::Side& side) {
    while (auto ev = side.conn->NextEvent(pair.now())) {
      if (ev->type == EventType::kData) side.received.append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
    }
  };
  drain(client);
  move(pair.client(), pair.server());
  drain(server);
  move(pair.server(), pair.client());
  drain(client);
  move(pair.client(), pair.server());
  drain(server);
  ASSERT_TRUE(pair.server().secure());
  EXPECT_TRUE(pair.server().Write("pong").ok());
  move(pair.server(), pair.client());
  drain(client);
  EXPECT_EQ(client.received, "pong");
}

std::vector<Param> AllParams() {
  std::vector<Param> out;
  for (const char* v : {"TLSv1.2", "TLSv1.3"}) {
    for (const char* id : {"server-rsa", "server-ecdsa"}) {
      for (size_t chunk : {size_t{1}, size_t{7}, size_t{16384}, SIZE_MAX}) out.push_back({v, id, chunk});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, HandshakeTest, ::testing::ValuesIn(AllParams()), Name);

TEST(TransportTest, EofWithoutCloseNotifyIsTruncationNotACleanClose) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client().Write("partial").ok());
  pair.Pump();
  pair.server().OnTransportEof();
  pair.Poll();
  EXPECT_EQ(pair.server_side().received, "partial");
  EXPECT_TRUE(pair.server_side().Saw(EventType::kTruncated));
  EXPECT_FALSE(pair.server_side().Saw(EventType::kPeerClosed));
  EXPECT_FALSE(pair.server_side().Saw(EventType::kError));
}

TEST(TransportTest, EofDuringTheHandshakeIsAnError) {
  EnginePair pair(ServerOptions(), ClientOptions());
  pair.Poll();  // the client writes its ClientHello
  pair.client().OnTransportEof();
  pair.Poll();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ECONNRESET");
  EXPECT_EQ(pair.client_side().error.message(),
            "Client network socket disconnected before secure TLS connection was established");
  pair.server().OnTransportEof();
  pair.Poll();
  EXPECT_EQ(NodeCode(pair.server_side().error), "ECONNRESET");
  EXPECT_EQ(pair.server_side().error.message(), "socket hang up");
}

TEST(TransportTest, HandshakeTimeoutFiresFromTheFakeClock) {
  EnginePair pair(ServerOptions(), ClientOptions());
  pair.Poll();
  EXPECT_EQ(pair.client().NextDeadline(), pair.now() + absl::Seconds(120));
  pair.Advance(absl::Seconds(119));
  pair.client().OnTimer(pair.now());
  pair.Poll();
  EXPECT_FALSE(pair.client_side().Saw(EventType::kError));
  pair.Advance(absl::Seconds(1));
  pair.client().OnTimer(pair.now());
  pair.Poll();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_TLS_HANDSHAKE_TIMEOUT");
  EXPECT_EQ(pair.client_side().error.message(), "TLS handshake timeout");
  EXPECT_EQ(pair.client_side().error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(pair.client().NextDeadline(), absl::InfiniteFuture());
}

TEST(TransportTest, NoTimeoutOnceSecure) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().NextDeadline(), absl::InfiniteFuture());
  EXPECT_EQ(pair.server().NextDeadline(), absl::InfiniteFuture());
}

TEST(TransportTest, CloseWaitsForThePeerWithinItsDeadline) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  pair.client().End(pair.now(), /*wait_for_peer=*/true);
  EXPECT_EQ(pair.client().NextDeadline(), pair.now() + absl::Seconds(5));
  pair.Advance(absl::Seconds(5));
  pair.client().OnTimer(pair.now());
  pair.Poll();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_TLS_CLOSE_TIMEOUT");
  // The close_notify is still there to be sent.
  EXPECT_GT(pair.client().OutputSize(), 0u);
}

// The wait bounds the peer's silence: data still arriving after our
// close_notify starts it again (Node keeps reading after end()).
TEST(TransportTest, DataFromThePeerRestartsTheCloseWait) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  pair.client().End(pair.now(), /*wait_for_peer=*/true);
  pair.Pump();
  for (int i = 0; i < 3; ++i) {
    pair.Advance(absl::Seconds(4));
    pair.SendAll(pair.server_side(), "still talking;");
    EXPECT_EQ(pair.client().NextDeadline(), pair.now() + absl::Seconds(5)) << i;
  }
  EXPECT_EQ(pair.client_side().received, "still talking;still talking;still talking;");
  EXPECT_TRUE(pair.client_side().error.ok()) << pair.client_side().error;
  pair.Advance(absl::Seconds(5));
  pair.client().OnTimer(pair.now());
  pair.Poll();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_TLS_CLOSE_TIMEOUT");
}

// Counts TLS records in a stretch of wire bytes (5-byte headers, RFC 8446 §5.1).
std::vector<size_t> RecordLengths(absl::Span<const uint8_t> wire) {
  std::vector<size_t> lengths;
  for (size_t at = 0; at + 5 <= wire.size();) {
    size_t len = (size_t{wire[at + 3]} << 8) | wire[at + 4];
    lengths.push_back(len);
    at += 5 + len;
  }
  return lengths;
}

TEST(WriteTest, SmallWritesAreCoalescedIntoFullRecords) {
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    EnginePair pair(ServerOptions("server-rsa", version), ClientOptions());
    ASSERT_TRUE(pair.Handshake().ok());
    ASSERT_TRUE(pair.client().ConsumeOutput(pair.client().OutputSize()).ok());
    for (int i = 0; i < 100; ++i) ASSERT_EQ(*pair.client().Write("0123456789"), 10u);
    auto out = pair.client().Output();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(RecordLengths(out[0]).size(), 1u) << version;  // 100 writes, one record
    // 40000 bytes make records of the maximal 16 KB plaintext, plus the rest.
    pair.Pump();
    std::string big(40000, 'b');
    ASSERT_EQ(*pair.client().Write(big), big.size());
    auto big_out = pair.client().Output();
    std::vector<size_t> lengths = RecordLengths(big_out[0]);
    ASSERT_EQ(lengths.size(), 3u) << version;
    EXPECT_GE(lengths[0], 16384u);
    EXPECT_EQ(lengths[0], lengths[1]);
    // Same per-record overhead: the last record holds the remaining 7232 bytes.
    EXPECT_EQ(lengths[2] + 16384 - lengths[0], 40000u - 2 * 16384);
    pair.Pump();
    EXPECT_EQ(pair.server_side().received.size(), 1000u + big.size());
  }
}

TEST(BulkTest, SixtyFourMegabytesWithRandomChunkingArriveIntact) {
  EnginePair pair(ServerOptions("server-ecdsa"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::mt19937 rng(12345);
  std::string payload(64 << 20, '\0');
  for (char& c : payload) c = static_cast<char>(rng());
  size_t sent = 0;
  std::string received;
  received.reserve(payload.size());
  while (sent < payload.size() || received.size() < payload.size()) {
    size_t want = std::uniform_int_distribution<size_t>(1, 70000)(rng);
    if (sent < payload.size()) {
      sent += *pair.client().Write(absl::string_view(payload).substr(sent, want));
    }
    // Move ciphertext in random pieces.
    for (auto out = pair.client().Output(); !out.empty(); out = pair.client().Output()) {
      size_t n = std::min(out[0].size(), std::uniform_int_distribution<size_t>(1, 40000)(rng));
      absl::StatusOr<size_t> fed = pair.server().Feed(out[0].subspan(0, n));
      ASSERT_TRUE(fed.ok()) << fed.status();
      ASSERT_TRUE(pair.client().ConsumeOutput(*fed).ok());
      while (auto ev = pair.server().NextEvent(pair.now())) {
        ASSERT_NE(ev->type, EventType::kError) << ev->status;
        if (ev->type == EventType::kData) received.append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
      }
    }
  }
  ASSERT_EQ(received.size(), payload.size());
  EXPECT_TRUE(received == payload);
}

}  // namespace
}  // namespace tlsengine
