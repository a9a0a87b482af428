// The recorded seeds do their job: replayed through the targets' own loop,
// with the targets' deterministic randomness, the peer flights recorded
// from engine pairs and from openssl s_client/s_server complete their
// handshakes and deliver their data. If an engine change alters what an
// endpoint draws or sends, this fails: re-record with
//   bazel run //fuzz:record_corpus -- $PWD/fuzz/corpus
#include <dirent.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/errors.h"
#include "fuzz/common.h"
#include "fuzz/engine_target.h"
#include "gtest/gtest.h"

namespace tlsengine {
namespace fuzz {
namespace {

std::vector<std::pair<std::string, std::string>> Seeds(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string dir = "fuzz/corpus/" + target;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      // The recordings; inputs merged in from fuzzing are named by hash.
      std::string name = e->d_name;
      if (!absl::StartsWith(name, "pair-") && !absl::StartsWith(name, "s_client-") &&
          !absl::StartsWith(name, "s_server-")) {
        continue;
      }
      std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      out.emplace_back(e->d_name, s.str());
    }
    closedir(d);
  }
  return out;
}

struct Outcome {
  bool secure = false;
  std::string data;
  absl::Status error;
};

Outcome Replay(const std::string& seed, bool server) {
  Outcome outcome;
  SetEventObserver([&outcome](const Event& e) {
    if (e.type == EventType::kSecure) outcome.secure = true;
    if (e.type == EventType::kData) outcome.data.append(reinterpret_cast<const char*>(e.data.data()), e.data.size());
    if (e.type == EventType::kError && outcome.error.ok()) outcome.error = e.status;
  });
  RunEngineTarget(reinterpret_cast<const uint8_t*>(seed.data()), seed.size(), server);
  SetEventObserver(nullptr);
  return outcome;
}

TEST(SeedsTest, RecordedClientFlightsCompleteServerHandshakes) {
  int checked = 0;
  for (const auto& [name, seed] : Seeds("server_engine")) {
    Outcome o = Replay(seed, /*server=*/true);
    if (absl::StrContains(name, "missing")) {  // recorded from a rejected client
      EXPECT_FALSE(o.secure) << name;
      continue;
    }
    EXPECT_TRUE(o.secure) << name << ": " << o.error;
    EXPECT_TRUE(absl::StartsWith(o.data, "GET /")) << name << ": " << o.data << " " << o.error;
    checked++;
  }
  EXPECT_GE(checked, 20);
}

TEST(SeedsTest, RecordedServerFlightsCompleteClientHandshakes) {
  int checked = 0;
  for (const auto& [name, seed] : Seeds("client_engine")) {
    Outcome o = Replay(seed, /*server=*/false);
    if (absl::StrContains(name, "missing")) {
      // TLS 1.3: the client is done before the server checks its (absent)
      // certificate; the server's alert follows.
      EXPECT_EQ(NodeCode(o.error), "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") << name << ": " << o.error;
      continue;
    }
    EXPECT_TRUE(o.secure) << name << ": " << o.error;
    EXPECT_TRUE(absl::StrContains(o.data, absl::StartsWith(name, "s_server") ? "olleh" : "ok"))
        << name << ": " << o.data << " " << o.error;
    checked++;
  }
  EXPECT_GE(checked, 15);
}

}  // namespace
}  // namespace fuzz
}  // namespace tlsengine
