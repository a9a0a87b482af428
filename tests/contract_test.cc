// The engine contract that adapters stand on, and the limits that keep a
// hostile peer from growing it: input reservations, interest(), kDrain,
// ConsumeOutput's check, End() and Destroy(), writes during renegotiation,
// renegotiation deadlines and windows, and the caps on peer-triggered work
// (key updates, tickets, new-session acknowledgements). Engines against
// engines in memory, and against a raw OpenSSL server for the ticket flood.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::ReadTestFile;
using testing::ServerOptions;
using testing::Side;
using testing::TestNow;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Takes everything `conn` has to send, as one string.
std::string TakeOutput(TlsConnection& conn) {
  std::string wire;
  for (auto out = conn.Output(); !out.empty(); out = conn.Output()) {
    wire.append(reinterpret_cast<const char*>(out[0].data()), out[0].size());
    EXPECT_TRUE(conn.ConsumeOutput(out[0].size()).ok());
  }
  return wire;
}

// Polls `conn`, appending data to *received; returns the first error.
absl::Status PollAll(TlsConnection& conn, std::string* received, int* events = nullptr) {
  absl::Status error;
  while (auto ev = conn.NextEvent(TestNow())) {
    if (events != nullptr) ++*events;
    if (ev->type == EventType::kData && received != nullptr) {
      received->append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
    }
    if (ev->type == EventType::kError && error.ok()) error = ev->status;
  }
  return error;
}

// ---- Input reservations (a read outstanding while the engine is polled) ----

TEST(ReservationTest, StaysValidWhileTheEngineConsumesEarlierInput) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().Write("first record").ok());
  std::string first = TakeOutput(pair.client());
  ASSERT_TRUE(pair.client().Write("second record").ok());
  std::string second = TakeOutput(pair.client());
  // The first record arrives; a read for more is posted before polling.
  absl::StatusOr<size_t> fed = pair.server().Feed(Bytes(first));
  ASSERT_TRUE(fed.ok() && *fed == first.size());
  absl::Span<uint8_t> space = pair.server().InputSpace();
  ASSERT_GE(space.size(), second.size());
  std::string received;
  ASSERT_TRUE(PollAll(pair.server(), &received).ok());  // consumes the first record
  EXPECT_EQ(received, "first record");
  // The same reservation is handed out again until it is committed.
  EXPECT_EQ(pair.server().InputSpace().data(), space.data());
  std::memcpy(space.data(), second.data(), second.size());
  ASSERT_TRUE(pair.server().CommitInput(second.size()).ok());
  ASSERT_TRUE(PollAll(pair.server(), &received).ok());
  EXPECT_EQ(received, "first recordsecond record");
}

TEST(ReservationTest, CommitWithoutAReservationIsAnError) {
  EnginePair pair(ServerOptions(), ClientOptions());
  absl::Status s = pair.server().CommitInput(10);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodeCode(s), "ERR_TLS_INVALID_STATE");
  // Committing zero cancels a reservation; then there is none to commit.
  ASSERT_FALSE(pair.server().InputSpace().empty());
  ASSERT_TRUE(pair.server().CommitInput(0).ok());
  EXPECT_EQ(NodeCode(pair.server().CommitInput(1)), "ERR_TLS_INVALID_STATE");
  // More than reserved is refused, and nothing is taken.
  absl::Span<uint8_t> space = pair.server().InputSpace();
  EXPECT_EQ(NodeCode(pair.server().CommitInput(space.size() + 1)), "ERR_INVALID_ARG_VALUE");
  ASSERT_TRUE(pair.server().CommitInput(0).ok());
  ASSERT_TRUE(pair.Handshake().ok());
}

TEST(ReservationTest, SurvivesTheConnectionFailingAndBeingDestroyed) {
  for (bool destroy : {false, true}) {
    EnginePair pair(ServerOptions(), ClientOptions());
    std::string ignored;
    ASSERT_TRUE(PollAll(pair.server(), &ignored).ok());  // the handshake starts
    absl::Span<uint8_t> space = pair.server().InputSpace();
    ASSERT_FALSE(space.empty());
    if (destroy) {
      pair.server().Destroy();
      EXPECT_TRUE(PollAll(pair.server(), &ignored).ok());
    } else {
      pair.Advance(absl::Seconds(120));
      pair.server().OnTimer(pair.now());
      EXPECT_EQ(NodeCode(PollAll(pair.server(), &ignored)), "ERR_TLS_HANDSHAKE_TIMEOUT");
    }
    // Writing into the span must still be safe (ASan checks), and the commit
    // reports the state.
    std::memset(space.data(), 'x', space.size());
    absl::Status s = pair.server().CommitInput(space.size());
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(pair.server().finished());
  }
}

