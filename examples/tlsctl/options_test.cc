#include "examples/tlsctl/options.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "core/errors.h"
#include "examples/tlsctl/default_cert.h"
#include "examples/tlsctl/report.h"
#include "gtest/gtest.h"

namespace tlsengine {
namespace tlsctl {
namespace {

std::string Cert(const std::string& name) { return "tests/certs/" + name; }

std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

absl::StatusOr<GeneratedIdentity> NoDefault() { return absl::InternalError("the default identity was not wanted"); }

absl::StatusOr<GeneratedIdentity> FreshDefault() { return GenerateSelfSigned("localhost", absl::Now(), 1); }

ServeFlags RsaServer() {
  ServeFlags f;
  f.tls.key = {Cert("server-rsa-key.pem")};
  f.tls.cert = {Cert("server-rsa-chain.pem")};
  return f;
}

TEST(BuildServerTest, MapsFlagsToConnectionOptions) {
  ServeFlags f = RsaServer();
  f.request_cert = true;
  f.reject_unauthorized = true;
  f.handshake_timeout_ms = 1500;
  f.tls.alpn = {"h2"};
  f.reneg_limit = 2;
  f.reneg_window_s = 9;
  f.tls.ca = {Cert("ca1.pem")};
  f.tls.min_version = "TLSv1.3";
  absl::StatusOr<ServerSetup> s = BuildServer(f, NoDefault);
  ASSERT_TRUE(s.ok()) << s.status();
  const ConnectionOptions& c = s->connection;
  EXPECT_TRUE(c.is_server);
  ASSERT_NE(c.secure_context, nullptr);
  EXPECT_TRUE(c.request_cert);
  EXPECT_TRUE(c.reject_unauthorized);
  EXPECT_EQ(c.handshake_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(c.alpn_protocols, std::vector<std::string>{"h2"});
  EXPECT_TRUE(c.allow_client_renegotiation);
  EXPECT_EQ(c.client_reneg_limit, 2);
  EXPECT_EQ(c.client_reneg_window, absl::Seconds(9));
  EXPECT_TRUE(c.session_cache);
  EXPECT_FALSE(c.ocsp_request);
  EXPECT_EQ(c.sni_contexts, nullptr);
  ASSERT_TRUE(s->context_options.ca.has_value());
  EXPECT_EQ(s->context_options.ca->size(), 1u);
  EXPECT_EQ(s->context_options.min_version, "TLSv1.3");
}

TEST(BuildServerTest, RenegotiationStaysOffWithoutTheLimitFlag) {
  absl::StatusOr<ServerSetup> s = BuildServer(RsaServer(), NoDefault);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->connection.allow_client_renegotiation);
  EXPECT_FALSE(s->connection.keylog);
}

TEST(BuildServerTest, UsesTheDefaultIdentityOnlyWithoutKeyOrPfx) {
  ServeFlags f;
  absl::StatusOr<ServerSetup> s = BuildServer(f, FreshDefault);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->context_options.cert.size(), 1u);
  EXPECT_TRUE(absl::StrContains(s->context_options.cert[0], "BEGIN CERTIFICATE"));
  absl::StatusOr<ServerSetup> failing = BuildServer(f, NoDefault);
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(failing.status().message(), "default certificate: the default identity was not wanted"));
}

TEST(BuildServerTest, SniOcspAndTicketKeysAreRead) {
  ServeFlags f = RsaServer();
  f.sni = {{"other.example.com", Cert("other-name-key.pem"), Cert("other-name-chain.pem")}};
  f.ocsp_response = Cert("server-rsa-ocsp.der");
  std::string keys = TmpPath("keys96");
  WriteFile(keys, std::string(96, 'k'));
  f.ticket_keys = keys;
  absl::StatusOr<ServerSetup> s = BuildServer(f, NoDefault);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->connection.sni_contexts, nullptr);
  EXPECT_NE(s->connection.sni_contexts->Find("OTHER.example.com"), nullptr);
  EXPECT_EQ(s->connection.sni_contexts->Find("localhost"), nullptr);
  EXPECT_TRUE(s->connection.ocsp_request);
  EXPECT_FALSE(s->ocsp_response.empty());
  EXPECT_EQ(s->context_options.ticket_keys.size(), 2u);
}

struct BadFile {
  std::function<void(ServeFlags&)> change;
  const char* message_part;
};

class BadServerFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadServerFileTest, IsInvalidArgumentNamingTheFlag) {
  ServeFlags f = RsaServer();
  GetParam().change(f);
  absl::StatusOr<ServerSetup> s = BuildServer(f, NoDefault);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), GetParam().message_part)) << s.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadServerFileTest,
    ::testing::Values(
        BadFile{[](ServeFlags& f) { f.tls.cert = {"/nonexistent/cert.pem"}; },
                "--cert: cannot read '/nonexistent/cert.pem': No such file or directory"},
        BadFile{[](ServeFlags& f) { f.tls.ca = {"/nonexistent/ca.pem"}; }, "--ca: cannot read"},
        BadFile{[](ServeFlags& f) { f.tls.key = {Cert("server-ecdsa-key.pem")}; }, "--key/--cert: "},
        BadFile{[](ServeFlags& f) { f.tls.ciphers = "NOT-A-CIPHER"; }, "--key/--cert: "},
        BadFile{[](ServeFlags& f) { f.ticket_keys = Cert("ca1.pem"); }, "want one or more 48-byte keys"},
        BadFile{[](ServeFlags& f) { f.ocsp_response = "/nonexistent/ocsp.der"; }, "--ocsp-response: cannot read"},
        BadFile{[](ServeFlags& f) { f.sni = {{"x.example", "/nonexistent/k", Cert("server-rsa.pem")}}; },
                "--sni: cannot read"}));

