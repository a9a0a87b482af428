// Node's tls features beyond the basic handshake, engine against engine in
// memory: SNI, ALPN/NPN, sessions and tickets, the external session cache,
// OCSP stapling, renegotiation and its limit, TLS 1.3 key update and
// post-handshake authentication, and the smaller controls.
#include <openssl/ssl.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::Cert;
using testing::Chain;
using testing::ClientOptions;
using testing::ClientWith;
using testing::EnginePair;
using testing::IdentityOptions;
using testing::Key;
using testing::MakeContext;
using testing::ReadTestFile;
using testing::ServerOptions;
using testing::ServerWith;

// ---- SNI ----

ConnectionOptions SniServer() {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_contexts = std::make_shared<SniContexts>();
  EXPECT_TRUE(so.sni_contexts->Add("other.example.com", MakeContext(IdentityOptions("other-name"))).ok());
  EXPECT_TRUE(so.sni_contexts->Add("*.example.com", MakeContext(IdentityOptions("wildcard"))).ok());
  return so;
}

std::string PeerCn(EnginePair& pair) { return pair.client().GetPeerCertificate()->subject.Get("CN"); }

TEST(SniTest, ExactThenWildcardThenDefault) {
  for (const auto& [name, cn] : {std::pair{"other.example.com", "other.example.com"},
                                 std::pair{"OTHER.example.com", "other.example.com"},
                                 std::pair{"a.example.com", "*.example.com"},
                                 std::pair{"localhost", "localhost"}}) {
    ConnectionOptions co = ClientOptions();
    co.servername = name;
    EnginePair pair(SniServer(), co);
    ASSERT_TRUE(pair.Handshake().ok()) << name;
    EXPECT_EQ(PeerCn(pair), cn) << name;
    EXPECT_TRUE(pair.client().authorized()) << name;
    EXPECT_EQ(pair.server().servername(), name);
    EXPECT_EQ(pair.client().servername(), name);
  }
}

TEST(SniTest, AddContextRefusesBadNames) {
  SniContexts table;
  auto ctx = MakeContext(IdentityOptions("wildcard"));
  absl::Status empty = table.Add("", ctx);
  EXPECT_EQ(NodeCode(empty), "ERR_TLS_REQUIRED_SERVER_NAME");
  EXPECT_EQ(empty.message(), "\"servername\" is required parameter for Server.addContext");
  EXPECT_EQ(NodeCode(table.Add("a.*.example.com", ctx)), "ERR_INVALID_ARG_VALUE");
  EXPECT_EQ(NodeCode(table.Add("f*.example.com", ctx)), "ERR_INVALID_ARG_VALUE");
  EXPECT_EQ(table.Find("a.example.com"), nullptr);
  ASSERT_TRUE(table.Add("*.example.com", ctx).ok());
  EXPECT_EQ(table.Find("x.example.com"), ctx);
  EXPECT_EQ(table.Find("x.y.example.com"), nullptr);  // one label only
  EXPECT_EQ(table.Find("example.com"), nullptr);
}

TEST(SniTest, RemoveAndEntriesUseAddsSpelling) {
  SniContexts table;
  auto exact = MakeContext(IdentityOptions("other-name"));
  auto wild = MakeContext(IdentityOptions("wildcard"));
  ASSERT_TRUE(table.Add("Other.Example.com.", exact).ok());
  ASSERT_TRUE(table.Add("*.example.com", wild).ok());
  using Entries = std::vector<std::pair<std::string, std::shared_ptr<const SecureContext>>>;
  EXPECT_EQ(table.Entries(), (Entries{{"other.example.com", exact}, {"*.example.com", wild}}));
  EXPECT_FALSE(table.Remove("x.example.com")) << "a name the pattern matches is not the pattern";
  EXPECT_TRUE(table.Remove("OTHER.example.com"));
  EXPECT_FALSE(table.Remove("other.example.com")) << "removed already";
  EXPECT_EQ(table.Find("other.example.com"), wild) << "the pattern still matches it";
  EXPECT_TRUE(table.Remove("*.EXAMPLE.com."));
  EXPECT_EQ(table.Find("other.example.com"), nullptr);
  EXPECT_TRUE(table.Entries().empty());
}

