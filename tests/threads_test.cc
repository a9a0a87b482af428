// One SecureContext (and one SniContexts table) shared by connections driven
// on several threads at once. Run under ThreadSanitizer in CI:
//   bazel test --config=tsan //tests:threads_test
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/secure_context.h"
#include "core/tls_connection.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace {

using testing::EnginePair;
using testing::IdentityOptions;
using testing::MakeContext;

constexpr int kThreads = 4;
constexpr int kConnectionsPerThread = 8;

TEST(ThreadsTest, SharedContextsAndTicketsAcrossThreads) {
  SecureContextOptions server_opts = IdentityOptions("server-ecdsa");
  server_opts.ticket_keys = {std::string(48, 'k')};
  std::shared_ptr<const SecureContext> server_ctx = MakeContext(server_opts);
  std::shared_ptr<const SecureContext> client_ctx = MakeContext(IdentityOptions(""));
  auto sni = std::make_shared<SniContexts>();
  std::atomic<int> secure{0}, resumed{0}, echoed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string session;
      for (int i = 0; i < kConnectionsPerThread; ++i) {
        // The table changes while other threads look names up in it.
        ASSERT_TRUE(sni->Add("host" + std::to_string(t) + "-" + std::to_string(i) + ".example", server_ctx).ok());
        ConnectionOptions so, co;
        so.is_server = true;
        so.secure_context = server_ctx;
        so.sni_contexts = sni;
        co.secure_context = client_ctx;
        co.servername = "localhost";
        co.session = session;  // resumes the ticket another connection got
        EnginePair pair(so, co);
        if (!pair.Handshake().ok()) continue;
        secure++;
        resumed += pair.client().is_session_reused() ? 1 : 0;
        pair.SendAll(pair.client_side(), "thread " + std::to_string(t));
        echoed += pair.server_side().received == "thread " + std::to_string(t) ? 1 : 0;
        session = pair.client().GetSession();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(secure.load(), kThreads * kConnectionsPerThread);
  EXPECT_EQ(echoed.load(), kThreads * kConnectionsPerThread);
  EXPECT_EQ(resumed.load(), kThreads * (kConnectionsPerThread - 1));
}

}  // namespace
}  // namespace tlsengine
