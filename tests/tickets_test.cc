// Session tickets and session lifetimes, engine against engine in memory:
// which context's ticket keys issue and accept tickets when SNI switches
// contexts, and session expiry measured on the engine's clock (`now`), not
// on OpenSSL's time(NULL).
#include <openssl/ssl.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "core/errors.h"
#include "core/openssl_interop.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::IdentityOptions;
using testing::MakeContext;
using testing::TestNow;

constexpr char kSniName[] = "other.example.com";

std::string TicketKey(char fill) { return std::string(48, fill); }

// A context for `identity` at `version` with `keys` ({} for none given).
std::shared_ptr<const SecureContext> Context(const std::string& identity, const std::string& version,
                                             std::vector<std::string> keys) {
  SecureContextOptions o = IdentityOptions(identity, version);
  o.ticket_keys = std::move(keys);
  return MakeContext(o);
}

// A server whose default context is `default_context` and which serves
// kSniName from `sni_context`.
ConnectionOptions SniServer(std::shared_ptr<const SecureContext> default_context,
                            std::shared_ptr<const SecureContext> sni_context) {
  ConnectionOptions so;
  so.is_server = true;
  so.secure_context = std::move(default_context);
  so.sni_contexts = std::make_shared<SniContexts>();
  EXPECT_TRUE(so.sni_contexts->Add(kSniName, std::move(sni_context)).ok());
  return so;
}

ConnectionOptions SniClient(const std::string& servername = kSniName, const std::string& session = "") {
  ConnectionOptions co = ClientOptions();
  co.servername = servername;
  co.session = session;
  return co;
}

// Handshakes `server` with `client` at `now`; returns the client's latest
// session ("" when the handshake failed, which the test reports).
std::string Connect(ConnectionOptions server, ConnectionOptions client, bool expect_reused,
                    absl::Time now = TestNow()) {
  EnginePair pair(std::move(server), std::move(client), now);
  absl::Status status = pair.Handshake();
  EXPECT_TRUE(status.ok()) << status;
  if (!status.ok()) return "";
  pair.Pump();  // TLS 1.3 tickets arrive after the handshake
  EXPECT_EQ(pair.client().is_session_reused(), expect_reused);
  EXPECT_EQ(pair.server().is_session_reused(), expect_reused);
  EXPECT_TRUE(pair.client().authorized()) << pair.client().authorization_error();
  return pair.client().GetSession();
}

class TicketTest : public ::testing::TestWithParam<const char*> {};

// ---- Ticket keys with SNI: the serving context's keys rule ----

struct KeyPlacement {
  bool on_default;
  bool on_sni;
};

TEST_P(TicketTest, SniHandshakesSucceedAndResumeWhereverTheKeysAre) {
  for (KeyPlacement where : {KeyPlacement{true, false}, KeyPlacement{false, true}, KeyPlacement{true, true}}) {
    SCOPED_TRACE(::testing::Message() << "keys on default: " << where.on_default << ", on SNI: " << where.on_sni);
    auto default_context = Context("server-rsa", GetParam(), where.on_default ? std::vector{TicketKey('d')}
                                                                             : std::vector<std::string>{});
    auto sni_context =
        Context("other-name", GetParam(), where.on_sni ? std::vector{TicketKey('s')} : std::vector<std::string>{});
    std::string session = Connect(SniServer(default_context, sni_context), SniClient(), false);
    ASSERT_FALSE(session.empty());
    // Another server engine on the same contexts resumes.
    std::string renewed = Connect(SniServer(default_context, sni_context), SniClient(kSniName, session), true);
    ASSERT_FALSE(renewed.empty());
    // The default context still works too.
    Connect(SniServer(default_context, sni_context), SniClient("localhost"), false);
  }
}

TEST_P(TicketTest, ServersSharingSniTicketKeysResumeEachOthersTickets) {
  // Two servers (two processes of a fleet): each has its own default
  // context with its own random keys, and an SNI context with shared keys.
  auto server_a = SniServer(Context("server-rsa", GetParam(), {}), Context("other-name", GetParam(), {TicketKey('k')}));
  auto server_b = SniServer(Context("server-rsa", GetParam(), {}), Context("other-name", GetParam(), {TicketKey('k')}));
  std::string session = Connect(server_a, SniClient(), false);
  ASSERT_FALSE(session.empty());
  std::string renewed = Connect(server_b, SniClient(kSniName, session), true);
  ASSERT_FALSE(renewed.empty());
  // The renewed ticket (TLS 1.3 tickets are single-use) resumes on A.
  Connect(server_a, SniClient(kSniName, renewed), true);
}