// ---- interest() and ConsumeOutput ----

TEST(InterestTest, AnnouncesPlaintextToEncryptAndInputRoom) {
  EnginePair pair(ServerOptions(), ClientOptions());
  EXPECT_TRUE(pair.client().interest().read);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.client().interest().write);
  ASSERT_TRUE(pair.client().Write("hello").ok());
  // Nothing is encrypted yet, but an adapter must arm EPOLLOUT now.
  EXPECT_EQ(pair.client().OutputSize(), 0u);
  EXPECT_TRUE(pair.client().interest().write);
  EXPECT_FALSE(TakeOutput(pair.client()).empty());
  EXPECT_FALSE(pair.client().interest().write);
  EXPECT_EQ(pair.client().interest().deadline, absl::InfiniteFuture());
}

TEST(InterestTest, HandshakeDeadlineIsInTheInterest) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_FALSE(pair.client().NextEvent(pair.now()) == std::nullopt);  // kHandshakeStart
  EXPECT_EQ(pair.client().interest().deadline, pair.now() + absl::Seconds(120));
  EXPECT_TRUE(pair.client().interest().write);  // the ClientHello
}

TEST(InterestTest, ConsumingMoreThanPendingIsAnErrorAndConsumesNothing) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.client().NextEvent(pair.now()).has_value());
  auto out = pair.client().Output();
  ASSERT_EQ(out.size(), 1u);
  const size_t pending = out[0].size();
  absl::Status s = pair.client().ConsumeOutput(pending + 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(s), "ERR_INVALID_ARG_VALUE");
  EXPECT_EQ(pair.client().OutputSize(), pending);
  // A failed send (-1 as a size_t) must not wipe the flight either.
  EXPECT_FALSE(pair.client().ConsumeOutput(static_cast<size_t>(-1)).ok());
  EXPECT_EQ(pair.client().OutputSize(), pending);
  ASSERT_TRUE(pair.Handshake().ok());
}

TEST(DrainTest, FollowsAShortWriteOnceTheBufferEmpties) {
  ConnectionOptions co = ClientOptions();
  co.max_write_buffer = 1000;
  EnginePair pair(ServerOptions(), co);
  ASSERT_TRUE(pair.Handshake().ok());
  absl::StatusOr<size_t> n = pair.client().Write(std::string(5000, 'd'));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1000u);
  pair.Pump();
  EXPECT_EQ(pair.client_side().Count(EventType::kDrain), 1);
  // A write that fits owes no drain.
  ASSERT_TRUE(pair.client().Write("small").ok());
  pair.Pump();
  EXPECT_EQ(pair.client_side().Count(EventType::kDrain), 1);
  EXPECT_EQ(pair.server_side().received.size(), 1005u);
}

// ---- Writing while a renegotiation or post-handshake auth runs ----

struct StreamParam {
  const char* version;
  size_t chunk;
};

class WriteThroughRenegotiationTest : public ::testing::TestWithParam<StreamParam> {};