TEST(SniTest, CallbackAnsweredLater) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_callback = true;
  ConnectionOptions co = ClientOptions();
  co.servername = "other.example.com";
  EnginePair pair(so, co);
  pair.Pump();
  // The handshake waits for the application.
  ASSERT_TRUE(pair.server_side().Saw(EventType::kSniRequest));
  EXPECT_EQ(pair.server_side().First(EventType::kSniRequest).servername, "other.example.com");
  EXPECT_FALSE(pair.client().secure());
  pair.Advance(absl::Seconds(3));
  pair.Pump();
  EXPECT_EQ(pair.server_side().Count(EventType::kSniRequest), 1);  // asked once
  ASSERT_TRUE(pair.server().AnswerSni(MakeContext(IdentityOptions("other-name"))).ok());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(PeerCn(pair), "other.example.com");
  EXPECT_EQ(NodeCode(pair.server().AnswerSni(nullptr)), "ERR_TLS_INVALID_STATE");
  EXPECT_EQ(NodeCode(pair.server().AnswerResumeSession("")), "ERR_TLS_INVALID_STATE");
  EXPECT_EQ(NodeCode(pair.server().AnswerOcspRequest("")), "ERR_TLS_INVALID_STATE");
}

TEST(SniTest, CallbackAnswerNullKeepsDefaultAndErrorEndsTheConnection) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_callback = true;
  EnginePair keep(so, ClientOptions());
  keep.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kSniRequest) {
      ASSERT_TRUE(c.AnswerSni(nullptr).ok());
    }
  };
  ASSERT_TRUE(keep.Handshake().ok());
  EXPECT_EQ(PeerCn(keep), "localhost");

  EnginePair refuse(so, ClientOptions());
  refuse.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kSniRequest) {
      EXPECT_TRUE(c.AnswerSni(MakeError(absl::StatusCode::kNotFound, "ERR_UNKNOWN_HOST", "no such host")).ok());
    }
  };
  EXPECT_FALSE(refuse.Handshake().ok());
  EXPECT_EQ(NodeCode(refuse.server_side().error), "ERR_UNKNOWN_HOST");
  EXPECT_EQ(refuse.server_side().error.message(), "no such host");
  EXPECT_FALSE(refuse.client().secure());
  // The client is told why: unrecognized_name.
  EXPECT_EQ(AlertOf(refuse.client_side().error), 112);
  EXPECT_EQ(NodeCode(refuse.client_side().error), "ERR_SSL_TLSV1_UNRECOGNIZED_NAME");
}

TEST(SniTest, NoSniMeansNoCallback) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.sni_callback = true;
  ConnectionOptions co = ClientOptions();
  co.servername = "";
  co.host = "127.0.0.1";
  EnginePair pair(so, co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.server_side().Saw(EventType::kSniRequest));
}

// ---- ALPN and NPN ----

class VersionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VersionTest, AlpnPicksTheServersPreference) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  so.alpn_protocols = {"h2", "http/1.1"};
  ConnectionOptions co = ClientOptions();
  co.alpn_protocols = {"http/1.1", "h2"};
  EnginePair pair(so, co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().alpn_protocol(), "h2");
  EXPECT_EQ(pair.server().alpn_protocol(), "h2");
}

TEST_P(VersionTest, AlpnWithoutOverlapIsAFatalAlert) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  so.alpn_protocols = {"h2"};
  ConnectionOptions co = ClientOptions();
  co.alpn_protocols = {"spdy/3"};
  EnginePair pair(so, co);
  EXPECT_FALSE(pair.Handshake().ok());
  EXPECT_EQ(AlertOf(pair.client_side().error), 120);  // no_application_protocol
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_SSL_NO_APPLICATION_PROTOCOL");
}

TEST_P(VersionTest, AlpnOnOneSideOnlyAgreesOnNothing) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  so.alpn_protocols = {"h2"};
  EnginePair pair(so, ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().alpn_protocol(), "");
  ConnectionOptions co = ClientOptions();
  co.alpn_protocols = {"h2"};
  EnginePair other(ServerOptions("server-rsa", GetParam()), co);
  ASSERT_TRUE(other.Handshake().ok());
  EXPECT_EQ(other.server().alpn_protocol(), "");
}

TEST(AlpnTest, BadProtocolNamesAreRefused) {
  ConnectionOptions co = ClientOptions();
  co.alpn_protocols = {""};
  EXPECT_EQ(NodeCode(TlsConnection::Create(co, testing::TestNow()).status()), "ERR_INVALID_ARG_VALUE");
  co.alpn_protocols = {std::string(256, 'x')};
  EXPECT_NE(TlsConnection::Create(co, testing::TestNow()).status().message().find("alpn_protocols"),
            std::string::npos);
  SecureContextOptions o;
  o.npn_protocols = {""};
  EXPECT_EQ(NodeCode(SecureContext::Create(o).status()), "ERR_INVALID_ARG_VALUE");
}

TEST(NpnTest, NegotiatedOnTls12) {
  SecureContextOptions server = IdentityOptions("server-rsa");
  server.npn_protocols = {"spdy/3", "http/1.1"};
  SecureContextOptions client;
  client.max_version = "TLSv1.2";
  client.npn_protocols = {"http/1.1", "spdy/3"};
  EnginePair pair(ServerWith(server), ClientWith(client));
  ASSERT_TRUE(pair.Handshake().ok());
  // NPN: the client chooses, by the server's order (OpenSSL's rule).
  EXPECT_EQ(pair.client().npn_protocol(), "spdy/3");
  EXPECT_EQ(pair.server().npn_protocol(), "spdy/3");
}

