#include "examples/tlsctl/flags.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tlsengine {
namespace tlsctl {
namespace {

TEST(ServeFlagsTest, DefaultsAreTheMainJob) {
  absl::StatusOr<ServeFlags> f = ParseServeFlags({});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->host, "127.0.0.1");
  EXPECT_EQ(f->port, 8000);
  EXPECT_EQ(f->mode, ServeMode::kEcho);
  EXPECT_EQ(f->loops, 1);
  EXPECT_FALSE(f->reneg_limit.has_value());
  EXPECT_TRUE(f->tls.key.empty());
}

TEST(ServeFlagsTest, ParsesEveryKindOfFlag) {
  absl::StatusOr<ServeFlags> f = ParseServeFlags(
      {"--port=0", "--host", "::1", "--key", "a.pem", "--cert", "b.pem", "--key", "c.pem", "--cert", "d.pem",
       "--ca", "ca.pem", "--min-version", "TLSv1.3", "--max-version=TLSv1.3", "--alpn", "h2,http/1.1",
       "--sni", "example.com=k.pem:c.pem", "--sni", "*.example.org=k2.pem:c2.pem", "--handshake-timeout", "250",
       "--reneg-limit", "2", "--reneg-window", "30", "--mode", "http", "--loops", "3", "--request-cert",
       "--reject-unauthorized", "--max-connections", "10", "--honor-cipher-order", "--keylog", "k.log"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->port, 0);
  EXPECT_EQ(f->host, "::1");
  EXPECT_EQ(f->tls.key, (std::vector<std::string>{"a.pem", "c.pem"}));
  EXPECT_EQ(f->tls.cert, (std::vector<std::string>{"b.pem", "d.pem"}));
  EXPECT_EQ(f->tls.min_version, "TLSv1.3");
  EXPECT_EQ(f->tls.max_version, "TLSv1.3");
  EXPECT_EQ(f->tls.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  ASSERT_EQ(f->sni.size(), 2u);
  EXPECT_EQ(f->sni[1].name, "*.example.org");
  EXPECT_EQ(f->sni[1].key, "k2.pem");
  EXPECT_EQ(f->sni[1].cert, "c2.pem");
  EXPECT_EQ(f->handshake_timeout_ms, 250);
  ASSERT_TRUE(f->reneg_limit.has_value());
  EXPECT_EQ(*f->reneg_limit, 2);
  EXPECT_EQ(f->reneg_window_s, 30);
  EXPECT_EQ(f->mode, ServeMode::kHttp);
  EXPECT_EQ(f->loops, 3);
  EXPECT_TRUE(f->request_cert);
  EXPECT_TRUE(f->reject_unauthorized);
  EXPECT_EQ(f->max_connections, 10);
  EXPECT_TRUE(f->honor_cipher_order);
  EXPECT_EQ(f->tls.keylog, "k.log");
}

struct BadCase {
  std::vector<std::string> args;
  const char* message_part;
};

class BadServeFlagsTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadServeFlagsTest, IsOneLineNamingTheFlag) {
  absl::StatusOr<ServeFlags> f = ParseServeFlags(GetParam().args);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(f.status().message(), GetParam().message_part)) << f.status();
  EXPECT_FALSE(absl::StrContains(f.status().message(), "\n"));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadServeFlagsTest,
    ::testing::Values(BadCase{{"--bogus"}, "unknown flag --bogus"},
                      BadCase{{"--port"}, "--port: needs a value"},
                      BadCase{{"--port", "70000"}, "--port: 70000 is out of range"},
                      BadCase{{"--port", "eighty"}, "--port: 'eighty' is not a whole number"},
                      BadCase{{"--min-version", "TLSv1_2"}, "--min-version: 'TLSv1_2' is not one of"},
                      BadCase{{"--max-version", "tls1.3"}, "--max-version"},
                      BadCase{{"--mode", "ftp"}, "--mode: 'ftp' is not echo, http or hold"},
                      BadCase{{"--sni", "example.com"}, "--sni: 'example.com' is not NAME=KEY:CERT"},
                      BadCase{{"--request-cert=yes"}, "--request-cert: takes no value"},
                      BadCase{{"--key", "k.pem"}, "1 key(s) but 0 certificate(s)"},
                      BadCase{{"--pfx", "a.pfx", "--key", "k", "--cert", "c"}, "either --pfx or --key/--cert"},
                      BadCase{{"--reject-unauthorized"}, "only means something with --request-cert"},
                      BadCase{{"--alpn", "h2,,x"}, "--alpn"},
                      BadCase{{"--loops", "0"}, "--loops: 0 is out of range"},
                      BadCase{{"stray"}, "unexpected argument 'stray'"}));

TEST(ServeFlagsTest, HelpIsCancelledAndListsEveryFlag) {
  absl::StatusOr<ServeFlags> f = ParseServeFlags({"--port", "1", "--help"});
  EXPECT_TRUE(absl::IsCancelled(f.status())) << f.status();
  std::string help = ServeHelp();
  for (const char* flag : {"--host", "--port", "--unix", "--key", "--cert", "--pfx", "--passphrase", "--ca", "--crl",
                           "--ciphers", "--ciphersuites", "--honor-cipher-order", "--ecdh-curve", "--dhparam",
                           "--min-version", "--max-version", "--request-cert", "--reject-unauthorized", "--alpn",
                           "--npn", "--sni", "--handshake-timeout", "--session-timeout", "--ticket-keys",
                           "--session-id-context", "--ocsp-response", "--max-connections", "--reneg-limit",
                           "--reneg-window", "--mode", "--keylog", "--loops", "--help"}) {
    EXPECT_TRUE(absl::StrContains(help, flag)) << flag;
  }
}

TEST(ServeFlagsTest, IdleTimeoutAndBodyCap) {
  absl::StatusOr<ServeFlags> d = ParseServeFlags({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->idle_timeout_ms.has_value());  // kDefaultIdleTimeoutMs applies
  EXPECT_EQ(d->max_body_size, 1 << 20);
  absl::StatusOr<ServeFlags> f = ParseServeFlags({"--idle-timeout", "0", "--max-body-size", "0"});
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(f->idle_timeout_ms.has_value());
  EXPECT_EQ(*f->idle_timeout_ms, 0);
  EXPECT_EQ(f->max_body_size, 0);
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--idle-timeout", "-1"}, "--idle-timeout: -1 is out of range"},
           {{"--max-body-size", "1e6"}, "--max-body-size: '1e6' is not a whole number"},
           {{"--control=", "--idle-timeout", "5000"}, "--idle-timeout: not available with --control"},
       }) {
    absl::StatusOr<ServeFlags> bad = ParseServeFlags(args);
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_TRUE(absl::StrContains(bad.status().message(), message)) << bad.status();
  }
  EXPECT_TRUE(absl::StrContains(ServeHelp(), "--idle-timeout MS"));
  EXPECT_TRUE(absl::StrContains(ServeHelp(), "--max-body-size BYTES"));
}