// Both sides write without pause through three renegotiations (TLS 1.2:
// server-initiated with a certificate request, client-initiated, server
// again) or three post-handshake authentications (TLS 1.3); every byte must
// arrive, in order.
TEST_P(WriteThroughRenegotiationTest, EveryByteArrives) {
  const bool tls13 = std::string(GetParam().version) == "TLSv1.3";
  ConnectionOptions so = ServerOptions("server-ecdsa", GetParam().version);
  so.allow_client_renegotiation = true;
  ConnectionOptions co = ClientOptions();
  co.secure_context = testing::MakeContext(testing::IdentityOptions("client"));
  EnginePair pair(so, co);
  ASSERT_TRUE(pair.Handshake(GetParam().chunk).ok());
  std::string to_server, to_client;
  for (int i = 0; i < 2000; ++i) {
    to_server += absl::StrCat("c", i, ";");
    to_client += absl::StrCat("s", i, ";");
  }
  size_t client_sent = 0, server_sent = 0;
  int renegotiations = 0;
  for (int round = 0; round < 5000 && (client_sent < to_server.size() || server_sent < to_client.size());
       ++round) {
    if (round % 40 >= 5 && renegotiations < 3 && renegotiations == pair.server_side().Count(EventType::kRenegotiated)) {
      const bool by_client = !tls13 && renegotiations == 1;
      TlsConnection& who = by_client ? pair.client() : pair.server();
      absl::Status started = who.Renegotiate({.request_cert = !by_client, .reject_unauthorized = true});
      ASSERT_TRUE(started.ok()) << started;
      ++renegotiations;
    }
    absl::StatusOr<size_t> c = pair.client().Write(absl::string_view(to_server).substr(client_sent, 37));
    ASSERT_TRUE(c.ok()) << c.status();
    client_sent += *c;
    absl::StatusOr<size_t> s = pair.server().Write(absl::string_view(to_client).substr(server_sent, 41));
    ASSERT_TRUE(s.ok()) << s.status();
    server_sent += *s;
    pair.Pump(GetParam().chunk);
    ASSERT_TRUE(pair.client_side().error.ok()) << pair.client_side().error;
    ASSERT_TRUE(pair.server_side().error.ok()) << pair.server_side().error;
  }
  pair.Pump(GetParam().chunk);
  EXPECT_EQ(renegotiations, 3);
  EXPECT_EQ(pair.server_side().Count(EventType::kRenegotiated), 3);
  EXPECT_TRUE(pair.server().authorized());
  EXPECT_EQ(pair.server_side().received, to_server);
  EXPECT_EQ(pair.client_side().received, to_client);
}

INSTANTIATE_TEST_SUITE_P(Versions, WriteThroughRenegotiationTest,
                         ::testing::Values(StreamParam{"TLSv1.2", SIZE_MAX}, StreamParam{"TLSv1.2", 7},
                                           StreamParam{"TLSv1.2", 1}, StreamParam{"TLSv1.3", SIZE_MAX},
                                           StreamParam{"TLSv1.3", 7}, StreamParam{"TLSv1.3", 1}),
                         [](const ::testing::TestParamInfo<StreamParam>& info) {
                           return absl::StrCat(std::string(info.param.version) == "TLSv1.3" ? "Tls13" : "Tls12",
                                               "_chunk", info.param.chunk == SIZE_MAX ? 0 : info.param.chunk);
                         });

// ---- Renegotiation deadline and Node's window ----

TEST(RenegotiationDeadlineTest, AnUnansweredRenegotiationTimesOut) {
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    ConnectionOptions so = ServerOptions("server-ecdsa", version);
    so.handshake_timeout = absl::Seconds(10);
    EnginePair pair(so, ClientOptions());
    ASSERT_TRUE(pair.Handshake().ok());
    ASSERT_TRUE(pair.server().Renegotiate({.request_cert = true, .reject_unauthorized = true}).ok());
    pair.Poll();  // the clock starts with the next call that brings `now`
    EXPECT_EQ(pair.server().NextDeadline(), pair.now() + absl::Seconds(10)) << version;
    // The client never answers.
    pair.Advance(absl::Seconds(10));
    pair.server().OnTimer(pair.now());
    pair.Poll();
    EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_TLS_HANDSHAKE_TIMEOUT") << version;
    EXPECT_EQ(pair.server_side().error.code(), absl::StatusCode::kDeadlineExceeded);
  }
}

TEST(RenegotiationDeadlineTest, ACompletedRenegotiationClearsIt) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.2");
  so.allow_client_renegotiation = true;
  EnginePair pair(so, ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  EXPECT_EQ(pair.client_side().Count(EventType::kRenegotiated), 1);
  EXPECT_EQ(pair.server().NextDeadline(), absl::InfiniteFuture());
  EXPECT_EQ(pair.client().NextDeadline(), absl::InfiniteFuture());
  pair.Advance(absl::Hours(1));
  pair.Poll();
  EXPECT_TRUE(pair.server_side().error.ok());
}

// Node (lib/_tls_wrap.js onhandshakestart): the count resets only when a
// start comes a whole window after the previous start, not after a fixed
// window start. Limit 2, window 1 s: starts at +0.5, +1.4 and +2.3 s trip it.
// A TLS 1.2 server allowing 2 client renegotiations per second.
ConnectionOptions WindowServer() {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.2");
  so.allow_client_renegotiation = true;
  so.client_reneg_limit = 2;
  so.client_reneg_window = absl::Seconds(1);
  return so;
}