TEST(NpnTest, NoOverlapReportsNoneOnTheClient) {
  SecureContextOptions server = IdentityOptions("server-rsa");
  server.npn_protocols = {"spdy/3"};
  SecureContextOptions client;
  client.max_version = "TLSv1.2";
  client.npn_protocols = {"http/1.1"};
  EnginePair pair(ServerWith(server), ClientWith(client));
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().npn_protocol(), "");
  EXPECT_EQ(pair.server().npn_protocol(), "http/1.1");  // what the client sent, as in io.js
}

// ConnectionOptions::npn_protocols replaces the context's list for one
// connection; a server needs no list in its context for it.
TEST(NpnTest, TheConnectionsListReplacesTheContexts) {
  ConnectionOptions server = ServerWith(IdentityOptions("server-rsa"));
  server.npn_protocols = {"h2x", "spdy/3"};
  SecureContextOptions client_context;
  client_context.max_version = "TLSv1.2";
  client_context.npn_protocols = {"http/1.1"};
  ConnectionOptions client = ClientWith(client_context);
  client.npn_protocols = {"spdy/3"};
  EnginePair pair(server, client);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().npn_protocol(), "spdy/3");
  EXPECT_EQ(pair.server().npn_protocol(), "spdy/3");
}

TEST(NpnTest, AClientListNeedsNpnInItsContext) {
  ConnectionOptions client = ClientOptions();
  client.npn_protocols = {"spdy/3"};
  absl::Status refused = TlsConnection::Create(client, testing::TestNow()).status();
  EXPECT_EQ(NodeCode(refused), "ERR_INVALID_ARG_VALUE") << refused;
  EXPECT_NE(refused.message().find("npn_protocols"), std::string::npos) << refused;
  client.npn_protocols = {""};
  EXPECT_EQ(NodeCode(TlsConnection::Create(client, testing::TestNow()).status()), "ERR_INVALID_ARG_VALUE");
}

// ---- Sessions and tickets ----

// Handshakes once, returns the client's latest session.
std::string FirstSession(ConnectionOptions server, ConnectionOptions client) {
  EnginePair pair(std::move(server), std::move(client));
  EXPECT_TRUE(pair.Handshake().ok());
  pair.Pump();
  EXPECT_FALSE(pair.client().is_session_reused());
  return pair.client().GetSession();
}

TEST_P(VersionTest, TicketResumption) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  std::string session = FirstSession(so, ClientOptions());
  ASSERT_FALSE(session.empty());
  ConnectionOptions co = ClientOptions();
  co.session = session;
  EnginePair again(so, co);
  ASSERT_TRUE(again.Handshake().ok());
  EXPECT_TRUE(again.client().is_session_reused());
  EXPECT_TRUE(again.server().is_session_reused());
  EXPECT_TRUE(again.client().authorized());
  EXPECT_EQ(again.client().protocol(), GetParam());
}