TEST(BuildClientTest, MapsFlags) {
  ConnectFlags f;
  f.port = 443;
  f.host = "localhost";
  f.tls.ca = {Cert("ca1.pem")};
  f.request_ocsp = true;
  f.tls.alpn = {"http/1.1"};
  f.handshake_timeout_ms = 1500;
  f.close_timeout_ms = 250;
  absl::StatusOr<ClientSetup> s = BuildClient(f);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->connection.is_server);
  EXPECT_EQ(s->connection.handshake_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(s->connection.close_timeout, absl::Milliseconds(250));
  EXPECT_TRUE(s->connection.reject_unauthorized);
  EXPECT_TRUE(s->connection.request_ocsp);
  EXPECT_EQ(s->connection.host, "localhost");
  EXPECT_EQ(s->connection.alpn_protocols, std::vector<std::string>{"http/1.1"});
  EXPECT_TRUE(s->connection.session.empty());

  f.insecure = true;
  std::string session = TmpPath("session.der");
  WriteFile(session, "not really a session");
  f.session_in = session;
  f.session_out = TmpPath("out.der");
  s = BuildClient(f);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->connection.reject_unauthorized);
  EXPECT_EQ(s->connection.session, "not really a session");
  EXPECT_EQ(s->session_out_path, TmpPath("out.der"));
}

TEST(BuildClientTest, UnreadableSessionOrCaIsInvalidArgument) {
  ConnectFlags f;
  f.port = 1;
  f.session_in = "/nonexistent/session";
  EXPECT_TRUE(absl::StrContains(BuildClient(f).status().message(), "--session-in: cannot read"));
  f.session_in.clear();
  f.tls.ca = {"/nonexistent/ca"};
  EXPECT_EQ(BuildClient(f).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DefaultCertTest, IsMadeOnceThenReadFromTheCache) {
  std::string dir = TmpPath("cache/tlsengine/tlsctl");
  absl::Time now = absl::Now();
  absl::StatusOr<CachedIdentity> first = LoadOrCreateIdentity(dir, now);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->generated);
  EXPECT_EQ(first->cert_path, dir + "/localhost.pem");
  struct stat st;
  ASSERT_EQ(stat(first->key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<CachedIdentity> second = LoadOrCreateIdentity(dir, now);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->generated);
  EXPECT_EQ(second->fingerprint256, first->fingerprint256);
  EXPECT_EQ(second->identity.key_pem, first->identity.key_pem);
  // Near its expiry (a year on), it is made again.
  absl::StatusOr<CachedIdentity> later = LoadOrCreateIdentity(dir, now + absl::Hours(24 * 365));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(later->generated);
  EXPECT_NE(later->fingerprint256, first->fingerprint256);
  // A damaged cache is replaced, not fatal.
  WriteFile(dir + "/localhost.pem", "garbage");
  absl::StatusOr<CachedIdentity> repaired = LoadOrCreateIdentity(dir, now);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(repaired->generated);
}

TEST(DefaultCertTest, CacheDirFollowsXdgThenHome) {
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  EXPECT_EQ(*DefaultCacheDir(), "/x/cache/tlsengine/tlsctl");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(*DefaultCacheDir(), "/home/u/.cache/tlsengine/tlsctl");
  unsetenv("HOME");
  EXPECT_EQ(DefaultCacheDir().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReportTest, ErrorsCarryTheNodeCode) {
  JsonObject o = ErrorReport("error", MakeError(absl::StatusCode::kUnauthenticated, "DEPTH_ZERO_SELF_SIGNED_CERT",
                                                "self-signed certificate"));
  EXPECT_EQ(o.Str(), "{\"event\":\"error\",\"code\":\"DEPTH_ZERO_SELF_SIGNED_CERT\",\"message\":\"self-signed certificate\"}");
  EXPECT_EQ(ErrorReport("clientError", absl::InternalError("x"), 3).Str(),
            "{\"event\":\"clientError\",\"id\":3,\"code\":\"INTERNAL\",\"message\":\"x\"}");
}

TEST(ReportTest, CertificateUsesNodeNames) {
  std::ifstream in(Cert("server-rsa.pem"));
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(pem);
  ASSERT_TRUE(info.ok()) << info.status();
  std::string json = CertificateJson(*info).Str();
  EXPECT_TRUE(absl::StrContains(json, "\"subject\":{")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"CN\":\"localhost\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"subjectaltname\":\"DNS:localhost")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"serialNumber\":\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"fingerprint256\":\"" + info->fingerprint256 + "\"")) << json;
}

}  // namespace
}  // namespace tlsctl
}  // namespace tlsengine
