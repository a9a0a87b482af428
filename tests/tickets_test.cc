// Session tickets, engine against engine in memory: which context's ticket
// keys issue and accept tickets when SNI switches contexts.
#include <openssl/ssl.h>

#include <string>

#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::IdentityOptions;
using testing::MakeContext;

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

// Handshakes `server` with `client`; returns the client's latest
// session ("" when the handshake failed, which the test reports).
std::string Connect(ConnectionOptions server, ConnectionOptions client, bool expect_reused) {
  EnginePair pair(std::move(server), std::move(client));
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

INSTANTIATE_TEST_SUITE_P(Versions, TicketTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "TLSv1.2" ? "Tls12" : "Tls13";
                         });

}  // namespace
}  // namespace tlsengine
