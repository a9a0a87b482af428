#include "core/certificate.h"

#include <map>
#include <string>
#include <vector>

#include <openssl/pem.h>

#include "core/errors.h"
#include "core/internal/openssl_util.h"
#include "core/internal/x509_info.h"
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
  // The handshake's check (names read straight from the X509) agrees, to
  // the message.
  const std::string pem = Cert(c.identity);
  internal::OpenSslPtr<BIO> bio = internal::MemoryBio(pem);
  internal::OpenSslPtr<X509> x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(x509, nullptr);
  EXPECT_EQ(internal::CheckServerIdentityOfX509(c.host, x509.get()), s);
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
                     "IP Address:0:0:0:0:0:0:0:1"},
        // CVE-2021-44532: a URI (or one DNS name) whose value reads like a
        // second DNS name is no DNS name. Messages as Node 20 prints them
        // (tls.checkServerIdentity on X509Certificate#toLegacyObject()).
        IdentityCase{"attacker.example", "san-uri-smuggle", ""},
        IdentityCase{"victim.example", "san-uri-smuggle",
                     "Host: victim.example. is not in the cert's altnames: DNS:attacker.example, "
                     "URI:\"spiffe://x/y\\u002c DNS:victim.example\""},
        IdentityCase{"victim.example", "san-dns-comma",
                     "Host: victim.example. is not in the cert's altnames: "
                     "DNS:\"attacker.example\\u002c DNS:victim.example\""},
        // An embedded NUL matches nothing; the URI and email never count,
        // nor the CN, since there is a DNS name.
        IdentityCase{"victim.example", "san-nul",
                     "Host: victim.example. is not in the cert's altnames: "
                     "DNS:\"victim.example\\u0000.attacker.example\", URI:https://victim.example/, "
                     "email:admin@victim.example"},
        // No DNS name: the CN counts, the URI and email do not.
        IdentityCase{"victim.example", "san-no-dns", ""},
        IdentityCase{"other.example", "san-no-dns", "Host: other.example. is not cert's CN: victim.example"},
        IdentityCase{"10.0.0.1", "san-no-dns", ""}));

// Node 20's X509Certificate#subjectAltName for the same files (the oracle:
// `node -e` over tests/certs, see tests/certs/README.md).
TEST(CertificateInfoTest, SubjectAltNameQuotesUnsafeValuesAsNodeDoes) {
  EXPECT_EQ(Load("san-uri-smuggle").subjectaltname,
            "DNS:attacker.example, URI:\"spiffe://x/y\\u002c DNS:victim.example\"");
  EXPECT_EQ(Load("san-dns-comma").subjectaltname, "DNS:\"attacker.example\\u002c DNS:victim.example\"");
  EXPECT_EQ(Load("san-nul").subjectaltname,
            "DNS:\"victim.example\\u0000.attacker.example\", URI:https://victim.example/, "
            "email:admin@victim.example");
  EXPECT_EQ(Load("san-no-dns").subjectaltname, "URI:https://other.example/, email:a@other.example, IP Address:10.0.0.1");
}

TEST(CertificateInfoTest, CarriesTheStructuredNames) {
  CertificateInfo rsa = Load("server-rsa");
  EXPECT_EQ(rsa.dns_names, std::vector<std::string>{"localhost"});
  EXPECT_EQ(rsa.ip_addresses, (std::vector<std::string>{std::string("\x7f\0\0\1", 4), std::string(15, '\0') + "\1"}));
  EXPECT_EQ(rsa.IpAddresses(), (std::vector<std::string>{"127.0.0.1", "0:0:0:0:0:0:0:1"}));
  EXPECT_EQ(Load("san-uri-smuggle").dns_names, std::vector<std::string>{"attacker.example"});
  EXPECT_EQ(Load("san-dns-comma").dns_names, std::vector<std::string>{"attacker.example, DNS:victim.example"});
  EXPECT_EQ(Load("san-nul").dns_names, std::vector<std::string>{std::string("victim.example\0.attacker.example", 32)});
  CertificateInfo no_dns = Load("san-no-dns");
  EXPECT_TRUE(no_dns.dns_names.empty());
  EXPECT_EQ(no_dns.ip_addresses, std::vector<std::string>{std::string("\x0a\0\0\1", 4)});
  EXPECT_TRUE(Load("cn-only").dns_names.empty());
}