TEST_P(VersionTest, SessionEventsCarryResumableSessionsAndTickets) {
  EnginePair pair(ServerOptions("server-rsa", GetParam()), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  pair.Pump();
  ASSERT_TRUE(pair.client_side().Saw(EventType::kSession));
  EXPECT_FALSE(pair.client().GetTlsTicket().empty());
  std::string from_event = pair.client_side().First(EventType::kSession).session;
  ConnectionOptions co = ClientOptions();
  co.session = from_event;
  EnginePair again(ServerOptions("server-rsa", GetParam()), co);
  // A different server context has different ticket keys: no resumption.
  ASSERT_TRUE(again.Handshake().ok());
  EXPECT_FALSE(again.client().is_session_reused());
}

std::string TicketKey(char fill) { return std::string(48, fill); }

TEST_P(VersionTest, SharedTicketKeysResumeAcrossContextsAndRotate) {
  SecureContextOptions a = IdentityOptions("server-rsa", GetParam());
  a.ticket_keys = {TicketKey('a')};
  std::string session = FirstSession(ServerWith(a), ClientOptions());
  // Another context, same key: resumes.
  ConnectionOptions co = ClientOptions();
  co.session = session;
  EnginePair same(ServerWith(a), co);
  ASSERT_TRUE(same.Handshake().ok());
  same.Pump();
  EXPECT_TRUE(same.client().is_session_reused());
  // A resumed connection gets a fresh ticket, which resumes too (TLS 1.3
  // tickets are single-use, so this needs the key callback to renew).
  ConnectionOptions chained = ClientOptions();
  chained.session = same.client().GetSession();
  EnginePair third(ServerWith(a), chained);
  ASSERT_TRUE(third.Handshake().ok());
  EXPECT_TRUE(third.client().is_session_reused());
  // Rotated: a new key first, the old one still accepted.
  SecureContextOptions rotated = a;
  rotated.ticket_keys = {TicketKey('b'), TicketKey('a')};
  EnginePair old_key(ServerWith(rotated), co);
  ASSERT_TRUE(old_key.Handshake().ok());
  EXPECT_TRUE(old_key.client().is_session_reused());
  // The old key dropped: a full handshake.
  SecureContextOptions dropped = a;
  dropped.ticket_keys = {TicketKey('b')};
  EnginePair gone(ServerWith(dropped), co);
  ASSERT_TRUE(gone.Handshake().ok());
  EXPECT_FALSE(gone.client().is_session_reused());
}

TEST(SessionTest, TicketKeysMustBe48Bytes) {
  SecureContextOptions o;
  o.ticket_keys = {std::string(47, 'x')};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  EXPECT_EQ(NodeCode(ctx.status()), "ERR_INVALID_ARG_VALUE");
  EXPECT_NE(ctx.status().message().find("Ticket keys length must be 48 bytes"), std::string::npos);
}

TEST(SessionTest, SessionIdContextMismatchPreventsResumption) {
  SecureContextOptions a = IdentityOptions("server-rsa");
  a.ticket_keys = {TicketKey('k')};
  std::string session = FirstSession(ServerWith(a), ClientOptions());
  SecureContextOptions b = a;
  b.session_id_context = "another service";
  ConnectionOptions co = ClientOptions();
  co.session = session;
  EnginePair pair(ServerWith(b), co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.client().is_session_reused());
}

TEST(SessionTest, SessionTimeoutIsStampedOnSessions) {
  SecureContextOptions a = IdentityOptions("server-rsa");
  a.session_timeout = 1234;
  std::string session = FirstSession(ServerWith(a), ClientOptions());
  const unsigned char* p = reinterpret_cast<const unsigned char*>(session.data());
  SSL_SESSION* parsed = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(session.size()));
  ASSERT_NE(parsed, nullptr);
  // TLS 1.3: the ticket lifetime hint; OpenSSL stamps the server's timeout.
  EXPECT_EQ(SSL_SESSION_get_ticket_lifetime_hint(parsed), 1234u);
  SSL_SESSION_free(parsed);
}

TEST(SessionTest, GarbageSessionIsRefused) {
  ConnectionOptions co = ClientOptions();
  co.session = "not a session";
  absl::StatusOr<std::unique_ptr<TlsConnection>> c = TlsConnection::Create(co, testing::TestNow());
  EXPECT_EQ(NodeCode(c.status()), "ERR_INVALID_ARG_VALUE");
  EXPECT_EQ(c.status().message(), "session: not a serialized TLS session");
}

// The external cache: TLS 1.2 session ids, as Node's newSession/resumeSession.
struct ExternalCache {
  std::map<std::string, std::string> store;
  int lookups = 0;
};

ConnectionOptions CachingServer() {
  SecureContextOptions o = IdentityOptions("server-rsa");
  o.max_version = "TLSv1.2";
  ConnectionOptions so = ServerWith(o);
  so.session_cache = true;
  return so;
}

ConnectionOptions NoTicketClient() {
  SecureContextOptions o;
  // TLS 1.2 only: a TLS 1.3 client sends a random "compatibility" session
  // id, which a TLS 1.2 server rightly looks up (and misses).
  o.max_version = "TLSv1.2";
  o.secure_options = SSL_OP_NO_TICKET;
  return ClientWith(o);
}

TEST(ExternalCacheTest, NewSessionHoldsOutputUntilAcknowledged) {
  EnginePair pair(CachingServer(), NoTicketClient());
  pair.Pump();
  ASSERT_TRUE(pair.server_side().Saw(EventType::kNewSession));
  Event ns = pair.server_side().First(EventType::kNewSession);
  EXPECT_EQ(ns.session_id.size(), 32u);
  EXPECT_FALSE(ns.session.empty());
  // Held: the server's last flight has not gone out, and no 'secure' yet.
  EXPECT_FALSE(pair.client().secure());
  EXPECT_FALSE(pair.server_side().Saw(EventType::kSecure));
  EXPECT_EQ(pair.server().OutputSize(), 0u);
  ASSERT_TRUE(pair.server().AckNewSession().ok());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.server_side().Saw(EventType::kSecure));
  EXPECT_EQ(NodeCode(pair.server().AckNewSession()), "ERR_TLS_INVALID_STATE");
}