TEST_P(TicketTest, TicketFromOneSniContextIsRefusedByAnother) {
  ConnectionOptions server = SniServer(Context("server-rsa", GetParam(), {TicketKey('d')}),
                                       Context("other-name", GetParam(), {TicketKey('a')}));
  ASSERT_TRUE(server.sni_contexts->Add("*.example.com", Context("wildcard", GetParam(), {TicketKey('b')})).ok());
  std::string session = Connect(server, SniClient(), false);
  ASSERT_FALSE(session.empty());
  Connect(server, SniClient("a.example.com", session), false);
  // Nor does the default context take it.
  Connect(server, SniClient("localhost", session), false);
  // The context that issued it does.
  Connect(server, SniClient(kSniName, session), true);
}

TEST_P(TicketTest, SniTicketKeysRotate) {
  auto default_context = Context("server-rsa", GetParam(), {});
  std::string session =
      Connect(SniServer(default_context, Context("other-name", GetParam(), {TicketKey('a')})), SniClient(), false);
  ASSERT_FALSE(session.empty());
  // A new key first, the old one still accepted.
  Connect(SniServer(default_context, Context("other-name", GetParam(), {TicketKey('b'), TicketKey('a')})),
          SniClient(kSniName, session), true);
  // The old key dropped: a full handshake.
  Connect(SniServer(default_context, Context("other-name", GetParam(), {TicketKey('b')})),
          SniClient(kSniName, session), false);
}

TEST_P(TicketTest, SharedTicketKeySetRekeysItsContextsInPlace) {
  // A default and an SNI context reading one key set, as a Server's do.
  std::shared_ptr<TicketKeys> keys = *TicketKeys::Create({TicketKey('a')});
  auto with_set = [&](const std::string& identity) {
    SecureContextOptions o = IdentityOptions(identity, GetParam());
    o.ticket_key_set = keys;
    return MakeContext(o);
  };
  auto default_context = with_set("server-rsa");
  auto sni_context = with_set("other-name");
  ASSERT_EQ(sni_context->ticket_key_set(), keys);
  SSL_CTX* const default_handle = NativeHandle(*default_context);
  SSL_CTX* const sni_handle = NativeHandle(*sni_context);
  std::string under_a = Connect(SniServer(default_context, sni_context), SniClient(), false);
  ASSERT_FALSE(under_a.empty());

  // New key first, the old kept: the same SSL_CTXs resume the old ticket.
  ASSERT_TRUE(keys->Set({TicketKey('b'), TicketKey('a')}).ok());
  EXPECT_EQ(NativeHandle(*default_context), default_handle);
  EXPECT_EQ(NativeHandle(*sni_context), sni_handle);
  Connect(SniServer(default_context, sni_context), SniClient(kSniName, under_a), true);
  std::string under_b = Connect(SniServer(default_context, sni_context), SniClient(), false);
  ASSERT_FALSE(under_b.empty());

  // The old key gone: its ticket means a full handshake; b's resumes, so
  // it was issued under b.
  ASSERT_TRUE(keys->Set({TicketKey('b')}).ok());
  Connect(SniServer(default_context, sni_context), SniClient(kSniName, under_a), false);
  Connect(SniServer(default_context, sni_context), SniClient(kSniName, under_b), true);
  Connect(SniServer(default_context, sni_context), SniClient("localhost"), false);
}

TEST(TicketKeysTest, BadKeysAreRefusedAndChangeNothing) {
  std::shared_ptr<TicketKeys> keys = *TicketKeys::Create({});
  ASSERT_EQ(keys->Get()->size(), 1u) << "no keys: one random key";
  EXPECT_EQ(keys->Get()->front().size(), 48u);
  const std::vector<std::string> before = *keys->Get();
  absl::Status short_key = keys->Set({std::string(47, 'x')});
  EXPECT_EQ(short_key.code(), absl::StatusCode::kInvalidArgument) << short_key;
  EXPECT_EQ(NodeCode(short_key), kErrInvalidArgValue);
  EXPECT_TRUE(absl::StrContains(short_key.message(), "48 bytes, got 47")) << short_key;
  absl::Status none = keys->Set({});
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument) << none;
  EXPECT_EQ(NodeCode(none), kErrInvalidArgValue);
  EXPECT_EQ(*keys->Get(), before);
  absl::StatusOr<std::shared_ptr<TicketKeys>> bad = TicketKeys::Create({std::string(49, 'x')});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(NodeCode(bad.status()), kErrInvalidArgValue);
  // A context takes a set or keys, not both.
  SecureContextOptions both = IdentityOptions("server-rsa", "TLSv1.3");
  both.ticket_key_set = keys;
  both.ticket_keys = {TicketKey('k')};
  absl::StatusOr<std::shared_ptr<const SecureContext>> refused = SecureContext::Create(both);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(refused.status()), kErrInvalidArgValue);
  // Keys given as ticket_keys make a set of the context's own.
  SecureContextOptions own = IdentityOptions("server-rsa", "TLSv1.3");
  own.ticket_keys = {TicketKey('k')};
  auto context = MakeContext(own);
  EXPECT_EQ(*context->ticket_key_set()->Get(), std::vector<std::string>{TicketKey('k')});
}