TEST(ConnectFlagsTest, ParsesAndChecks) {
  absl::StatusOr<ConnectFlags> f = ParseConnectFlags({"--port", "443", "--servername", "example.com", "--insecure",
                                                      "--send", "hi", "--session-out", "s.der", "--request-ocsp",
                                                      "--renegotiate", "--key-update", "--max-send-fragment", "512"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->port, 443);
  EXPECT_EQ(f->servername, "example.com");
  EXPECT_TRUE(f->insecure);
  ASSERT_TRUE(f->send.has_value());
  EXPECT_EQ(*f->send, "hi");
  EXPECT_EQ(f->session_out, "s.der");
  EXPECT_TRUE(f->request_ocsp && f->renegotiate && f->key_update);
  EXPECT_EQ(f->max_send_fragment, 512);

  absl::StatusOr<ConnectFlags> unix_only = ParseConnectFlags({"--unix", "/tmp/s"});
  ASSERT_TRUE(unix_only.ok()) << unix_only.status();
  EXPECT_EQ(unix_only->unix_path, "/tmp/s");
  EXPECT_EQ(unix_only->handshake_timeout_ms, 120000);
  EXPECT_EQ(unix_only->close_timeout_ms, 5000);
  EXPECT_FALSE(unix_only->allow_truncation);

  absl::StatusOr<ConnectFlags> endings = ParseConnectFlags(
      {"--port", "1", "--handshake-timeout", "250", "--close-timeout=750", "--allow-truncation"});
  ASSERT_TRUE(endings.ok()) << endings.status();
  EXPECT_EQ(endings->handshake_timeout_ms, 250);
  EXPECT_EQ(endings->close_timeout_ms, 750);
  EXPECT_TRUE(endings->allow_truncation);
  EXPECT_TRUE(absl::StrContains(ParseConnectFlags({"--port", "1", "--close-timeout", "0"}).status().message(),
                                "--close-timeout: 0 is out of range"));
}

TEST(ConnectFlagsTest, RefusesMissingPortAndConflicts) {
  EXPECT_TRUE(absl::StrContains(ParseConnectFlags({}).status().message(), "--port: required"));
  EXPECT_TRUE(absl::StrContains(ParseConnectFlags({"--port", "1", "--send", "a", "--stdin"}).status().message(),
                                "either --send or --stdin"));
  EXPECT_TRUE(absl::StrContains(ParseConnectFlags({"--port", "1", "--max-send-fragment", "100"}).status().message(),
                                "--max-send-fragment: 100 is out of range"));
  EXPECT_TRUE(absl::StrContains(ParseConnectFlags({"--port", "1", "--mode", "http"}).status().message(),
                                "unknown flag --mode"));
  EXPECT_TRUE(absl::IsCancelled(ParseConnectFlags({"--help"}).status()));
  EXPECT_TRUE(absl::StrContains(ConnectHelp(), "--session-in"));
}

TEST(CiphersFlagsTest, TakesNothingButHelp) {
  EXPECT_TRUE(ParseCiphersFlags({}).ok());
  EXPECT_TRUE(absl::IsCancelled(ParseCiphersFlags({"--help"})));
  EXPECT_EQ(ParseCiphersFlags({"--all"}).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tlsctl
}  // namespace tlsengine