TEST(RenegotiationWindowTest, FollowsNodeLastStartRule) {
  EnginePair pair(WindowServer(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  for (absl::Duration gap : {absl::Milliseconds(500), absl::Milliseconds(900), absl::Milliseconds(900)}) {
    pair.Advance(gap);
    ASSERT_TRUE(pair.client().Renegotiate({}).ok());
    pair.Pump();
  }
  EXPECT_EQ(pair.client_side().Count(EventType::kRenegotiated), 2);
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_TLS_SESSION_ATTACK");
}

TEST(RenegotiationWindowTest, AWholeWindowOfQuietResetsTheCount) {
  EnginePair pair(WindowServer(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  for (absl::Duration gap : {absl::Milliseconds(500), absl::Milliseconds(900), absl::Milliseconds(1000),
                             absl::Milliseconds(100)}) {
    pair.Advance(gap);
    ASSERT_TRUE(pair.client().Renegotiate({}).ok());
    pair.Pump();
  }
  EXPECT_TRUE(pair.server_side().error.ok()) << pair.server_side().error;
  EXPECT_EQ(pair.client_side().Count(EventType::kRenegotiated), 4);
}

// ---- Peer-triggered work is bounded ----

// 10,000 KeyUpdate(update_requested) to a server whose output nobody drains:
// it stops reading once its output is full (backpressure both ways).
TEST(PeerLimitsTest, KeyUpdateFloodIsHeldBackByTheOutputBound) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.3");
  so.max_key_updates = 1 << 30;  // this test is about the buffer bound
  EnginePair pair(so, ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::string ignored;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(pair.client().KeyUpdate(/*request_peer=*/true).ok());
    std::string wire = TakeOutput(pair.client());
    absl::StatusOr<size_t> fed = pair.server().Feed(Bytes(wire));
    ASSERT_TRUE(fed.ok()) << fed.status();
    ASSERT_TRUE(PollAll(pair.server(), &ignored).ok());
    if (*fed < wire.size()) break;  // backpressure reached the transport
  }
  EXPECT_LE(pair.server().OutputSize(), so.max_output_buffer + 64);
  EXPECT_TRUE(pair.server().InputSpace().empty());
  EXPECT_FALSE(pair.server().interest().read);
  EXPECT_TRUE(pair.server().interest().write);
}

TEST(PeerLimitsTest, KeyUpdateRequestsWithoutDataEndTheConnection) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.3"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  for (int i = 0; i < 40 && pair.server_side().error.ok(); ++i) {
    ASSERT_TRUE(pair.client().KeyUpdate(true).ok());
    pair.Pump();
  }
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_TLS_TOO_MANY_KEY_UPDATES");
  EXPECT_EQ(pair.server().stats().key_updates_received, 33u);
}

TEST(PeerLimitsTest, KeyUpdateRequestsBetweenDataAreFine) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.3"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(pair.client().KeyUpdate(true).ok());
    ASSERT_TRUE(pair.client().Write("x").ok());
    pair.Pump();
  }
  EXPECT_TRUE(pair.server_side().error.ok()) << pair.server_side().error;
  EXPECT_EQ(pair.server_side().received, std::string(100, 'x'));
  // RFC 8446 §4.6.3: the answer to the last request may wait until the
  // server's next application data, which OpenSSL does.
  EXPECT_GE(pair.client().stats().key_updates_received, 99u);
  ASSERT_TRUE(pair.server().Write("done").ok());
  pair.Pump();
  EXPECT_EQ(pair.client().stats().key_updates_received, 100u);
  EXPECT_EQ(pair.client_side().received, "done");
}