TEST(ExternalCacheTest, ResumeSessionFromTheApplicationsStore) {
  ExternalCache cache;
  auto hook = [&cache](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kNewSession) {
      cache.store[e.session_id] = e.session;
      ASSERT_TRUE(c.AckNewSession().ok());
    }
    if (e.type == EventType::kResumeSession) {
      cache.lookups++;
      auto it = cache.store.find(e.session_id);
      ASSERT_TRUE(c.AnswerResumeSession(it == cache.store.end() ? "" : it->second).ok());
    }
  };
  EnginePair first(CachingServer(), NoTicketClient());
  first.server_side().hook = hook;
  ASSERT_TRUE(first.Handshake().ok());
  ASSERT_EQ(cache.store.size(), 1u);
  EXPECT_EQ(cache.lookups, 0);  // a fresh client offers no session id

  ConnectionOptions co = NoTicketClient();
  co.session = first.client().GetSession();
  EnginePair second(CachingServer(), co);
  second.server_side().hook = hook;
  ASSERT_TRUE(second.Handshake().ok());
  EXPECT_EQ(cache.lookups, 1);
  EXPECT_TRUE(second.client().is_session_reused());
  EXPECT_TRUE(second.server().is_session_reused());

  // Not found in the store: a full handshake.
  cache.store.clear();
  EnginePair third(CachingServer(), co);
  third.server_side().hook = hook;
  ASSERT_TRUE(third.Handshake().ok());
  EXPECT_FALSE(third.client().is_session_reused());
}

TEST(ExternalCacheTest, ResumeAnsweredLaterAndLookupErrors) {
  EnginePair first(CachingServer(), NoTicketClient());
  std::string stored;
  first.server_side().hook = [&](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kNewSession) {
      stored = e.session;
      EXPECT_TRUE(c.AckNewSession().ok());
    }
  };
  ASSERT_TRUE(first.Handshake().ok());
  ConnectionOptions co = NoTicketClient();
  co.session = first.client().GetSession();

  EnginePair later(CachingServer(), co);
  later.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kNewSession) { EXPECT_TRUE(c.AckNewSession().ok()); }
  };
  later.Pump();
  ASSERT_TRUE(later.server_side().Saw(EventType::kResumeSession));
  EXPECT_FALSE(later.client().secure());
  ASSERT_TRUE(later.server().AnswerResumeSession(stored).ok());
  ASSERT_TRUE(later.Handshake().ok());
  EXPECT_TRUE(later.client().is_session_reused());

  EnginePair failing(CachingServer(), co);
  failing.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kResumeSession) {
      EXPECT_TRUE(c.AnswerResumeSession(MakeError(absl::StatusCode::kUnavailable, "ECACHEDOWN", "cache down")).ok());
    }
  };
  EXPECT_FALSE(failing.Handshake().ok());
  EXPECT_EQ(NodeCode(failing.server_side().error), "ECACHEDOWN");
  EXPECT_FALSE(failing.client().secure());
  EXPECT_EQ(AlertOf(failing.client_side().error), 80);  // internal_error
}

TEST(ExternalCacheTest, Tls13ClientsDoNotTriggerResumeSession) {
  ConnectionOptions so = ServerOptions("server-rsa");
  so.session_cache = true;
  so.secure_context = MakeContext(IdentityOptions("server-rsa"));
  EnginePair pair(so, ClientOptions());
  pair.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kNewSession) { EXPECT_TRUE(c.AckNewSession().ok()); }
  };
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().protocol(), "TLSv1.3");
  EXPECT_FALSE(pair.server_side().Saw(EventType::kResumeSession));
}

// ---- OCSP stapling ----

TEST_P(VersionTest, OcspResponseIsStapledWhenAskedFor) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  so.ocsp_request = true;
  ConnectionOptions co = ClientOptions();
  co.request_ocsp = true;
  const std::string response = ReadTestFile("server-rsa-ocsp.der");
  EnginePair pair(so, co);
  pair.Pump();
  ASSERT_TRUE(pair.server_side().Saw(EventType::kOcspRequest));
  Event request = pair.server_side().First(EventType::kOcspRequest);
  EXPECT_EQ(request.certificate, pair.server().GetCertificate()->raw);
  EXPECT_EQ(request.issuer, CertificateInfo::FromPem(Cert("int1"))->raw);
  EXPECT_FALSE(pair.client().secure());  // waits for the answer
  ASSERT_TRUE(pair.server().AnswerOcspRequest(response).ok());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client_side().Saw(EventType::kOcspResponse));
  EXPECT_EQ(pair.client_side().First(EventType::kOcspResponse).ocsp_response, response);
}

