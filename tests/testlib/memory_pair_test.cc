// MemoryPair on its own: default answers, 1-byte chunks, and the wire hook.
#include "tests/testlib/memory_pair.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace testing {
namespace {

std::unique_ptr<TlsConnection> Make(ConnectionOptions o) { return *TlsConnection::Create(std::move(o), TestNow()); }

TEST(MemoryPairTest, AnswersSuspensionsByDefaultOneByteAtATime) {
  ConnectionOptions so = ServerOptions();
  so.sni_callback = true;
  so.ocsp_request = true;
  ConnectionOptions co = ClientOptions();
  co.request_ocsp = true;  // else the server is never asked for a staple
  MemoryPair pair(Make(so), Make(co), TestNow());
  int suspensions = 0;
  pair.hooks(MemoryPair::kServer).on_event = [&](TlsConnection&, const Event& e) {
    if (e.type == EventType::kSniRequest || e.type == EventType::kOcspRequest) ++suspensions;
  };
  pair.set_chunk(1);
  EXPECT_TRUE(pair.Pump());
  EXPECT_TRUE(pair.breach().ok()) << pair.breach();
  EXPECT_TRUE(pair.client().secure());
  EXPECT_TRUE(pair.server().secure());
  EXPECT_EQ(suspensions, 2);
}

TEST(MemoryPairTest, WireHookFlippingABitEndsInAnErrorNotWrongData) {
  MemoryPair pair(Make(ServerOptions()), Make(ClientOptions()), TestNow());
  pair.Pump();
  ASSERT_TRUE(pair.server().secure());
  std::string received;
  absl::Status error;
  pair.hooks(MemoryPair::kServer).on_event = [&](TlsConnection&, const Event& e) {
    if (e.type == EventType::kData) received.append(reinterpret_cast<const char*>(e.data.data()), e.data.size());
    if (e.type == EventType::kError) error = e.status;
  };
  int calls = 0;
  pair.hooks(MemoryPair::kClient).on_wire = [&](std::string& bytes) {
    if (calls++ == 0) bytes[bytes.size() - 1] ^= 1;  // the record's tag
  };
  ASSERT_TRUE(pair.client().Write(std::string(1000, 'x')).ok());
  pair.Pump();
  EXPECT_TRUE(pair.breach().ok()) << pair.breach();
  EXPECT_EQ(received, "");
  EXPECT_EQ(error.code(), absl::StatusCode::kAborted) << error;
}

TEST(MemoryPairTest, TakeLeavesOneSideAlone) {
  MemoryPair pair(Make(ServerOptions()), Make(ClientOptions()), TestNow());
  pair.Pump();
  std::unique_ptr<TlsConnection> server = pair.Take(MemoryPair::kServer);
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(pair.has(MemoryPair::kServer));
  ASSERT_TRUE(pair.client().Write("to nobody").ok());
  EXPECT_EQ(pair.Transfer(MemoryPair::kClient), 0u);  // discarded: nobody listens
  EXPECT_TRUE(pair.breach().ok());
}

}  // namespace
}  // namespace testing
}  // namespace tlsengine
