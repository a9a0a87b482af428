// Certificate verification: every failure code Node reports, with and
// without rejectUnauthorized, on both sides.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "core/errors.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::Cert;
using testing::Chain;
using testing::ClientOptions;
using testing::EnginePair;
using testing::IdentityOptions;
using testing::Key;
using testing::MakeContext;
using testing::ReadTestFile;
using testing::ServerOptions;

struct VerifyCase {
  const char* name;
  std::string server_key, server_cert;  // PEM
  std::vector<std::string> client_ca;
  std::vector<std::string> client_crl;
  std::string servername;
  std::string code;     // expected authorizationError / error code
  std::string message;  // expected message
};

void PrintTo(const VerifyCase& c, std::ostream* os) { *os << c.name; }

std::vector<VerifyCase> Cases() {
  return {
      {"UntrustedRoot", Key("server-rsa"), Chain("server-rsa"), {Cert("ca2")}, {}, "localhost",
       "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "unable to get local issuer certificate"},
      {"MissingIntermediate", Key("server-rsa"), Cert("server-rsa"), {Cert("ca1")}, {}, "localhost",
       "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"},
      {"SelfSignedLeaf", Key("self-signed"), Cert("self-signed"), {Cert("ca1")}, {}, "localhost",
       "DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"},
      {"SelfSignedRootInChain", Key("server-rsa"), Chain("server-rsa") + Cert("ca1"), {Cert("ca2")}, {}, "localhost",
       "SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"},
      {"Expired", Key("expired"), Chain("expired"), {Cert("ca1")}, {}, "localhost", "CERT_HAS_EXPIRED",
       "certificate has expired"},
      {"NotYetValid", Key("not-yet-valid"), Chain("not-yet-valid"), {Cert("ca1")}, {}, "localhost",
       "CERT_NOT_YET_VALID", "certificate is not yet valid"},
      {"Revoked", Key("revoked"), Chain("revoked"), {Cert("ca1")}, {ReadTestFile("crl-chain.pem")}, "localhost",
       "CERT_REVOKED", "certificate revoked"},
      {"CrlMissingForOneLevel", Key("server-rsa"), Chain("server-rsa"), {Cert("ca1")},
       {ReadTestFile("int1-crl.pem")}, "localhost", "UNABLE_TO_GET_CRL", "unable to get certificate CRL"},
      {"ClientOnlyCertificateOnAServer", Key("client"), Chain("client"), {Cert("ca1")}, {}, "localhost",
       "INVALID_PURPOSE", "unsuitable certificate purpose"},
      {"WrongHostName", Key("server-rsa"), Chain("server-rsa"), {Cert("ca1")}, {}, "other.example.com",
       "ERR_TLS_CERT_ALTNAME_INVALID",
       "Hostname/IP does not match certificate's altnames: Host: other.example.com. is not in the cert's "
       "altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"},
      {"WildcardTooDeep", Key("wildcard"), Chain("wildcard"), {Cert("ca1")}, {}, "a.b.example.com",
       "ERR_TLS_CERT_ALTNAME_INVALID",
       "Hostname/IP does not match certificate's altnames: Host: a.b.example.com. is not in the cert's "
       "altnames: DNS:*.example.com"},
      // CVE-2021-44532: names smuggled inside a URI or one DNS name, or
      // behind an embedded NUL, never match (messages as Node 20's).
      {"UriSanSmugglesNoDnsName", Key("san-uri-smuggle"), Chain("san-uri-smuggle"), {Cert("ca1")}, {},
       "victim.example", "ERR_TLS_CERT_ALTNAME_INVALID",
       "Hostname/IP does not match certificate's altnames: Host: victim.example. is not in the cert's "
       "altnames: DNS:attacker.example, URI:\"spiffe://x/y\\u002c DNS:victim.example\""},
      {"DnsSanWithACommaIsOneName", Key("san-dns-comma"), Chain("san-dns-comma"), {Cert("ca1")}, {},
       "victim.example", "ERR_TLS_CERT_ALTNAME_INVALID",
       "Hostname/IP does not match certificate's altnames: Host: victim.example. is not in the cert's "
       "altnames: DNS:\"attacker.example\\u002c DNS:victim.example\""},
      {"DnsSanWithNulMatchesNothing", Key("san-nul"), Chain("san-nul"), {Cert("ca1")}, {}, "victim.example",
       "ERR_TLS_CERT_ALTNAME_INVALID",
       "Hostname/IP does not match certificate's altnames: Host: victim.example. is not in the cert's "
       "altnames: DNS:\"victim.example\\u0000.attacker.example\", URI:https://victim.example/, "
       "email:admin@victim.example"},
  };
}

class VerifyFailureTest : public ::testing::TestWithParam<VerifyCase> {
 protected:
  EnginePair MakePair(bool reject) {
    const VerifyCase& c = GetParam();
    SecureContextOptions server;
    server.key = {c.server_key};
    server.cert = {c.server_cert};
    SecureContextOptions client;
    client.ca = c.client_ca;
    client.crl = c.client_crl;
    ConnectionOptions so;
    so.is_server = true;
    so.secure_context = MakeContext(server);
    ConnectionOptions co;
    co.secure_context = MakeContext(client);
    co.servername = c.servername;
    co.reject_unauthorized = reject;
    return EnginePair(so, co);
  }
};

TEST_P(VerifyFailureTest, RejectUnauthorizedEndsTheHandshakeWithTheCode) {
  EnginePair pair = MakePair(/*reject=*/true);
  absl::Status s = pair.Handshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_EQ(NodeCode(s), GetParam().code);
  EXPECT_EQ(s.message(), GetParam().message);
  EXPECT_FALSE(pair.client().authorized());
  EXPECT_FALSE(pair.client().secure());
  // The alert reached the server, which fails too, and says why.
  ASSERT_TRUE(AlertOf(s).has_value());
  EXPECT_EQ(AlertOf(pair.server_side().error), AlertOf(s));
  EXPECT_EQ(pair.server_side().error.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(NodeCode(pair.server_side().error).rfind("ERR_SSL_", 0), 0u) << pair.server_side().error;
  EXPECT_FALSE(pair.server_side().Saw(EventType::kSecure));
}

TEST_P(VerifyFailureTest, WithoutRejectTheConnectionIsSecureButUnauthorized) {
  EnginePair pair = MakePair(/*reject=*/false);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.client().authorized());
  EXPECT_EQ(pair.client().authorization_error(), GetParam().code);
  EXPECT_EQ(pair.client().authorization_status().message(), GetParam().message);
  EXPECT_TRUE(pair.client_side().Saw(EventType::kSecure));
}

INSTANTIATE_TEST_SUITE_P(Cases, VerifyFailureTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(VerifyTest, HostnameIsNotCheckedWhenTheChainFailed) {
  // Node checks the identity only when the chain is good: the chain's code wins.
  SecureContextOptions client;
  client.ca = std::vector<std::string>{Cert("ca2")};
  ConnectionOptions co;
  co.secure_context = MakeContext(client);
  co.servername = "other.example.com";
  co.reject_unauthorized = false;
  EnginePair pair(ServerOptions(), co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().authorization_error(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
}

TEST(VerifyTest, IpHostsAreCheckedAgainstIpAltNames) {
  ConnectionOptions co = ClientOptions();
  co.servername = "";
  co.host = "127.0.0.1";
  EnginePair ok(ServerOptions(), co);
  ASSERT_TRUE(ok.Handshake().ok());
  EXPECT_TRUE(ok.client().authorized());
  EXPECT_EQ(ok.server().servername(), "");  // an IP literal is never sent as SNI
  co.host = "127.0.0.2";
  EnginePair bad(ServerOptions(), co);
  absl::Status s = bad.Handshake();
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(),
            "Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: "
            "127.0.0.1, 0:0:0:0:0:0:0:1");
}

TEST(VerifyTest, HostIsSentAsSniWhenNoServernameIsGiven) {
  ConnectionOptions co = ClientOptions();
  co.servername = "";
  co.host = "localhost";
  EnginePair pair(ServerOptions(), co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.server().servername(), "localhost");
}

TEST(VerifyTest, CustomCheckServerIdentityCanAcceptAndReject) {
  ConnectionOptions co = ClientOptions();
  co.servername = "other.example.com";
  std::string seen_host, seen_cn;
  co.check_server_identity = [&](absl::string_view host, const CertificateInfo& cert) {
    seen_host = std::string(host);
    seen_cn = cert.subject.Get("CN");
    return absl::OkStatus();
  };
  EnginePair accept(ServerOptions(), co);
  ASSERT_TRUE(accept.Handshake().ok());
  EXPECT_TRUE(accept.client().authorized());
  EXPECT_EQ(seen_host, "other.example.com");
  EXPECT_EQ(seen_cn, "localhost");

  co.servername = "localhost";
  co.check_server_identity = [](absl::string_view, const CertificateInfo&) {
    return MakeError(absl::StatusCode::kUnauthenticated, "ERR_PINNED_KEY_MISMATCH", "pin mismatch");
  };
  EnginePair reject(ServerOptions(), co);
  absl::Status s = reject.Handshake();
  EXPECT_EQ(NodeCode(s), "ERR_PINNED_KEY_MISMATCH");
  EXPECT_EQ(s.message(), "pin mismatch");

  co.check_server_identity = [](absl::string_view, const CertificateInfo&) {
    return absl::PermissionDeniedError("no code given");
  };
  EnginePair uncoded(ServerOptions(), co);
  EXPECT_EQ(NodeCode(uncoded.Handshake()), "ERR_TLS_CERT_ALTNAME_INVALID");
}

TEST(VerifyTest, TheRealDnsNameOfASmugglingCertificateStillMatches) {
  ConnectionOptions co = ClientOptions();
  co.servername = "attacker.example";
  EnginePair pair(ServerOptions("san-uri-smuggle"), co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client().authorized());
  std::optional<CertificateInfo> peer = pair.client().GetPeerCertificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->dns_names, std::vector<std::string>{"attacker.example"});
}

TEST(VerifyTest, PeerCertificateHasInfoAccess) {
  EnginePair pair(ServerOptions("aia"), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::optional<CertificateInfo> peer = pair.client().GetPeerCertificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->info_access.at("OCSP - URI"),
            (std::vector<std::string>{"http://ocsp.example.com/", "http://ocsp2.example.com/"}));
  EXPECT_EQ(peer->info_access.at("CA Issuers - URI"), std::vector<std::string>{"http://ca.example.com/int1.der"});
}

// A user callback that throws must not unwind through OpenSSL's C frames:
// it fails the identity check, inside the handshake (an alert).
TEST(VerifyTest, ThrowingCheckServerIdentityFailsTheHandshakeCleanly) {
  ConnectionOptions co = ClientOptions();
  co.check_server_identity = [](absl::string_view, const CertificateInfo&) -> absl::Status {
    throw std::runtime_error("boom");
  };
  EnginePair rejected(ServerOptions(), co);
  absl::Status s = rejected.Handshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(), "check_server_identity threw: boom");
  ASSERT_TRUE(AlertOf(s).has_value());
  EXPECT_EQ(AlertOf(rejected.server_side().error), AlertOf(s));
  EXPECT_FALSE(rejected.server_side().Saw(EventType::kSecure));

  co.reject_unauthorized = false;
  co.check_server_identity = [](absl::string_view, const CertificateInfo&) -> absl::Status { throw 42; };
  EnginePair allowed(ServerOptions(), co);
  ASSERT_TRUE(allowed.Handshake().ok());
  EXPECT_FALSE(allowed.client().authorized());
  EXPECT_EQ(allowed.client().authorization_error(), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(allowed.client().authorization_status().message(),
            "check_server_identity threw a non-standard exception");
}

// ---- Identity on resumed handshakes ----

enum class Resumption { kTls12Ticket, kTls12SessionId, kTls13 };

// A session for "localhost", then clients for other hosts offering it.
class ResumedIdentityTest : public ::testing::TestWithParam<Resumption> {
 protected:
  void SetUp() override {
    if (GetParam() == Resumption::kTls12SessionId) {
      // Session ids through the application's store (Node's newSession /
      // resumeSession); no tickets.
      SecureContextOptions o = IdentityOptions("server-rsa");
      o.max_version = "TLSv1.2";
      server_ = testing::ServerWith(o);
      server_.session_cache = true;
      SecureContextOptions c;
      c.max_version = "TLSv1.2";
      c.secure_options = SSL_OP_NO_TICKET;
      client_ = testing::ClientWith(c);
    } else {
      server_ = ServerOptions("server-rsa", GetParam() == Resumption::kTls13 ? "TLSv1.3" : "TLSv1.2");
      client_ = ClientOptions();
    }
    EnginePair first = Pair(client_);
    ASSERT_TRUE(first.Handshake().ok());
    first.Pump();
    ASSERT_TRUE(first.client().authorized());
    session_ = first.client().GetSession();
    ASSERT_FALSE(session_.empty());
    // The session resumes for its own host (else the tests below prove nothing).
    EnginePair same = Pair(Client("localhost"));
    ASSERT_TRUE(same.Handshake().ok());
    ASSERT_TRUE(same.client().is_session_reused());
    ASSERT_TRUE(same.client().authorized());
  }

  ConnectionOptions Client(const std::string& servername) {
    ConnectionOptions co = client_;
    co.servername = servername;
    co.session = session_;
    return co;
  }

  EnginePair Pair(ConnectionOptions co) {
    EnginePair pair(server_, std::move(co));
    pair.server_side().hook = [this](TlsConnection& c, const Event& e) {
      if (e.type == EventType::kNewSession) {
        store_[e.session_id] = e.session;
        ASSERT_TRUE(c.AckNewSession().ok());
      }
      if (e.type == EventType::kResumeSession) {
        auto it = store_.find(e.session_id);
        ASSERT_TRUE(c.AnswerResumeSession(it == store_.end() ? "" : it->second).ok());
      }
    };
    return pair;
  }

  ConnectionOptions server_, client_;
  std::string session_;
  std::map<std::string, std::string> store_;
};

TEST_P(ResumedIdentityTest, SessionForAnotherHostIsNotOfferedAndTheHandshakeFails) {
  EnginePair pair = Pair(Client("not-in-cert.example"));
  absl::Status s = pair.Handshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(),
            "Hostname/IP does not match certificate's altnames: Host: not-in-cert.example. is not in the cert's "
            "altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  EXPECT_FALSE(pair.client().authorized());
  EXPECT_FALSE(pair.client().is_session_reused());
  // A full handshake: the server verified nothing was resumed, and got the alert.
  EXPECT_FALSE(pair.server().is_session_reused());
  ASSERT_TRUE(AlertOf(s).has_value());
  EXPECT_EQ(AlertOf(pair.server_side().error), AlertOf(s));
}

TEST_P(ResumedIdentityTest, WithoutRejectAnotherHostResumesAndIsUnauthorized) {
  // A client that accepts unauthorized servers offers the session, as Node
  // does; the resumed handshake reports what a full one would have.
  ConnectionOptions co = Client("not-in-cert.example");
  co.reject_unauthorized = false;
  EnginePair pair = Pair(co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client().is_session_reused());
  EXPECT_TRUE(pair.server().is_session_reused());
  EXPECT_FALSE(pair.client().authorized());
  EXPECT_EQ(pair.client().authorization_error(), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(pair.client().authorization_status().message(),
            "Hostname/IP does not match certificate's altnames: Host: not-in-cert.example. is not in the cert's "
            "altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
}

TEST_P(ResumedIdentityTest, CustomCheckRunsOnTheResumedHandshake) {
  // A rejecting client calls it when the session is considered (Create) and
  // again after the resumed handshake; the second verdict is the one that
  // counts. A client without rejection offers the session unasked, and
  // calls it only after the resumed handshake.
  for (bool reject : {true, false}) {
    SCOPED_TRACE(reject);
    std::vector<std::string> hosts;
    ConnectionOptions co = Client("pinned.example");
    co.reject_unauthorized = reject;
    co.check_server_identity = [&hosts, reject](absl::string_view host, const CertificateInfo& cert) {
      hosts.emplace_back(host);
      EXPECT_EQ(cert.subject.Get("CN"), "localhost");
      if (reject && hosts.size() == 1) return absl::OkStatus();
      return MakeError(absl::StatusCode::kUnauthenticated, "ERR_PINNED_KEY_MISMATCH", "pin mismatch");
    };
    EnginePair pair = Pair(co);
    absl::Status s = pair.Handshake();
    EXPECT_EQ(hosts, std::vector<std::string>(reject ? 2 : 1, "pinned.example"));
    EXPECT_TRUE(pair.client().is_session_reused());
    EXPECT_FALSE(pair.client().authorized());
    EXPECT_EQ(pair.client().authorization_error(), "ERR_PINNED_KEY_MISMATCH");
    if (reject) {
      EXPECT_EQ(NodeCode(s), "ERR_PINNED_KEY_MISMATCH");
      EXPECT_EQ(s.message(), "pin mismatch");
      EXPECT_FALSE(pair.client_side().Saw(EventType::kSecure));
    } else {
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_TRUE(pair.client_side().Saw(EventType::kSecure));
    }
  }
}

TEST_P(ResumedIdentityTest, CustomCheckThatAcceptsResumesAuthorized) {
  int calls = 0;
  ConnectionOptions co = Client("any.example");
  co.check_server_identity = [&calls](absl::string_view, const CertificateInfo&) {
    ++calls;
    return absl::OkStatus();
  };
  EnginePair pair = Pair(co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.client().is_session_reused());
  EXPECT_TRUE(pair.client().authorized());
  EXPECT_EQ(calls, 2);
}

TEST_P(ResumedIdentityTest, ThrowingCustomCheckIsNotOfferedTheSession) {
  ConnectionOptions co = Client("localhost");
  co.check_server_identity = [](absl::string_view, const CertificateInfo&) -> absl::Status {
    throw std::runtime_error("boom");
  };
  EnginePair pair = Pair(co);
  absl::Status s = pair.Handshake();
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(), "check_server_identity threw: boom");
  EXPECT_FALSE(pair.client().is_session_reused());
}

// Resuming from servers that are not authorized (Node resumes there): a
// self-signed certificate, and one for another name.
class UnauthorizedResumptionTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A server for `identity`: self-signed alone, or leaf + intermediate.
  ConnectionOptions Server(const std::string& identity) {
    SecureContextOptions o = IdentityOptions("", GetParam());
    o.key = {Key(identity)};
    o.cert = {identity == "self-signed" ? Cert(identity) : Chain(identity)};
    return testing::ServerWith(o);
  }
  // Handshakes `client` (servername localhost) offering `session`;
  // returns the session it ends with.
  std::string Connect(const ConnectionOptions& server, ConnectionOptions client, const std::string& session,
                      bool expect_reused, const std::string& expect_code) {
    client.session = session;
    EnginePair pair(server, std::move(client));
    absl::Status s = pair.Handshake();
    EXPECT_TRUE(s.ok()) << s;
    pair.Pump();
    EXPECT_EQ(pair.client().is_session_reused(), expect_reused);
    EXPECT_EQ(pair.server().is_session_reused(), expect_reused);
    EXPECT_EQ(pair.client().authorized(), expect_code.empty());
    EXPECT_EQ(pair.client().authorization_error(), expect_code);
    return pair.client().GetSession();
  }
};

TEST_P(UnauthorizedResumptionTest, WithoutRejectTheSessionResumesWithTheSameVerdict) {
  for (const auto& [identity, code] : std::vector<std::pair<std::string, std::string>>{
           {"self-signed", "DEPTH_ZERO_SELF_SIGNED_CERT"}, {"other-name", "ERR_TLS_CERT_ALTNAME_INVALID"}}) {
    SCOPED_TRACE(identity);
    ConnectionOptions server = Server(identity);
    ConnectionOptions client = ClientOptions(GetParam());
    client.reject_unauthorized = false;
    std::string session = Connect(server, client, "", /*expect_reused=*/false, code);
    ASSERT_FALSE(session.empty());
    std::string again = Connect(server, client, session, /*expect_reused=*/true, code);
    ASSERT_FALSE(again.empty());
    Connect(server, client, again, /*expect_reused=*/true, code);
  }
}

TEST_P(UnauthorizedResumptionTest, ARejectingClientDoesNotOfferASessionWhoseChainFailed) {
  // The session of a client that accepted the self-signed server; then a
  // client that rejects, and trusts that certificate: a full handshake,
  // verified and authorized, not a resumption of the failed verdict.
  ConnectionOptions server = Server("self-signed");
  ConnectionOptions lenient = ClientOptions(GetParam());
  lenient.reject_unauthorized = false;
  std::string session = Connect(server, lenient, "", false, "DEPTH_ZERO_SELF_SIGNED_CERT");
  ASSERT_FALSE(session.empty());
  SecureContextOptions trusting = IdentityOptions("", GetParam());
  trusting.ca = std::vector<std::string>{Cert("self-signed")};
  ConnectionOptions strict = testing::ClientWith(trusting);
  Connect(server, strict, session, /*expect_reused=*/false, "");
}

INSTANTIATE_TEST_SUITE_P(Versions, UnauthorizedResumptionTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

// A TLS 1.2 renegotiation that resumes the session runs no verification.
TEST(VerifyTest, RenegotiationThatResumesKeepsTheIdentityVerdict) {
  ConnectionOptions co = ClientOptions("TLSv1.2");
  co.servername = "other.example.com";
  co.reject_unauthorized = false;
  ConnectionOptions so = ServerOptions("server-rsa", "TLSv1.2");
  so.allow_client_renegotiation = true;
  EnginePair pair(so, co);
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_FALSE(pair.client().authorized());
  ASSERT_TRUE(pair.client().Renegotiate({}).ok());
  pair.Pump();
  ASSERT_TRUE(pair.client_side().Saw(EventType::kRenegotiated));
  EXPECT_FALSE(pair.client().authorized());
  EXPECT_EQ(pair.client().authorization_error(), "ERR_TLS_CERT_ALTNAME_INVALID");
}

INSTANTIATE_TEST_SUITE_P(Modes, ResumedIdentityTest,
                         ::testing::Values(Resumption::kTls12Ticket, Resumption::kTls12SessionId,
                                           Resumption::kTls13),
                         [](const auto& info) {
                           switch (info.param) {
                             case Resumption::kTls12Ticket: return "Tls12Ticket";
                             case Resumption::kTls12SessionId: return "Tls12SessionId";
                             default: return "Tls13";
                           }
                         });

TEST(VerifyTest, DetailedPeerCertificateCarriesTheIssuerChain) {
  EnginePair pair(ServerOptions(), ClientOptions());
  ASSERT_TRUE(pair.Handshake().ok());
  std::optional<CertificateInfo> leaf = pair.client().GetPeerCertificate(/*detailed=*/true);
  ASSERT_TRUE(leaf.has_value());
  ASSERT_NE(leaf->issuer_certificate, nullptr);
  EXPECT_EQ(leaf->issuer_certificate->subject.Get("CN"), "Test Intermediate CA 1");
  ASSERT_NE(leaf->issuer_certificate->issuer_certificate, nullptr);
  EXPECT_EQ(leaf->issuer_certificate->issuer_certificate->subject.Get("CN"), "Test Root CA 1");
  EXPECT_EQ(leaf->issuer_certificate->issuer_certificate->issuer_certificate, nullptr);
  EXPECT_EQ(pair.client().GetPeerCertificate(false)->issuer_certificate, nullptr);
}

// ---- Client certificates (server requestCert) ----

ConnectionOptions RequestingServer(bool reject, const std::string& version = "") {
  ConnectionOptions so = ServerOptions("server-ecdsa", version);
  so.request_cert = true;
  so.reject_unauthorized = reject;
  return so;
}

ConnectionOptions ClientWith(const std::string& identity, const std::string& version = "") {
  ConnectionOptions co = ClientOptions(version);
  SecureContextOptions o = IdentityOptions("", version);
  if (identity == "client2") {
    o.key = {Key("client2")};
    o.cert = {Cert("client2")};
  } else if (!identity.empty()) {
    o.key = {Key(identity)};
    o.cert = {Chain(identity)};
  }
  co.secure_context = MakeContext(o);
  return co;
}

class ClientCertTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClientCertTest, TrustedClientIsAuthorized) {
  EnginePair pair(RequestingServer(true, GetParam()), ClientWith("client", GetParam()));
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_TRUE(pair.server().authorized());
  EXPECT_EQ(pair.server().authorization_error(), "");
  ASSERT_TRUE(pair.server().GetPeerCertificate().has_value());
  EXPECT_EQ(pair.server().GetPeerCertificate()->subject.Get("CN"), "test client");
}

TEST_P(ClientCertTest, MissingClientCertificateIsRejected) {
  EnginePair pair(RequestingServer(true, GetParam()), ClientWith("", GetParam()));
  absl::Status s = pair.Handshake();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(pair.server_side().error.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE");
  EXPECT_FALSE(pair.server_side().Saw(EventType::kSecure));
  // The client learns it from the alert: handshake_failure in TLS 1.2,
  // certificate_required (116) in TLS 1.3.
  EXPECT_EQ(AlertOf(pair.client_side().error), GetParam() == "TLSv1.3" ? 116 : 40);
}

TEST_P(ClientCertTest, MissingClientCertificateWithoutRejectIsUnauthorized) {
  EnginePair pair(RequestingServer(false, GetParam()), ClientWith("", GetParam()));
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_FALSE(pair.server().authorized());
  EXPECT_EQ(pair.server().authorization_error(), "UNABLE_TO_GET_ISSUER_CERT");
}

TEST_P(ClientCertTest, UntrustedClientCertificate) {
  EnginePair rejected(RequestingServer(true, GetParam()), ClientWith("client2", GetParam()));
  EXPECT_FALSE(rejected.Handshake().ok());
  EXPECT_EQ(NodeCode(rejected.server_side().error), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  EXPECT_EQ(NodeCode(rejected.client_side().error), "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA");
  EnginePair allowed(RequestingServer(false, GetParam()), ClientWith("client2", GetParam()));
  ASSERT_TRUE(allowed.Handshake().ok());
  EXPECT_EQ(allowed.server().authorization_error(), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
}

INSTANTIATE_TEST_SUITE_P(Versions, ClientCertTest, ::testing::Values("TLSv1.2", "TLSv1.3"),
                         [](const auto& info) { return info.param == "TLSv1.2" ? "Tls12" : "Tls13"; });

}  // namespace
}  // namespace tlsengine