TEST_P(VersionTest, OcspWithoutAResponseAndWithoutARequest) {
  ConnectionOptions so = ServerOptions("server-rsa", GetParam());
  so.ocsp_request = true;
  ConnectionOptions co = ClientOptions();
  co.request_ocsp = true;
  EnginePair none(so, co);
  none.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kOcspRequest) {
      ASSERT_TRUE(c.AnswerOcspRequest("").ok());
    }
  };
  ASSERT_TRUE(none.Handshake().ok());
  ASSERT_TRUE(none.client_side().Saw(EventType::kOcspResponse));
  EXPECT_EQ(none.client_side().First(EventType::kOcspResponse).ocsp_response, "");

  EnginePair not_asked(so, ClientOptions());
  ASSERT_TRUE(not_asked.Handshake().ok());
  EXPECT_FALSE(not_asked.server_side().Saw(EventType::kOcspRequest));
  EXPECT_FALSE(not_asked.client_side().Saw(EventType::kOcspResponse));

  EnginePair failing(so, co);
  failing.server_side().hook = [](TlsConnection& c, const Event& e) {
    if (e.type == EventType::kOcspRequest) {
      EXPECT_TRUE(c.AnswerOcspRequest(MakeError(absl::StatusCode::kUnavailable, "EOCSPDOWN", "responder down")).ok());
    }
  };
  EXPECT_FALSE(failing.Handshake().ok());
  EXPECT_EQ(NodeCode(failing.server_side().error), "EOCSPDOWN");
  EXPECT_EQ(AlertOf(failing.client_side().error), 80);  // internal_error
}

// ---- Renegotiation (TLS 1.2) and post-handshake authentication (TLS 1.3) ----

ConnectionOptions ClientWithCert(const std::string& version = "") {
  SecureContextOptions o = IdentityOptions("client", version);
  return ClientWith(o);
}

TEST_P(VersionTest, ServerAsksForTheClientCertificateAfterTheHandshake) {
  EnginePair pair(ServerOptions("server-ecdsa", GetParam()), ClientWithCert());
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.server().GetPeerCertificate().has_value());
  ASSERT_TRUE(pair.server().Renegotiate({.request_cert = true, .reject_unauthorized = true}).ok());
  pair.Pump();
  // Data flows while and after the new handshake happens.
  pair.SendAll(pair.client_side(), "after");
  ASSERT_TRUE(pair.server_side().Saw(EventType::kRenegotiated)) << pair.server_side().error;
  EXPECT_TRUE(pair.server().authorized());
  ASSERT_TRUE(pair.server().GetPeerCertificate().has_value());
  EXPECT_EQ(pair.server().GetPeerCertificate()->subject.Get("CN"), "test client");
  EXPECT_EQ(pair.server().stats().renegotiations, 1u);
  EXPECT_EQ(pair.server_side().received, "after");
}

TEST_P(VersionTest, RenegotiationRejectsAClientWithoutCertificate) {
  EnginePair pair(ServerOptions("server-ecdsa", GetParam()), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.server().Renegotiate({.request_cert = true, .reject_unauthorized = true}).ok());
  pair.Pump();
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE");
  EXPECT_FALSE(pair.server_side().Saw(EventType::kRenegotiated));
}

TEST(RenegotiateTest, CannotStartIsReportedAsInNode) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.3"), ClientOptions());
  EXPECT_EQ(NodeCode(pair.server().Renegotiate({})), "ERR_TLS_RENEGOTIATE");  // not secure yet
  ASSERT_TRUE(pair.Handshake().ok());
  absl::Status s = pair.server().Renegotiate({});
  EXPECT_EQ(NodeCode(s), "ERR_TLS_RENEGOTIATE");
  EXPECT_NE(s.message().find("Attempt to renegotiate TLS session failed"), std::string::npos);
  EXPECT_EQ(NodeCode(pair.client().Renegotiate({})), "ERR_TLS_RENEGOTIATE");
  ConnectionOptions no_pha = ClientOptions();
  no_pha.post_handshake_auth = false;
  EnginePair refused(ServerOptions("server-ecdsa", "TLSv1.3"), no_pha);
  ASSERT_TRUE(refused.Handshake().ok());
  EXPECT_EQ(NodeCode(refused.server().Renegotiate({.request_cert = true})), "ERR_TLS_RENEGOTIATE");
}

ConnectionOptions RenegAllowingServer(int limit = 3) {
  ConnectionOptions so = ServerOptions("server-ecdsa", "TLSv1.2");
  so.allow_client_renegotiation = true;
  so.client_reneg_limit = limit;
  return so;
}

