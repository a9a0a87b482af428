#include "core/certificate.h"

#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::Cert;

CertificateInfo Load(const std::string& identity) {
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(Cert(identity));
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : CertificateInfo{};
}

TEST(CertificateInfoTest, HasNodesFieldsForAnRsaLeaf) {
  CertificateInfo c = Load("server-rsa");
  EXPECT_EQ(c.subject.Get("CN"), "localhost");
  EXPECT_EQ(c.subject.Get("O"), "tlsengine tests");
  EXPECT_EQ(c.issuer.Get("CN"), "Test Intermediate CA 1");
  EXPECT_EQ(c.subjectaltname, "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  EXPECT_EQ(c.valid_from, "Jan  1 00:00:00 2020 GMT");
  EXPECT_EQ(c.valid_to, "Dec 31 00:00:00 2099 GMT");
  EXPECT_EQ(c.valid_from_unix, 1577836800);
  EXPECT_EQ(c.bits, 2048);
  EXPECT_EQ(c.exponent, "0x10001");
  EXPECT_EQ(c.modulus.size(), 512u);
  EXPECT_FALSE(c.ca);
  EXPECT_EQ(c.fingerprint.size(), 20u * 3 - 1);
  EXPECT_EQ(c.fingerprint256.size(), 32u * 3 - 1);
  EXPECT_EQ(c.fingerprint512.size(), 64u * 3 - 1);
  EXPECT_EQ(c.fingerprint256.find_first_not_of("0123456789ABCDEF:"), std::string::npos);
  EXPECT_FALSE(c.serial_number.empty());
  EXPECT_EQ(c.serial_number.find_first_not_of("0123456789ABCDEF"), std::string::npos);
  EXPECT_EQ(c.ext_key_usage, std::vector<std::string>{"1.3.6.1.5.5.7.3.1"});
  EXPECT_FALSE(c.pubkey.empty());
  EXPECT_EQ(c.raw[0], '\x30');  // DER SEQUENCE
  EXPECT_EQ(c.issuer_certificate, nullptr);
}

TEST(CertificateInfoTest, HasCurveNamesForAnEcdsaLeafAndCaFlagForACa) {
  CertificateInfo c = Load("server-ecdsa");
  EXPECT_EQ(c.asn1_curve, "prime256v1");
  EXPECT_EQ(c.nist_curve, "P-256");
  EXPECT_EQ(c.bits, 256);
  EXPECT_TRUE(c.modulus.empty());
  EXPECT_TRUE(Load("ca1").ca);
  EXPECT_TRUE(Load("int1").ca);
}

TEST(CertificateInfoTest, RawRoundTripsThroughFromDer) {
  CertificateInfo c = Load("server-rsa");
  absl::StatusOr<CertificateInfo> again = CertificateInfo::FromDer(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(c.raw.data()), c.raw.size()));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fingerprint256, c.fingerprint256);
}

TEST(CertificateInfoTest, GarbageIsRejectedWithACode) {
  const uint8_t junk[] = {0x30, 0x82, 0xff, 0xff, 0x01};
  absl::StatusOr<CertificateInfo> der = CertificateInfo::FromDer(junk);
  EXPECT_EQ(der.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(der.status()), "ERR_INVALID_ARG_VALUE");
  EXPECT_NE(der.status().message().find("not a DER certificate"), std::string::npos);
  absl::StatusOr<CertificateInfo> pem = CertificateInfo::FromPem("not pem");
  EXPECT_EQ(NodeCode(pem.status()), "ERR_INVALID_ARG_VALUE");
  // Trailing bytes after a valid certificate are refused too.
  std::string raw = Load("server-rsa").raw + "x";
  EXPECT_FALSE(CertificateInfo::FromDer(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(raw.data()), raw.size())).ok());
}

struct IdentityCase {
  const char* host;
  const char* identity;
  const char* reason;  // "" when the host matches
};

class CheckServerIdentityTest : public ::testing::TestWithParam<IdentityCase> {};

TEST_P(CheckServerIdentityTest, FollowsRfc6125) {
  const IdentityCase& c = GetParam();
  absl::Status s = CheckServerIdentity(c.host, Load(c.identity));
  if (std::string(c.reason).empty()) {
    EXPECT_TRUE(s.ok()) << s;
    return;
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(), std::string("Hostname/IP does not match certificate's altnames: ") + c.reason);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CheckServerIdentityTest,
    ::testing::Values(
        IdentityCase{"localhost", "server-rsa", ""},
        IdentityCase{"LOCALHOST.", "server-rsa", ""},
        IdentityCase{"127.0.0.1", "server-rsa", ""},
        IdentityCase{"::1", "server-rsa", ""},
        IdentityCase{"[::1]", "server-rsa", ""},
        IdentityCase{"0:0:0:0:0:0:0:1", "server-rsa", ""},
        IdentityCase{"127.0.0.2", "server-rsa",
                     "IP: 127.0.0.2 is not in the cert's list: 127.0.0.1, 0:0:0:0:0:0:0:1"},
        IdentityCase{"example.com", "server-rsa",
                     "Host: example.com. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, "
                     "IP Address:0:0:0:0:0:0:0:1"},
        IdentityCase{"a.example.com", "wildcard", ""},
        IdentityCase{"A.Example.COM", "wildcard", ""},
        IdentityCase{"a.b.example.com", "wildcard",
                     "Host: a.b.example.com. is not in the cert's altnames: DNS:*.example.com"},
        IdentityCase{"example.com", "wildcard",
                     "Host: example.com. is not in the cert's altnames: DNS:*.example.com"},
        IdentityCase{"other.example.com", "other-name", ""},
        // CN only when there is no DNS subjectAltName.
        IdentityCase{"localhost", "cn-only", ""},
        IdentityCase{"otherhost", "cn-only", "Host: otherhost. is not cert's CN: localhost"},
        IdentityCase{"other.example.com", "server-rsa",
                     "Host: other.example.com. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, "
                     "IP Address:0:0:0:0:0:0:0:1"}));

TEST(CheckServerIdentityTest, RefusesPartialAndTopLevelWildcards) {
  CertificateInfo cert;
  cert.subjectaltname = "DNS:*.com, DNS:f*.example.org, DNS:*x.example.net";
  EXPECT_FALSE(CheckServerIdentity("example.com", cert).ok());
  EXPECT_FALSE(CheckServerIdentity("foo.example.org", cert).ok());
  EXPECT_FALSE(CheckServerIdentity("ax.example.net", cert).ok());
  cert.subjectaltname = "DNS:www.*.example.com";
  EXPECT_FALSE(CheckServerIdentity("www.a.example.com", cert).ok());
}

TEST(CheckServerIdentityTest, CertificateWithoutNames) {
  CertificateInfo cert;
  absl::Status s = CheckServerIdentity("localhost", cert);
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(), "Hostname/IP does not match certificate's altnames: Cert does not contain a DNS name");
}

}  // namespace
}  // namespace tlsengine
