// AnswerByDefault: each suspension answered as Node does without a hook,
// and nothing else touched.
#include "core/default_answers.h"

#include <openssl/ssl.h>

#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::ServerOptions;

void AnswerAll(TlsConnection& conn, const Event& event) { ASSERT_TRUE(AnswerByDefault(conn, event).ok()); }

TEST(DefaultAnswersTest, NamesTheFourSuspensions) {
  for (EventType t : {EventType::kSniRequest, EventType::kResumeSession, EventType::kNewSession,
                      EventType::kOcspRequest}) {
    EXPECT_TRUE(IsSuspension(t)) << EventTypeName(t);
  }
  for (EventType t : {EventType::kData, EventType::kSecure, EventType::kSession, EventType::kError,
                      EventType::kOcspResponse, EventType::kDrain}) {
    EXPECT_FALSE(IsSuspension(t)) << EventTypeName(t);
  }
}

TEST(DefaultAnswersTest, SniAndOcspAnsweredCompleteTheHandshake) {
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    ConnectionOptions so = ServerOptions("server-rsa", version);
    so.sni_callback = true;
    so.ocsp_request = true;
    ConnectionOptions co = ClientOptions(version);
    co.request_ocsp = true;
    EnginePair pair(so, co);
    pair.server_side().hook = AnswerAll;
    ASSERT_TRUE(pair.Handshake().ok()) << version;
    EXPECT_TRUE(pair.server_side().Saw(EventType::kSniRequest)) << version;
    EXPECT_TRUE(pair.server_side().Saw(EventType::kOcspRequest)) << version;
    // SNI keeps the configured context; OCSP staples nothing.
    EXPECT_EQ(pair.client().GetPeerCertificate()->raw, pair.server().GetCertificate()->raw) << version;
    EXPECT_TRUE(pair.client_side().Saw(EventType::kOcspResponse)) << version;
    EXPECT_EQ(pair.client_side().First(EventType::kOcspResponse).ocsp_response, "") << version;
  }
}

TEST(DefaultAnswersTest, SessionsAcknowledgedButNotKept) {
  // TLS 1.2 session ids (the client takes no ticket): the external cache.
  ConnectionOptions so = ServerOptions("server-rsa", "TLSv1.2");
  so.session_cache = true;
  SecureContextOptions no_ticket;
  no_ticket.max_version = "TLSv1.2";
  no_ticket.secure_options = SSL_OP_NO_TICKET;
  EnginePair first(so, testing::ClientWith(no_ticket));
  first.server_side().hook = AnswerAll;
  ASSERT_TRUE(first.Handshake().ok());
  EXPECT_TRUE(first.server_side().Saw(EventType::kNewSession));
  // The default lookup finds nothing: a full handshake.
  ConnectionOptions again = testing::ClientWith(no_ticket);
  again.session = first.client().GetSession();
  EnginePair second(so, again);
  second.server_side().hook = AnswerAll;
  ASSERT_TRUE(second.Handshake().ok());
  EXPECT_TRUE(second.server_side().Saw(EventType::kResumeSession));
  EXPECT_FALSE(second.client().is_session_reused());
}

TEST(DefaultAnswersTest, NotASuspensionOrAnsweredTwice) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  Event data;
  data.type = EventType::kData;
  EXPECT_TRUE(AnswerByDefault(pair.server(), data).ok());  // nothing to do
  Event sni;
  sni.type = EventType::kSniRequest;
  EXPECT_EQ(NodeCode(AnswerByDefault(pair.server(), sni)), "ERR_TLS_INVALID_STATE");
  Event ack;
  ack.type = EventType::kNewSession;
  absl::Status s = AnswerByDefault(pair.server(), ack);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodeCode(s), "ERR_TLS_INVALID_STATE");
}

}  // namespace
}  // namespace tlsengine