TEST_P(TicketTest, NoTicketOnTheSniContextIsRespected) {
  SecureContextOptions o = IdentityOptions("other-name", GetParam());
  o.ticket_keys = {TicketKey('s')};
  o.secure_options = SSL_OP_NO_TICKET;
  auto sni_context = MakeContext(o);
  auto default_context = Context("server-rsa", GetParam(), {TicketKey('s')});  // the same key
  EnginePair pair(SniServer(default_context, sni_context), SniClient());
  ASSERT_TRUE(pair.Handshake().ok());
  pair.Pump();
  EXPECT_EQ(pair.client().GetTlsTicket(), "");
  Connect(SniServer(default_context, sni_context), SniClient(kSniName, pair.client().GetSession()), false);
}

// ---- Session expiry follows the engine's clock ----

constexpr int64_t kTimeout = 300;

std::shared_ptr<const SecureContext> ExpiringContext(const std::string& version) {
  SecureContextOptions o = IdentityOptions("server-rsa", version);
  o.session_timeout = kTimeout;
  return MakeContext(o);
}

ConnectionOptions ServerOn(std::shared_ptr<const SecureContext> context) {
  ConnectionOptions so;
  so.is_server = true;
  so.secure_context = std::move(context);
  return so;
}

ConnectionOptions ResumingClient(const std::string& session) {
  ConnectionOptions co = ClientOptions();
  co.session = session;
  return co;
}

// Engine clocks on either side of OpenSSL's time(NULL): TestNow() (2030)
// is after it; 2026-11-30 is before it (by more than the session timeout,
// for any run after that day) and after ca1's notBefore (2026-11-29).
absl::Time EngineClockBehindTheRealOne() { return absl::FromUnixSeconds(1795996800); }

TEST_P(TicketTest, TicketsExpireOnTheEngineClock) {
  for (absl::Time start : {TestNow(), EngineClockBehindTheRealOne()}) {
    SCOPED_TRACE(absl::FormatTime(start));
    auto context = ExpiringContext(GetParam());
    std::string session = Connect(ServerOn(context), ClientOptions(), false, start);
    ASSERT_FALSE(session.empty());
    Connect(ServerOn(context), ResumingClient(session), true, start + absl::Seconds(kTimeout - 1));
    Connect(ServerOn(context), ResumingClient(session), false, start + absl::Seconds(kTimeout));
    Connect(ServerOn(context), ResumingClient(session), false, start + absl::Seconds(kTimeout + 1));
  }
}

TEST(TicketExpiryTest, RenewedTls13TicketCountsFromItsRenewal) {
  auto context = ExpiringContext("TLSv1.3");
  std::string session = Connect(ServerOn(context), ClientOptions(), false);
  ASSERT_FALSE(session.empty());
  std::string renewed = Connect(ServerOn(context), ResumingClient(session), true, TestNow() + absl::Seconds(200));
  ASSERT_FALSE(renewed.empty());
  Connect(ServerOn(context), ResumingClient(renewed), true, TestNow() + absl::Seconds(400));
  Connect(ServerOn(context), ResumingClient(renewed), false, TestNow() + absl::Seconds(501));
}

TEST(TicketExpiryTest, RenewedTls12TicketKeepsTheSessionsLifetime) {
  // TLS 1.2 resumption continues the original session (RFC 5077 §3.3): a
  // ticket renewed under a rotated key still expires with the session.
  SecureContextOptions o = IdentityOptions("server-rsa", "TLSv1.2");
  o.session_timeout = kTimeout;
  o.ticket_keys = {TicketKey('a')};
  std::string session = Connect(ServerOn(MakeContext(o)), ClientOptions(), false);
  ASSERT_FALSE(session.empty());
  o.ticket_keys = {TicketKey('b'), TicketKey('a')};
  auto rotated = MakeContext(o);
  std::string renewed = Connect(ServerOn(rotated), ResumingClient(session), true, TestNow() + absl::Seconds(200));
  ASSERT_FALSE(renewed.empty());
  ASSERT_NE(renewed, session) << "a ticket under the old key is renewed";
  Connect(ServerOn(rotated), ResumingClient(renewed), true, TestNow() + absl::Seconds(kTimeout - 1));
  Connect(ServerOn(rotated), ResumingClient(renewed), false, TestNow() + absl::Seconds(kTimeout + 1));
}

