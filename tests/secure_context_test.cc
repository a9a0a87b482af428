// SecureContext: Node's createSecureContext options, good and bad.
#include "core/secure_context.h"

#include <openssl/err.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/certificate.h"
#include "core/errors.h"
#include "core/self_signed.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
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
using testing::ClientWith;
using testing::ServerOptions;
using testing::ServerWith;

void ExpectBad(const SecureContextOptions& o, const std::string& code, const std::string& message_part) {
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  ASSERT_FALSE(ctx.ok()) << "expected an error containing: " << message_part;
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(ctx.status()), code) << ctx.status();
  EXPECT_NE(ctx.status().message().find(message_part), std::string::npos) << ctx.status();
  // A failed Create leaves nothing behind for the next OpenSSL user on the
  // thread.
  EXPECT_EQ(ERR_peek_error(), 0u) << "stale OpenSSL error after: " << ctx.status();
  ERR_clear_error();
}

SecureContextOptions Server(const std::string& identity = "server-rsa") {
  return IdentityOptions(identity);
}


// ---- Bad input: every one names the option and the cause ----

TEST(SecureContextErrors, KeyThatDoesNotMatchItsCertificate) {
  SecureContextOptions o = Server();
  o.key = {Key("server-ecdsa")};
  ExpectBad(o, "ERR_TLS_KEY_MISMATCH", "key: no private key matches the certificate");
}

TEST(SecureContextErrors, CertificateWithoutAKey) {
  SecureContextOptions o = Server();
  o.key.clear();
  ExpectBad(o, "ERR_TLS_KEY_MISMATCH", "(no key given)");
}

TEST(SecureContextErrors, KeyWithoutACertificate) {
  SecureContextOptions o = Server();
  o.cert.clear();
  ExpectBad(o, "ERR_TLS_KEY_MISMATCH", "key: key #1 matches no certificate");
}

TEST(SecureContextErrors, WrongPassphrase) {
  SecureContextOptions o = Server();
  o.key = {ReadTestFile("server-rsa-key-encrypted.pem")};
  o.passphrase = "wrong";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "key: bad decrypt (wrong passphrase?)");
}

TEST(SecureContextErrors, MissingPassphrase) {
  SecureContextOptions o = Server();
  o.key = {ReadTestFile("server-rsa-key-encrypted.pem")};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "key: encrypted private key and no passphrase given");
}

TEST(SecureContextErrors, GarbageKeyAndCertificate) {
  SecureContextOptions o = Server();
  o.key = {"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "key: not a PEM private key");
  o = Server();
  o.cert = {"hello"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "cert: no PEM certificate found");
  o = Server();
  o.cert = {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "cert: malformed PEM certificate");
}

TEST(SecureContextErrors, UnreadablePfxAndWrongPfxPassphrase) {
  SecureContextOptions o;
  o.pfx = "this is not a pfx";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "pfx: not enough data (not a PKCS#12 (PFX) file)");
  o.pfx = ReadTestFile("server-rsa.pfx");
  for (const char* wrong : {"wrong", ""}) {
    o.passphrase = wrong;
    ExpectBad(o, "ERR_INVALID_ARG_VALUE", "pfx: mac verify failure (wrong passphrase?)");
  }
}

TEST(SecureContextErrors, BadCa) {
  SecureContextOptions o;
  o.ca = std::vector<std::string>{"no certificate here"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "ca: no PEM certificate found");
}

TEST(SecureContextErrors, MalformedCrl) {
  SecureContextOptions o;
  o.crl = {"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "crl: malformed PEM CRL");
  o.crl = {"nothing"};
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "crl: no PEM CRL found");
}

TEST(SecureContextErrors, UnknownCipherAndSuite) {
  SecureContextOptions o;
  o.ciphers = "ECDHE-RSA-AES128-GCM-SHA256:NO-SUCH-CIPHER";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "ciphers: no cipher match for 'NO-SUCH-CIPHER'");
  o.ciphers = "RC4";  // gone from OpenSSL 3's default provider, and from our defaults
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "ciphers: no cipher match for 'RC4'");
  o.ciphers = "";
  o.ciphersuites = "TLS_NO_SUCH_SUITE";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "ciphersuites: unknown TLS 1.3 cipher suite");
}