// Node 20's getPeerCertificate().infoAccess for aia.pem (the legacy object).
TEST(CertificateInfoTest, InfoAccessAsNodeReportsIt) {
  CertificateInfo aia = Load("aia");
  EXPECT_EQ(aia.info_access, (std::map<std::string, std::vector<std::string>>{
                                 {"OCSP - URI", {"http://ocsp.example.com/", "http://ocsp2.example.com/"}},
                                 {"CA Issuers - URI", {"http://ca.example.com/int1.der"}}}));
  EXPECT_TRUE(Load("server-rsa").info_access.empty());
}

TEST(CheckServerIdentityTest, RefusesPartialAndTopLevelWildcards) {
  CertificateInfo cert;
  cert.dns_names = {"*.com", "f*.example.org", "*x.example.net"};
  EXPECT_EQ(NodeCode(CheckServerIdentity("example.com", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(NodeCode(CheckServerIdentity("foo.example.org", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(NodeCode(CheckServerIdentity("ax.example.net", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  cert.dns_names = {"www.*.example.com"};
  EXPECT_EQ(NodeCode(CheckServerIdentity("www.a.example.com", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  // The same names do match where they are well formed: the test is not vacuous.
  cert.dns_names = {"*.example.org"};
  EXPECT_TRUE(CheckServerIdentity("foo.example.org", cert).ok());
}

// Reads only the structured names: a display string alone grants nothing.
TEST(CheckServerIdentityTest, IgnoresTheDisplayString) {
  CertificateInfo cert;
  cert.subjectaltname = "DNS:victim.example, IP Address:10.0.0.1";
  EXPECT_EQ(NodeCode(CheckServerIdentity("victim.example", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(NodeCode(CheckServerIdentity("10.0.0.1", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  cert.dns_names = {"victim.example"};
  cert.ip_addresses = {std::string("\x0a\0\0\1", 4)};
  EXPECT_TRUE(CheckServerIdentity("victim.example", cert).ok());
  EXPECT_TRUE(CheckServerIdentity("10.0.0.1", cert).ok());
}

// Malformed names (and hosts) never match, even themselves.
TEST(CheckServerIdentityTest, MalformedNamesNeverMatch) {
  const std::string nul("victim.example\0.attacker.example", 32);
  CertificateInfo cert;
  cert.dns_names = {nul, "a b.example", "caf\xc3\xa9.example", "a..example", "*.ex_ample.com", "*.-x.example.com"};
  for (const std::string& host : {std::string("victim.example"), nul, std::string("a b.example"),
                                  std::string("caf\xc3\xa9.example"), std::string("a..example"),
                                  std::string("a.ex_ample.com"), std::string("a.-x.example.com")}) {
    absl::Status s = CheckServerIdentity(host, cert);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << host;
    EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID") << host;
  }
  // A wildcard stands for letters, digits and hyphens only.
  cert.dns_names = {"*.example.com"};
  EXPECT_TRUE(CheckServerIdentity("a-1.example.com", cert).ok());
  for (const char* host : {"a_b.example.com", "*.example.com", "a\x01.example.com", ".example.com"}) {
    EXPECT_EQ(NodeCode(CheckServerIdentity(host, cert)), "ERR_TLS_CERT_ALTNAME_INVALID") << host;
  }
  // IP addresses of odd lengths match nothing; 4 bytes never match 16.
  cert.ip_addresses = {std::string("\x7f\0\0", 3), std::string("\x7f\0\0\1\0", 5),
                       std::string(10, '\0') + "\xff\xff\x7f\0\0\1"};
  EXPECT_EQ(NodeCode(CheckServerIdentity("127.0.0.1", cert)), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(cert.IpAddresses()[0], "<invalid length=3>");
  // inet_pton stops at a NUL: "127.0.0.1\0.evil" is no IP literal.
  EXPECT_EQ(NodeCode(CheckServerIdentity(std::string("127.0.0.1\0.evil", 15), Load("server-rsa"))),
            "ERR_TLS_CERT_ALTNAME_INVALID");
}

TEST(CheckServerIdentityTest, CertificateWithoutNames) {
  CertificateInfo cert;
  absl::Status s = CheckServerIdentity("localhost", cert);
  EXPECT_EQ(NodeCode(s), "ERR_TLS_CERT_ALTNAME_INVALID");
  EXPECT_EQ(s.message(), "Hostname/IP does not match certificate's altnames: Cert does not contain a DNS name");
}

}  // namespace
}  // namespace tlsengine