TEST(RenegotiateTest, ClientInitiatedRenegotiationIsLimited) {
  EnginePair pair(RenegAllowingServer(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(pair.client().Renegotiate({}).ok()) << i;
    pair.Pump();
    ASSERT_EQ(pair.client_side().Count(EventType::kRenegotiated), i);
    ASSERT_FALSE(pair.server_side().Saw(EventType::kError)) << pair.server_side().error;
  }
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_TLS_SESSION_ATTACK");
  EXPECT_EQ(pair.server_side().error.message(), "TLS session renegotiation attack detected");
  EXPECT_EQ(AlertOf(pair.client_side().error), 40);
}

TEST(RenegotiateTest, TheWindowResetsTheCount) {
  EnginePair pair(RenegAllowingServer(/*limit=*/1), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  pair.Advance(absl::Seconds(601));  // past CLIENT_RENEG_WINDOW
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  EXPECT_FALSE(pair.server_side().Saw(EventType::kError)) << pair.server_side().error;
  EXPECT_EQ(pair.client_side().Count(EventType::kRenegotiated), 2);
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());  // second in this window
  pair.Pump();
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_TLS_SESSION_ATTACK");
}

TEST(RenegotiateTest, ClientRenegotiationIsRefusedByDefault) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.2"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_SSL_NO_RENEGOTIATION");
  EXPECT_FALSE(pair.server_side().Saw(EventType::kRenegotiated));
}

TEST(RenegotiateTest, InvalidLimitsAreRefused) {
  ConnectionOptions so = RenegAllowingServer(-1);
  EXPECT_EQ(NodeCode(TlsConnection::Create(so, testing::TestNow()).status()), "ERR_INVALID_ARG_VALUE");
}

// ---- Key update (TLS 1.3) ----

TEST(KeyUpdateTest, BothSidesUpdateAndDataStillFlows) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.3"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().KeyUpdate(/*request_peer=*/true).ok());
  pair.Pump();
  pair.SendAll(pair.server_side(), "new keys");
  pair.SendAll(pair.client_side(), "mine too");
  EXPECT_EQ(pair.client().stats().key_updates_sent, 1u);
  EXPECT_EQ(pair.server().stats().key_updates_received, 1u);
  EXPECT_EQ(pair.server().stats().key_updates_sent, 1u);  // it was asked to update too
  EXPECT_EQ(pair.client().stats().key_updates_received, 1u);
  EXPECT_EQ(pair.client_side().received, "new keys");
  EXPECT_EQ(pair.server_side().received, "mine too");
  ASSERT_TRUE(pair.server().KeyUpdate(/*request_peer=*/false).ok());
  pair.Pump();
  EXPECT_EQ(pair.server().stats().key_updates_sent, 2u);
  EXPECT_EQ(pair.client().stats().key_updates_sent, 1u);  // not asked this time
}

TEST(KeyUpdateTest, NotOnTls12) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.2"), ClientOptions());
  EXPECT_EQ(NodeCode(pair.client().KeyUpdate(true)), "ERR_TLS_INVALID_STATE");
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().KeyUpdate(true).code(), absl::StatusCode::kFailedPrecondition);
}

// ---- Smaller controls ----

std::vector<size_t> RecordLengths(absl::Span<const uint8_t> wire) {
  std::vector<size_t> lengths;
  for (size_t at = 0; at + 5 <= wire.size(); at += 5 + ((size_t{wire[at + 3]} << 8) | wire[at + 4])) {
    lengths.push_back((size_t{wire[at + 3]} << 8) | wire[at + 4]);
  }
  return lengths;
}