// A raw OpenSSL TLS 1.3 server that can send as many tickets as it likes.
class TicketFloodServer {
 public:
  TicketFloodServer() {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION);
    std::string cert = ReadTestFile("server-ecdsa-chain.pem"), key = ReadTestFile("server-ecdsa-key.pem");
    std::unique_ptr<BIO, decltype(&BIO_free)> cbio(BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size())),
                                                   &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> kbio(BIO_new_mem_buf(key.data(), static_cast<int>(key.size())),
                                                   &BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> x(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr),
                                                  &X509_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> k(
        PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_.get(), x.get()), 1);
    while (X509* extra = PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr)) {
      SSL_CTX_add_extra_chain_cert(ctx_.get(), extra);  // takes ownership
    }
    ERR_clear_error();
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_.get(), k.get()), 1);
    ssl_.reset(SSL_new(ctx_.get()));
    BIO* internal = nullptr;
    BIO_new_bio_pair(&internal, 1 << 20, &network_, 1 << 20);  // room for the whole flood
    SSL_set_bio(ssl_.get(), internal, internal);  // the SSL owns its end
    SSL_set_accept_state(ssl_.get());
  }
  ~TicketFloodServer() { BIO_free(network_); }

  // Moves bytes between the server and `client` until neither moves.
  void Pump(TlsConnection& client, std::string* received) {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      SSL_do_handshake(ssl_.get());
      ERR_clear_error();
      PollClient(client, received);
      for (auto out = client.Output(); !out.empty(); out = client.Output()) {
        int n = BIO_write(network_, out[0].data(), static_cast<int>(out[0].size()));
        if (n <= 0) break;
        EXPECT_TRUE(client.ConsumeOutput(static_cast<size_t>(n)).ok());
        moved = true;
      }
      for (absl::Span<uint8_t> space = client.InputSpace(); !space.empty(); space = client.InputSpace()) {
        int n = BIO_read(network_, space.data(), static_cast<int>(space.size()));
        EXPECT_TRUE(client.CommitInput(n > 0 ? static_cast<size_t>(n) : 0).ok());
        if (n <= 0) break;
        moved = true;
        PollClient(client, received);
      }
      if (!moved) break;
    }
  }
  SSL* ssl() { return ssl_.get(); }
  int session_events() const { return session_events_; }

 private:
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, &SSL_free};
  BIO* network_ = nullptr;  // our end of the pair, freed in the destructor
  int session_events_ = 0;

  void PollClient(TlsConnection& client, std::string* received) {
    while (auto ev = client.NextEvent(TestNow())) {
      EXPECT_NE(ev->type, EventType::kError) << ev->status;
      if (ev->type == EventType::kSession) ++session_events_;
      if (ev->type == EventType::kData) received->append(reinterpret_cast<const char*>(ev->data.data()), ev->data.size());
    }
  }
};

TEST(PeerLimitsTest, ATicketFloodRaisesABoundedNumberOfSessionEvents) {
  TicketFloodServer server;
  auto client = *TlsConnection::Create(ClientOptions(), TestNow());
  std::string received;
  server.Pump(*client, &received);
  ASSERT_TRUE(client->secure());
  // 300 tickets in one go, then data.
  for (int i = 0; i < 300; ++i) ASSERT_EQ(SSL_new_session_ticket(server.ssl()), 1);
  ASSERT_EQ(SSL_write(server.ssl(), "after", 5), 5);
  const int before = server.session_events();
  EXPECT_EQ(before, 2);  // the two tickets after the handshake
  for (int round = 0; round < 100 && received.empty(); ++round) server.Pump(*client, &received);
  EXPECT_EQ(received, "after");
  // The limit counts tickets since data last came: 16 in all here.
  EXPECT_EQ(server.session_events(), ConnectionOptions().max_session_events);
  EXPECT_FALSE(client->GetSession().empty());
  EXPECT_TRUE(client->status().ok()) << client->status();
}

// ---- New sessions: each kNewSession is answered once ----

TEST(NewSessionTest, EveryTls13TicketIsAcknowledgedSeparately) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.3");
  so.session_cache = true;
  EnginePair pair(so, ClientOptions());
  int acknowledged = 0;
  bool output_held_between = true;
  pair.server_side().hook = [&](TlsConnection& c, const Event& e) {
    if (e.type != EventType::kNewSession) return;
    EXPECT_FALSE(e.session_id.empty());
    absl::Status ack = c.AckNewSession();
    EXPECT_TRUE(ack.ok()) << ack;
    if (++acknowledged == 1) output_held_between = c.OutputSize() == 0;
  };
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(acknowledged, 2);  // OpenSSL's two TLS 1.3 tickets
  EXPECT_TRUE(output_held_between);
  EXPECT_EQ(pair.client_side().Count(EventType::kSession), 2);
  // No third answer is expected.
  EXPECT_EQ(NodeCode(pair.server().AckNewSession()), "ERR_TLS_INVALID_STATE");
}

// ---- End() and Destroy() ----