// TLS 1.2 session ids kept by the application (newSession/resumeSession).
TEST(SessionIdExpiryTest, SessionIdsExpireOnTheEngineClock) {
  for (absl::Time start : {TestNow(), EngineClockBehindTheRealOne()}) {
    SCOPED_TRACE(absl::FormatTime(start));
    SecureContextOptions o = IdentityOptions("server-rsa", "TLSv1.2");
    o.session_timeout = kTimeout;
    auto context = MakeContext(o);
    std::map<std::string, std::string> store;
    auto caching_server = [&] {
      ConnectionOptions so = ServerOn(context);
      so.session_cache = true;
      return so;
    };
    auto hook = [&store](TlsConnection& c, const Event& e) {
      if (e.type == EventType::kNewSession) {
        store[e.session_id] = e.session;
        ASSERT_TRUE(c.AckNewSession().ok());
      }
      if (e.type == EventType::kResumeSession) {
        auto it = store.find(e.session_id);
        ASSERT_NE(it, store.end());
        ASSERT_TRUE(c.AnswerResumeSession(it->second).ok());
      }
    };
    SecureContextOptions no_ticket;
    no_ticket.max_version = "TLSv1.2";
    no_ticket.secure_options = SSL_OP_NO_TICKET;
    ConnectionOptions client = testing::ClientWith(no_ticket);

    EnginePair first(caching_server(), client, start);
    first.server_side().hook = hook;
    absl::Status status = first.Handshake();
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(store.size(), 1u);
    client.session = first.client().GetSession();
    for (const auto& [age, reused] : {std::pair{kTimeout - 1, true}, std::pair{kTimeout + 1, false}}) {
      EnginePair again(caching_server(), client, start + absl::Seconds(age));
      again.server_side().hook = hook;
      status = again.Handshake();
      ASSERT_TRUE(status.ok()) << age << ": " << status;
      EXPECT_TRUE(again.server_side().Saw(EventType::kResumeSession)) << age;
      EXPECT_EQ(again.client().is_session_reused(), reused) << age;
      EXPECT_EQ(again.server().is_session_reused(), reused) << age;
    }
  }
}

// The decoded session (kSession's session_handle, GetSessionHandle) resumes
// as the serialized one does, and one handle serves many connections: each
// resumes from its own copy, so a connection dropped without close_notify
// (which makes OpenSSL mark its session not resumable) spoils nothing.
TEST_P(TicketTest, SessionHandleResumesAgainAndAgain) {
  auto context = MakeContext(IdentityOptions("server-rsa", GetParam()));
  EnginePair first(ServerOn(context), ClientOptions());
  ASSERT_TRUE(first.Handshake().ok());
  first.Pump();
  std::shared_ptr<const TlsSession> handle = first.client().GetSessionHandle();
  ASSERT_NE(handle, nullptr);
  EXPECT_EQ(handle->Serialize(), first.client().GetSession());
  for (int i = 0; i < 3; ++i) {
    ConnectionOptions client = ClientOptions();
    client.session_handle = handle;
    EnginePair again(ServerOn(context), client);
    absl::Status status = again.Handshake();
    ASSERT_TRUE(status.ok()) << i << ": " << status;
    EXPECT_TRUE(again.client().is_session_reused()) << i;
    EXPECT_TRUE(again.client().authorized()) << i;
  }
  absl::StatusOr<std::shared_ptr<const TlsSession>> decoded = TlsSession::FromDer(handle->Serialize());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ConnectionOptions client = ClientOptions();
  client.session_handle = *decoded;
  EnginePair from_der(ServerOn(context), client);
  ASSERT_TRUE(from_der.Handshake().ok());
  EXPECT_TRUE(from_der.client().is_session_reused());
}

TEST(SessionHandleTest, GivingBothFormsOrGarbageIsRefused) {
  auto context = MakeContext(IdentityOptions("server-rsa", "TLSv1.3"));
  EnginePair first(ServerOn(context), ClientOptions());
  ASSERT_TRUE(first.Handshake().ok());
  first.Pump();
  ConnectionOptions both = ClientOptions();
  both.session = first.client().GetSession();
  both.session_handle = first.client().GetSessionHandle();
  absl::StatusOr<std::unique_ptr<TlsConnection>> conn = TlsConnection::Create(both, TestNow());
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::shared_ptr<const TlsSession>> garbage = TlsSession::FromDer("not a session");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(NodeCode(garbage.status()), "ERR_INVALID_ARG_VALUE");
}

INSTANTIATE_TEST_SUITE_P(Versions, TicketTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "TLSv1.2" ? "Tls12" : "Tls13";
                         });

}  // namespace
}  // namespace tlsengine