TEST_P(VersionTest, SetMaxSendFragmentBoundsRecordsOnTheWire) {
  EnginePair pair(ServerOptions("server-ecdsa", GetParam()), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  pair.Pump();
  EXPECT_FALSE(pair.client().SetMaxSendFragment(511));
  EXPECT_FALSE(pair.client().SetMaxSendFragment(16385));
  ASSERT_TRUE(pair.client().SetMaxSendFragment(512));
  std::string payload(5000, 'f');
  EXPECT_TRUE(pair.client().Write(payload).ok());
  auto out = pair.client().Output();
  ASSERT_EQ(out.size(), 1u);
  std::vector<size_t> lengths = RecordLengths(out[0]);
  ASSERT_EQ(lengths.size(), 10u);  // ceil(5000 / 512)
  for (size_t len : lengths) EXPECT_LE(len, 512u + 256u);  // plaintext + AEAD expansion
  pair.Pump();
  EXPECT_EQ(pair.server_side().received, payload);
  EXPECT_TRUE(pair.client().SetMaxSendFragment(16384));
}

TEST_P(VersionTest, KeylogLinesInNssFormat) {
  ConnectionOptions co = ClientOptions();
  co.keylog = true;
  EnginePair pair(ServerOptions("server-ecdsa", GetParam()), co);
  ASSERT_TRUE(pair.Handshake().ok());
  std::vector<std::string> labels;
  for (const Event& e : pair.client_side().log) {
    if (e.type != EventType::kKeylog) continue;
    std::vector<std::string> parts = absl::StrSplit(e.line, ' ');
    ASSERT_EQ(parts.size(), 3u) << e.line;
    EXPECT_EQ(parts[1].size(), 64u);  // client random, hex
    labels.push_back(parts[0]);
  }
  if (GetParam() == "TLSv1.2") {
    EXPECT_EQ(labels, std::vector<std::string>{"CLIENT_RANDOM"});
  } else {
    EXPECT_NE(std::find(labels.begin(), labels.end(), "CLIENT_TRAFFIC_SECRET_0"), labels.end());
    EXPECT_NE(std::find(labels.begin(), labels.end(), "SERVER_HANDSHAKE_TRAFFIC_SECRET"), labels.end());
  }
  EXPECT_FALSE(pair.server_side().Saw(EventType::kKeylog));  // not asked for
}

TEST_P(VersionTest, ExportedKeyingMaterialAndFinishedMessagesAgree) {
  EnginePair pair(ServerOptions("server-ecdsa", GetParam()), ClientOptions());
  EXPECT_EQ(NodeCode(pair.client().ExportKeyingMaterial(32, "label").status()), "ERR_TLS_INVALID_STATE");
  ASSERT_TRUE(pair.Handshake().ok());
  absl::StatusOr<std::string> c = pair.client().ExportKeyingMaterial(32, "EXPERIMENTAL my label", "ctx");
  absl::StatusOr<std::string> s = pair.server().ExportKeyingMaterial(32, "EXPERIMENTAL my label", "ctx");
  ASSERT_TRUE(c.ok() && s.ok());
  EXPECT_EQ(c->size(), 32u);
  EXPECT_EQ(*c, *s);
  EXPECT_NE(*c, *pair.client().ExportKeyingMaterial(32, "EXPERIMENTAL my label"));
  EXPECT_EQ(NodeCode(pair.client().ExportKeyingMaterial(0, "x").status()), "ERR_INVALID_ARG_VALUE");
  EXPECT_FALSE(pair.client().GetFinished().empty());
  EXPECT_EQ(pair.client().GetFinished(), pair.server().GetPeerFinished());
  EXPECT_EQ(pair.server().GetFinished(), pair.client().GetPeerFinished());
  EXPECT_NE(pair.client().GetFinished(), pair.server().GetFinished());
}

// Also the test that `dhparam` enables DHE suites.
TEST(InfoTest, EphemeralKeyInfoShowsForwardSecrecy) {
  EnginePair x25519(ServerOptions("server-ecdsa"), ClientOptions());
  ASSERT_TRUE(x25519.Handshake().ok());
  std::optional<EphemeralKeyInfo> k = x25519.client().GetEphemeralKeyInfo();
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->type, "ECDH");
  EXPECT_EQ(k->name, "X25519");
  EXPECT_EQ(k->size, 253);
  EXPECT_FALSE(x25519.server().GetEphemeralKeyInfo().has_value());  // Node: client only

  SecureContextOptions p256;
  p256.ecdh_curve = "P-256";
  EnginePair ec(ServerOptions("server-ecdsa"), ClientWith(p256));
  ASSERT_TRUE(ec.Handshake().ok());
  EXPECT_EQ(ec.client().GetEphemeralKeyInfo()->name, "prime256v1");
  EXPECT_EQ(ec.client().GetEphemeralKeyInfo()->size, 256);

  SecureContextOptions server = IdentityOptions("server-rsa");
  server.dhparam = ReadTestFile("dhparam-2048.pem");
  SecureContextOptions dhe;
  dhe.max_version = "TLSv1.2";
  dhe.ciphers = "DHE-RSA-AES256-GCM-SHA384";
  EnginePair dh(ServerWith(server), ClientWith(dhe));
  ASSERT_TRUE(dh.Handshake().ok());
  EXPECT_EQ(dh.client().GetCipher()->name, "DHE-RSA-AES256-GCM-SHA384");
  EXPECT_EQ(dh.client().GetEphemeralKeyInfo()->type, "DH");
  EXPECT_EQ(dh.client().GetEphemeralKeyInfo()->size, 2048);
}

TEST(InfoTest, SharedSignatureAlgorithms) {
  EnginePair pair(ServerOptions("server-ecdsa", "TLSv1.2"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::vector<std::string> algs = pair.server().GetSharedSigalgs();
  ASSERT_FALSE(algs.empty());
  EXPECT_NE(std::find(algs.begin(), algs.end(), "ECDSA+SHA256"), algs.end());
  EXPECT_NE(std::find(algs.begin(), algs.end(), "RSA-PSS+SHA256"), algs.end());
}

INSTANTIATE_TEST_SUITE_P(Versions, VersionTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

}  // namespace
}  // namespace tlsengine
