// Runs the control_request target over seeds built here (a valid and a
// broken request for each method) and over deterministic mutations of
// them: every answer has a promised code and the controller keeps serving.
#include <random>
#include <string>
#include <vector>

#include "adapters/grpc/control.pb.h"
#include "fuzz/control_request.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace fuzz {
namespace {

namespace v1 = ::tlsengine::control::v1;

std::string Input(int method, const google::protobuf::Message& m) {
  return std::string(1, static_cast<char>(method)) + m.SerializeAsString();
}

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  v1::CreateContextRequest ctx;
  ctx.add_cert(testing::Chain("server-rsa"));
  ctx.add_key(testing::Key("server-rsa"));
  seeds.push_back(Input(1, ctx));  // ctx1
  v1::CreateContextRequest client;
  client.add_ca(testing::Cert("ca1"));
  seeds.push_back(Input(1, client));  // ctx2
  v1::CreateContextRequest bad;
  bad.add_cert("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n");
  bad.add_key_file("/dev/zero");
  bad.set_ticket_keys(std::string(47, 'k'));
  seeds.push_back(Input(1, bad));
  v1::ListenRequest listen;
  listen.set_context_id("ctx1");
  listen.set_mode("hold");
  seeds.push_back(Input(3, listen));  // l1
  v1::ConnectRequest connect;
  connect.set_context_id("ctx2");
  connect.set_port(1);
  seeds.push_back(Input(11, connect));
  v1::AddContextRequest add;
  add.set_listener_id("l1");
  add.set_servername("*.example.com");
  add.set_context_id("ctx1");
  seeds.push_back(Input(5, add));
  v1::RotateTicketKeysRequest rot;
  rot.set_listener_id("l1");
  rot.set_key(std::string(48, 'k'));
  seeds.push_back(Input(8, rot));
  v1::SetOcspResponseRequest ocsp;
  ocsp.set_listener_id("l1");
  ocsp.set_response(testing::ReadTestFile("server-rsa-ocsp.der"));
  seeds.push_back(Input(9, ocsp));
  v1::WriteRequest write;
  write.set_connection_id("c1");
  write.set_data("x");
  seeds.push_back(Input(12, write));
  v1::ListConnectionsRequest list;
  list.set_page_token("-1");
  seeds.push_back(Input(18, list));
  v1::WatchEventsRequest watch;
  watch.add_types("nope");
  seeds.push_back(Input(22, watch));
  v1::RenegotiateRequest reneg;
  reneg.set_connection_id("c1");
  reneg.set_timeout(20);
  seeds.push_back(Input(19, reneg));
  v1::ConnectionRequest get;
  get.set_connection_id(std::string(65, 'c'));
  seeds.push_back(Input(20, get));
  v1::GetStatsRequest stats;
  stats.set_listener_id("l9");
  seeds.push_back(Input(21, stats));
  v1::CloseListenerRequest close;
  close.set_listener_id("l1");
  seeds.push_back(Input(4, close));
  return seeds;
}

void Check(const std::string& input) {
  absl::Status s = RunControlRequest(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  EXPECT_TRUE(AllowedCode(s.code())) << s;
  EXPECT_TRUE(ControllerAnswers());
}

TEST(ControlRequestFuzz, SeedsGetPromisedCodes) {
  for (const std::string& seed : Seeds()) Check(seed);
}

TEST(ControlRequestFuzz, MutatedRequestsGetPromisedCodes) {
  std::vector<std::string> seeds = Seeds();
  std::mt19937 rng(12);
  for (int i = 0; i < 3000; ++i) {
    std::string in = seeds[rng() % seeds.size()];
    int edits = 1 + rng() % 4;
    for (int e = 0; e < edits && !in.empty(); ++e) {
      size_t at = rng() % in.size();
      switch (rng() % 3) {
        case 0: in[at] = static_cast<char>(rng()); break;
        case 1: in.erase(at, 1 + rng() % 8); break;
        default: in.insert(at, std::string(1 + rng() % 4, static_cast<char>(rng()))); break;
      }
    }
    Check(in);
    if (::testing::Test::HasFailure()) break;
  }
}

// The target's Controller lives for the process; stop its thread before exit.
class StopController : public ::testing::Environment {
 public:
  void TearDown() override { ShutdownController(); }
};
const auto* const kStop = ::testing::AddGlobalTestEnvironment(new StopController);

}  // namespace
}  // namespace fuzz
}  // namespace tlsengine