TEST(SecureContextErrors, UnknownCurve) {
  SecureContextOptions o;
  o.ecdh_curve = "P-256:not-a-curve";
  ExpectBad(o, "ERR_CRYPTO_INVALID_CURVE", "ecdh_curve: unknown curve in 'P-256:not-a-curve'");
  o.ecdh_curve = "";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "ecdh_curve: empty");
}

TEST(SecureContextErrors, MalformedDhparamIsReportedNotIgnored) {
  SecureContextOptions o;
  o.dhparam = "-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n";
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "dhparam: not PEM DH parameters");
  o.dhparam = Key("server-rsa");
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "dhparam: not PEM DH parameters");
}

TEST(SecureContextErrors, BadVersions) {
  SecureContextOptions o;
  o.min_version = "TLSv1.4";
  ExpectBad(o, "ERR_TLS_INVALID_PROTOCOL_VERSION", "min_version: 'TLSv1.4' is not a TLS version");
  o = {};
  o.min_version = "TLSv1.3";
  o.max_version = "TLSv1.2";
  ExpectBad(o, "ERR_TLS_PROTOCOL_VERSION_CONFLICT", "min_version: TLSv1.3 is above max_version TLSv1.2");
  o = {};
  o.secure_protocol = "SSLv3_method";
  ExpectBad(o, "ERR_TLS_INVALID_PROTOCOL_METHOD", "secure_protocol: SSLv3 methods disabled");
  o.secure_protocol = "Bogus_method";
  ExpectBad(o, "ERR_TLS_INVALID_PROTOCOL_METHOD", "secure_protocol: Unknown method: Bogus_method");
}

// ---- The messages Node users grep for, with node as the oracle ----

// Node's answer to tls.createSecureContext for each case, a JSON object
// {secureProtocol} or {pfx: base64, passphrase}: "" when it is accepted,
// else "CODE|message" (CODE empty when Node sets none).
std::vector<std::string> NodeSays(const std::vector<std::string>& cases) {
  testing::Subprocess node;
  absl::Status started = node.Start(
      {"node", "-e",
       "const tls = require('tls');\n"
       "for (const c of JSON.parse(process.argv[1])) {\n"
       "  if (c.pfx !== undefined) c.pfx = Buffer.from(c.pfx, 'base64');\n"
       "  try { tls.createSecureContext(c); console.log('='); }\n"
       "  catch (e) { console.log('=' + (e.code || '') + '|' + e.message); }\n"
       "}\n",
       absl::StrCat("[", absl::StrJoin(cases, ","), "]")});
  EXPECT_TRUE(started.ok()) << started;
  EXPECT_EQ(node.Wait(absl::Seconds(10)), 0) << node.err();
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(node.out(), '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "=")) out.emplace_back(line);
  }
  EXPECT_EQ(out.size(), cases.size()) << node.out();
  out.resize(cases.size());
  return out;
}

// Ours says what Node says: accepted alike; refused with Node's code (or
// ERR_INVALID_ARG_VALUE where Node has none) and Node's message in ours.
void ExpectLikeNode(const SecureContextOptions& o, const std::string& node, const std::string& what) {
  SCOPED_TRACE(what);
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  if (node.empty()) {
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return;
  }
  ASSERT_FALSE(ctx.ok()) << "node says " << node;
  std::pair<std::string, std::string> code_message = absl::StrSplit(node, absl::MaxSplits('|', 1));
  EXPECT_EQ(NodeCode(ctx.status()), code_message.first.empty() ? "ERR_INVALID_ARG_VALUE" : code_message.first)
      << ctx.status();
  EXPECT_TRUE(absl::StrContains(ctx.status().message(), code_message.second))
      << "node: " << code_message.second << "\nours: " << ctx.status();
  EXPECT_EQ(ERR_peek_error(), 0u) << "stale OpenSSL error after: " << ctx.status();
  ERR_clear_error();
}

