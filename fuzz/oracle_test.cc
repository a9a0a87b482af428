// The identity oracle of the engine targets (fuzz::AuthorizedImpliesOracle)
// can fire: it catches the display-string matcher of CVE-2021-44532, here
// played by a check_server_identity that splits subjectaltname on ", " as
// the old CheckServerIdentity did.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "fuzz/common.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::ClientOptions;
using testing::EnginePair;
using testing::ServerOptions;

absl::Status OldDisplayStringMatcher(absl::string_view host, const CertificateInfo& cert) {
  for (absl::string_view part : absl::StrSplit(cert.subjectaltname, ", ")) {
    if (absl::ConsumePrefix(&part, "DNS:") && part == host) return absl::OkStatus();
  }
  return absl::UnauthenticatedError("no match");
}

TEST(AuthorizedImpliesOracleTest, FiresOnTheSmugglingCertificateWithTheOldMatcher) {
  ConnectionOptions co = ClientOptions();
  co.servername = "victim.example";
  // subjectaltname is quoted now, which alone defeats the split; the old
  // code split its unquoted join, which for this certificate was:
  co.check_server_identity = [](absl::string_view host, const CertificateInfo& cert) {
    absl::Status display = OldDisplayStringMatcher(host, cert);
    if (display.ok()) return display;
    CertificateInfo raw = cert;
    raw.subjectaltname = "DNS:attacker.example, URI:spiffe://x/y, DNS:victim.example";
    return OldDisplayStringMatcher(host, raw);
  };
  EnginePair pair(ServerOptions("san-uri-smuggle"), co);
  ASSERT_TRUE(pair.Handshake().ok());
  ASSERT_TRUE(pair.client().authorized());
  EXPECT_FALSE(fuzz::AuthorizedImpliesOracle(pair.client(), fuzz::TrustStore(), "victim.example", pair.now()));
}

TEST(AuthorizedImpliesOracleTest, HoldsForTheRealCheck) {
  ConnectionOptions co = ClientOptions();
  co.servername = "victim.example";
  co.reject_unauthorized = false;
  EnginePair smuggled(ServerOptions("san-uri-smuggle"), co);
  ASSERT_TRUE(smuggled.Handshake().ok());
  EXPECT_FALSE(smuggled.client().authorized());
  EXPECT_TRUE(fuzz::AuthorizedImpliesOracle(smuggled.client(), fuzz::TrustStore(), "victim.example", smuggled.now()));

  EnginePair good(ServerOptions(), ClientOptions());
  ASSERT_TRUE(good.Handshake().ok());
  ASSERT_TRUE(good.client().authorized());
  EXPECT_TRUE(fuzz::AuthorizedImpliesOracle(good.client(), fuzz::TrustStore(), "localhost", good.now()));
  EXPECT_TRUE(fuzz::AuthorizedImpliesOracle(good.client(), fuzz::TrustStore(), "127.0.0.1", good.now()));
  // The same connection judged for another host, or after the leaf expired, fails.
  EXPECT_FALSE(fuzz::AuthorizedImpliesOracle(good.client(), fuzz::TrustStore(), "other.example", good.now()));
  EXPECT_FALSE(fuzz::AuthorizedImpliesOracle(good.client(), fuzz::TrustStore(), "localhost",
                                             absl::FromUnixSeconds(4200000000)));
}

TEST(AuthorizedImpliesOracleTest, IdentityHostFollowsTheEngine) {
  ConnectionOptions co;
  EXPECT_EQ(fuzz::IdentityHost(co), "localhost");
  co.host = "127.0.0.1";
  EXPECT_EQ(fuzz::IdentityHost(co), "127.0.0.1");
  co.servername = "a.example.com";
  EXPECT_EQ(fuzz::IdentityHost(co), "a.example.com");
}

}  // namespace
}  // namespace tlsengine
