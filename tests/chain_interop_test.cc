// A leaf-only `cert` is sent with the intermediate found in `ca`, checked
// by a peer we did not write: openssl s_client trusting only the root.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::Cert;
using testing::Key;
using testing::Listener;
using testing::Subprocess;
using testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(20);

TEST(ChainInteropTest, SClientVerifiesALeafOnlyCertChainedFromCa) {
  SecureContextOptions o;
  o.key = {Key("server-rsa")};
  o.cert = {Cert("server-rsa")};  // the leaf alone
  o.ca = std::vector<std::string>{Cert("int1"), Cert("ca1")};
  ConnectionOptions so = testing::ServerWith(o);
  Listener listener;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", listener.port()), "-CAfile",
                          TestFilePath("ca1.pem"), "-verify_return_error", "-verify_hostname", "localhost",
                          "-showcerts"})
                  .ok());
  ASSERT_TRUE(client.WriteStdin("ping\n").ok());
  absl::Status served = testing::ServeRequest(
      listener, so, "\n", [](const std::string&) { return std::string("pong\n"); }, nullptr, nullptr, kTimeout);
  client.CloseStdin();
  EXPECT_EQ(client.Wait(absl::Seconds(10)), 0) << client.err();
  EXPECT_TRUE(served.ok()) << served;
  EXPECT_TRUE(absl::StrContains(client.out(), "Verify return code: 0 (ok)")) << client.out();
  // Depth 1 is the intermediate; the root is not sent.
  EXPECT_TRUE(absl::StrContains(client.out(), "1 s:CN = Test Intermediate CA 1")) << client.out();
  EXPECT_FALSE(absl::StrContains(client.out(), " 2 s:")) << client.out();
}

}  // namespace
}  // namespace tlsengine