TEST(NodeMessagesTest, SecureProtocol) {
  const std::vector<std::string> names = {
      "blargh",         "SSLv2_method",         "SSLv2_client_method", "SSLv3_method",  "SSLv3_server_method",
      "SSLv3",          "TLSv1_2",              "tlsv1_2_method",      "TLSv1_2_method", "TLSv1_1_server_method",
      "TLS_client_method", "SSLv23_method",     "TLSv1_method"};
  std::vector<std::string> cases;
  for (const std::string& n : names) cases.push_back(absl::StrCat("{\"secureProtocol\":\"", n, "\"}"));
  std::vector<std::string> node = NodeSays(cases);
  for (size_t i = 0; i < names.size(); ++i) {
    SecureContextOptions o;
    o.secure_protocol = names[i];
    ExpectLikeNode(o, node[i], names[i]);
  }
  EXPECT_EQ(node[0], "ERR_TLS_INVALID_PROTOCOL_METHOD|Unknown method: blargh");
  EXPECT_EQ(node[3], "ERR_TLS_INVALID_PROTOCOL_METHOD|SSLv3 methods disabled");
  // Node has no TLSv1_3_method; we take it for min = max = TLSv1.3.
  SecureContextOptions o;
  o.secure_protocol = "TLSv1_3_method";
  EXPECT_TRUE(SecureContext::Create(o).ok());
}

TEST(NodeMessagesTest, Pfx) {
  // A PFX made the old way (RC2-40), which OpenSSL 3 reads only with its
  // legacy provider.
  testing::Subprocess openssl;
  ASSERT_TRUE(openssl
                  .Start({"openssl", "pkcs12", "-export", "-legacy", "-in", testing::TestFilePath("server-rsa.pem"),
                          "-inkey", testing::TestFilePath("server-rsa-key.pem"), "-passout", "pass:secret"})
                  .ok());
  ASSERT_EQ(openssl.Wait(absl::Seconds(10)), 0) << openssl.err();
  ASSERT_FALSE(openssl.out().empty());
  const std::string pfx = ReadTestFile("server-rsa.pfx");
  struct Case {
    std::string what, pfx, passphrase;
  };
  const std::vector<Case> pfx_cases = {
      {"wrong passphrase", pfx, "wrong"},
      {"empty passphrase", pfx, ""},
      {"right passphrase", pfx, "secret"},
      {"passphrase for a PFX without one", ReadTestFile("server-rsa-nopass.pfx"), "wrong"},
      {"no passphrase and none needed", ReadTestFile("server-rsa-nopass.pfx"), ""},
      {"not a PFX", "this is not a pfx", ""},
      {"cut short", pfx.substr(0, 100), "secret"},
      {"a PEM certificate", Cert("server-rsa"), ""},
      {"legacy RC2", openssl.out(), "secret"},
  };
  std::vector<std::string> cases;
  for (const Case& c : pfx_cases) {
    cases.push_back(
        absl::StrCat("{\"pfx\":\"", absl::Base64Escape(c.pfx), "\",\"passphrase\":\"", c.passphrase, "\"}"));
  }
  std::vector<std::string> node = NodeSays(cases);
  for (size_t i = 0; i < pfx_cases.size(); ++i) {
    SecureContextOptions o;
    o.pfx = pfx_cases[i].pfx;
    o.passphrase = pfx_cases[i].passphrase;
    ExpectLikeNode(o, node[i], pfx_cases[i].what);
  }
  EXPECT_EQ(node[0], "|mac verify failure");
  EXPECT_EQ(node[1], "|mac verify failure");
  EXPECT_EQ(node[5], "|not enough data");
  EXPECT_EQ(node[8], "ERR_CRYPTO_UNSUPPORTED_OPERATION|Unsupported PKCS12 PFX data");
}

TEST(SecureContextErrors, SessionOptions) {
  SecureContextOptions o;
  o.session_id_context = std::string(33, 'x');
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "session_id_context: longer than 32 bytes");
  o = {};
  o.session_timeout = 0;
  ExpectBad(o, "ERR_INVALID_ARG_VALUE", "session_timeout: must be positive");
}