TEST(EndTest, EndRightAfterConnectCompletesTheHandshakeAndSendsWhatWasWritten) {
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    EnginePair pair(ServerOptions("server-rsa", version), ClientOptions());
    ASSERT_TRUE(pair.client().Write("written before the handshake").ok());
    pair.client().End(pair.now());
    EXPECT_EQ(NodeCode(pair.client().Write("x").status()), "ERR_STREAM_WRITE_AFTER_END");
    pair.Pump();
    EXPECT_EQ(pair.server_side().received, "written before the handshake") << version;
    EXPECT_TRUE(pair.server_side().Saw(EventType::kPeerClosed)) << version;
    EXPECT_TRUE(pair.client_side().Saw(EventType::kSecure)) << version;
    EXPECT_TRUE(pair.client_side().Saw(EventType::kClosed)) << version;
    EXPECT_TRUE(pair.client().status().ok());
  }
}

// An adapter answering a truncation with End() must see kClosed: OpenSSL
// is in its error state by then and sends no close_notify.
TEST(EndTest, EndAfterATruncationFinishes) {
  for (bool wait : {false, true}) {
    EnginePair pair(ServerOptions(), ClientOptions());
    ASSERT_TRUE(pair.Handshake().ok());
    pair.client().OnTransportEof();
    pair.Poll();
    ASSERT_TRUE(pair.client_side().Saw(EventType::kTruncated));
    pair.client().End(pair.now(), wait);
    pair.Poll();
    EXPECT_TRUE(pair.client_side().Saw(EventType::kClosed)) << wait;
    EXPECT_TRUE(pair.client().finished());
    EXPECT_FALSE(pair.client().interest().write && pair.client().Output().empty());
  }
}

TEST(EndTest, EndRespectsTheOutputBound) {
  ConnectionOptions co = ClientOptions();
  co.max_output_buffer = 20000;
  co.max_write_buffer = 100000;
  EnginePair pair(ServerOptions(), co);
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_EQ(*pair.client().Write(std::string(100000, 'e')), 100000u);
  pair.client().End(pair.now());
  pair.client().Output();
  EXPECT_LE(pair.client().OutputSize(), 20000u + 16384 + 256);
  pair.Pump();
  EXPECT_EQ(pair.server_side().received.size(), 100000u);
  EXPECT_TRUE(pair.server_side().Saw(EventType::kPeerClosed));
}

TEST(DestroyTest, StopsAtOnceAndDeliversNothingButItsClose) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().Write("never sent").ok());
  pair.client().Destroy();
  EXPECT_EQ(pair.client().OutputSize(), 0u);
  EXPECT_TRUE(pair.client().Output().empty());
  auto ev = pair.client().NextEvent(pair.now());
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->type, EventType::kClosed);
  EXPECT_FALSE(pair.client().NextEvent(pair.now()).has_value());
  EXPECT_EQ(NodeCode(pair.client().Write("x").status()), "ERR_STREAM_WRITE_AFTER_END");
  EXPECT_FALSE(pair.client().interest().read);
  EXPECT_FALSE(pair.client().interest().write);
  pair.client().Destroy();  // idempotent
  EXPECT_FALSE(pair.client().NextEvent(pair.now()).has_value());
}

// Destroy() inside a handler: what was queued behind the event (here the
// TLS 1.3 client's 'secure', queued after its OCSP response) is dropped.
TEST(DestroyTest, QueuedEventsAreDroppedWhenDestroyedFromAHandler) {
  ConnectionOptions co = ClientOptions("TLSv1.3");
  co.request_ocsp = true;
  EnginePair pair(ServerOptions(), co);
  pair.client_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kOcspResponse) c.Destroy();
  };
  EXPECT_FALSE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client_side().Saw(EventType::kOcspResponse));
  EXPECT_FALSE(pair.client_side().Saw(EventType::kSecure));
  EXPECT_EQ(pair.client_side().Count(EventType::kClosed), 1);
  EXPECT_EQ(pair.client_side().events.back(), EventType::kClosed);
}

// ---- OpenSSL's error queue is left clean for the next user ----

TEST(ErrorQueueTest, CleanAfterAResetBeforeTheHandshakeAndAfterGarbage) {
  auto client = *TlsConnection::Create(ClientOptions(), TestNow());
  std::string ignored;
  ASSERT_TRUE(PollAll(*client, &ignored).ok());
  client->OnTransportEof();
  EXPECT_EQ(NodeCode(PollAll(*client, &ignored)), "ECONNRESET");
  EXPECT_EQ(ERR_peek_error(), 0u);

  auto server = *TlsConnection::Create(ServerOptions(), TestNow());
  ASSERT_TRUE(server->Feed(Bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).ok());
  EXPECT_FALSE(PollAll(*server, &ignored).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
  TakeOutput(*server);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace tlsengine