// ---- GenerateSelfSigned's serial number ----

TEST(GenerateSelfSignedTest, TheSerialIsTheCallersBytesMadePositive) {
  const uint8_t serial[16] = {0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
  absl::StatusOr<GeneratedIdentity> id = GenerateSelfSigned("localhost", testing::TestNow(), serial);
  ASSERT_TRUE(id.ok()) << id.status();
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(id->cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->serial_number, "7F0102030405060708090A0B0C0D0E0F");
  absl::StatusOr<GeneratedIdentity> small = GenerateSelfSigned("localhost", testing::TestNow(), uint64_t{0x1234});
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(CertificateInfo::FromPem(small->cert_pem)->serial_number, "1234");
}

TEST(GenerateSelfSignedTest, RefusesASerialThatIsNotAPositiveNumberOf20BytesOrLess) {
  const std::vector<uint8_t> zero_once_positive = {0x80, 0x00}, too_long(21, 0x11);
  for (const std::vector<uint8_t>& serial : {std::vector<uint8_t>{}, zero_once_positive, too_long}) {
    absl::StatusOr<GeneratedIdentity> id = GenerateSelfSigned("localhost", testing::TestNow(), serial);
    ASSERT_FALSE(id.ok()) << serial.size();
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(NodeCode(id.status()), "ERR_INVALID_ARG_VALUE");
    EXPECT_TRUE(absl::StrContains(id.status().message(), "GenerateSelfSigned: the serial")) << id.status();
  }
}

// ---- Good input does what it says ----

TEST(SecureContextTest, EncryptedKeyWithItsPassphrase) {
  SecureContextOptions o = Server();
  o.key = {ReadTestFile("server-rsa-key-encrypted.pem")};
  o.passphrase = "secret";
  EnginePair pair(ServerWith(o), ClientOptions());
  EXPECT_TRUE(pair.Handshake().ok());
}

TEST(SecureContextTest, PfxWithAndWithoutPassphrase) {
  for (const auto& [file, pass] : {std::pair{"server-rsa.pfx", "secret"}, std::pair{"server-rsa-nopass.pfx", ""}}) {
    SecureContextOptions o;
    o.pfx = ReadTestFile(file);
    o.passphrase = pass;
    EnginePair pair(ServerWith(o), ClientOptions());
    ASSERT_TRUE(pair.Handshake().ok()) << file;
    EXPECT_TRUE(pair.client().authorized()) << "the PFX sends its intermediate";
  }
}

TEST(SecureContextTest, RsaAndEcdsaTogetherServeEachClient) {
  SecureContextOptions o = Server();
  o.key = {Key("server-rsa"), Key("server-ecdsa")};
  o.cert = {Chain("server-ecdsa"), Chain("server-rsa")};  // order does not matter
  SecureContextOptions rsa_only, ecdsa_only;
  rsa_only.max_version = ecdsa_only.max_version = "TLSv1.2";
  rsa_only.ciphers = "ECDHE-RSA-AES128-GCM-SHA256";
  ecdsa_only.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  EnginePair rsa(ServerWith(o), ClientWith(rsa_only));
  ASSERT_TRUE(rsa.Handshake().ok());
  EXPECT_EQ(rsa.client().GetPeerCertificate()->bits, 2048);
  EnginePair ecdsa(ServerWith(o), ClientWith(ecdsa_only));
  ASSERT_TRUE(ecdsa.Handshake().ok());
  EXPECT_EQ(ecdsa.client().GetPeerCertificate()->asn1_curve, "prime256v1");
}

TEST(SecureContextTest, EmptyCaTrustsNothingAndMissingCaUsesTheSystemStore) {
  SecureContextOptions none;
  none.ca = std::vector<std::string>{};
  ConnectionOptions co = ClientOptions();
  co.secure_context = MakeContext(none);
  EnginePair pair(ServerOptions(), co);
  EXPECT_EQ(NodeCode(pair.Handshake()), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
  SecureContextOptions system;  // the system store does not know our test CA
  co.secure_context = MakeContext(system);
  EnginePair pair2(ServerOptions(), co);
  EXPECT_EQ(NodeCode(pair2.Handshake()), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
}

TEST(SecureContextErrors, DhparamBelow2048Bits) {
  SecureContextOptions o;
  o.dhparam = ReadTestFile("dhparam-1024.pem");
  ExpectBad(o, "ERR_TLS_DH_PARAM_SIZE", "dhparam: DH parameter is less than 2048 bits (1024)");
}

TEST(SecureContextTest, EcdhCurveChoosesTheGroup) {
  SecureContextOptions server = Server();
  server.ecdh_curve = "secp384r1";
  SecureContextOptions client;
  client.ecdh_curve = "P-256:P-384";
  client.max_version = "TLSv1.2";
  EnginePair pair(ServerWith(server), ClientWith(client));
  ASSERT_TRUE(pair.Handshake().ok());
  server.ecdh_curve = "X25519";
  client.ecdh_curve = "prime256v1";
  EnginePair none(ServerWith(server), ClientWith(client));
  EXPECT_FALSE(none.Handshake().ok());
  // TLS 1.2 ECDHE needs a common group: without one no suite is left.
  EXPECT_EQ(NodeCode(none.server_side().error), "ERR_SSL_NO_SHARED_CIPHER");
}

TEST(SecureContextTest, CiphersAndHonorCipherOrder) {
  SecureContextOptions server = Server();
  server.ciphers = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
  SecureContextOptions client;
  client.max_version = "TLSv1.2";
  client.ciphers = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";
  EnginePair client_order(ServerWith(server), ClientWith(client));
  ASSERT_TRUE(client_order.Handshake().ok());
  EXPECT_EQ(client_order.client().GetCipher()->name, "ECDHE-RSA-AES128-GCM-SHA256");
  server.honor_cipher_order = true;
  EnginePair server_order(ServerWith(server), ClientWith(client));
  ASSERT_TRUE(server_order.Handshake().ok());
  EXPECT_EQ(server_order.client().GetCipher()->name, "ECDHE-RSA-AES256-GCM-SHA384");
}

TEST(SecureContextTest, Tls13SuitesMayBeGivenInCiphersAsInNode) {
  SecureContextOptions client;
  client.ciphers = "TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256";
  EnginePair pair(ServerWith(Server()), ClientWith(client));
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().GetCipher()->name, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST(SecureContextTest, DefaultsRefuseWeakAndOldProtocols) {
  SecureContextOptions old_client;
  old_client.min_version = "TLSv1";
  old_client.max_version = "TLSv1.1";
  ConnectionOptions co = ClientWith(old_client);
  EXPECT_FALSE(MakeContext(old_client)->warnings().empty());
  EnginePair pair(ServerWith(Server()), co);
  EXPECT_FALSE(pair.Handshake().ok());
  EXPECT_EQ(NodeCode(pair.server_side().error), "ERR_SSL_UNSUPPORTED_PROTOCOL");
  EXPECT_EQ(NodeCode(pair.client_side().error), "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
  EXPECT_EQ(AlertOf(pair.client_side().error), 70);
  SecureContextOptions cbc_client;
  cbc_client.max_version = "TLSv1.2";
  cbc_client.ciphers = "ECDHE-RSA-AES128-SHA";  // CBC: not in our defaults
  EnginePair cbc(ServerWith(Server()), ClientWith(cbc_client));
  EXPECT_FALSE(cbc.Handshake().ok());
  EXPECT_EQ(NodeCode(cbc.server_side().error), "ERR_SSL_NO_SHARED_CIPHER");
}

TEST(SecureContextTest, SecureProtocolPinsTheVersion) {
  SecureContextOptions client;
  client.secure_protocol = "TLSv1_2_method";
  EnginePair pair(ServerWith(Server()), ClientWith(client));
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().protocol(), "TLSv1.2");
  client.secure_protocol = "TLS_client_method";
  EnginePair any(ServerWith(Server()), ClientWith(client));
  ASSERT_TRUE(any.Handshake().ok());
  EXPECT_EQ(any.client().protocol(), "TLSv1.3");
}

TEST(SecureContextTest, GetCiphersIsSortedAsInNode) {
  std::vector<std::string> ciphers = GetCiphers();
  ASSERT_FALSE(ciphers.empty());
  EXPECT_TRUE(std::is_sorted(ciphers.begin(), ciphers.end()));
  EXPECT_EQ(std::adjacent_find(ciphers.begin(), ciphers.end()), ciphers.end()) << "no duplicates";
}

// ---- A leaf-only `cert` is chained from `ca` (as OpenSSL's auto-chain does for Node) ----

TEST(SecureContextTest, LeafOnlyCertIsSentWithItsIntermediateFromCa) {
  for (const std::vector<std::string>& ca :
       {std::vector<std::string>{Cert("int1"), Cert("ca1")}, std::vector<std::string>{Cert("int1") + Cert("ca1")},
        std::vector<std::string>{Cert("int1")}}) {
    SecureContextOptions o;
    o.key = {Key("server-rsa")};
    o.cert = {Cert("server-rsa")};  // the leaf alone
    o.ca = ca;
    EnginePair pair(ServerWith(o), ClientOptions());  // trusts ca1 only
    absl::Status status = pair.Handshake();
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_TRUE(pair.client().authorized()) << pair.client().authorization_error();
    std::optional<CertificateInfo> peer = pair.client().GetPeerCertificate(/*detailed=*/true);
    ASSERT_TRUE(peer.has_value());
    ASSERT_NE(peer->issuer_certificate, nullptr);
    EXPECT_EQ(peer->issuer_certificate->subject.Get("CN"), "Test Intermediate CA 1");
  }
}

TEST(SecureContextTest, LeafOnlyCertWithoutItsIssuerInCaStillLoads) {
  SecureContextOptions o;
  o.key = {Key("server-rsa")};
  o.cert = {Cert("server-rsa")};
  o.ca = std::vector<std::string>{Cert("ca2")};  // no path to the leaf
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(ERR_peek_error(), 0u);
  EnginePair pair(ServerWith(o), ClientOptions());
  EXPECT_EQ(NodeCode(pair.Handshake()), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
}

TEST(SecureContextTest, GetCiphersIsLowerCaseWithoutRc4) {
  std::vector<std::string> ciphers = GetCiphers();
  ASSERT_FALSE(ciphers.empty());
  EXPECT_NE(std::find(ciphers.begin(), ciphers.end(), "ecdhe-rsa-aes128-gcm-sha256"), ciphers.end());
  EXPECT_NE(std::find(ciphers.begin(), ciphers.end(), "tls_aes_256_gcm_sha384"), ciphers.end());
  for (const std::string& c : ciphers) {
    EXPECT_EQ(c.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos) << c;
    EXPECT_EQ(c.find("rc4"), std::string::npos) << c;
  }
}

}  // namespace
}  // namespace tlsengine

namespace tlsengine {
namespace {

TEST(SecureContextTest, OldProtocolsWorkOnlyWhenBothSidesEnableThem) {
  SecureContextOptions server = testing::IdentityOptions("server-rsa");
  server.min_version = "TLSv1";
  SecureContextOptions client;
  client.ca = std::vector<std::string>{testing::Cert("ca1")};
  client.min_version = client.max_version = "TLSv1.1";
  ConnectionOptions so, co = testing::ClientOptions();
  so.is_server = true;
  so.secure_context = testing::MakeContext(server);
  co.secure_context = testing::MakeContext(client);
  testing::EnginePair pair(so, co);
  ASSERT_TRUE(pair.Handshake().ok());
  EXPECT_EQ(pair.client().protocol(), "TLSv1.1");
  EXPECT_EQ(pair.client().GetCipher()->name, "ECDHE-RSA-AES128-SHA");
}

}  // namespace
}  // namespace tlsengine
